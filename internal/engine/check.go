package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/plan"
	"github.com/ipsync/ipsync/internal/resolver"
)

// CheckResult is the outcome of checking one mapping against AWS and DNS.
type CheckResult struct {
	Sync    string
	Summary string // what was found, when Err is nil
	Err     error
}

// nlbProtocols are the target-group protocols of a Network Load Balancer.
var nlbProtocols = []string{"TCP", "TLS", "UDP", "TCP_UDP"}

// CheckRemote checks every mapping without changing anything: the target group exists and is of type ip with an
// NLB protocol, its VPC can be read, and the endpoint resolves to addresses of the group's family that the
// availability_zone policy can register. Mappings are checked at once; results come in configuration order.
func CheckRemote(ctx context.Context, cfg *config.Config, res Resolver, clients ClientFunc) []CheckResult {
	out := make([]CheckResult, len(cfg.Syncs))
	var wg sync.WaitGroup
	for i, s := range cfg.Syncs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			summary, err := checkOne(ctx, s, res, clients)
			if err != nil {
				err = fmt.Errorf("%s -> %s: %w", s.Endpoint, s.TargetGroupARN, err)
			}
			out[i] = CheckResult{Sync: s.Name, Summary: summary, Err: err}
		}()
	}
	wg.Wait()
	return out
}

func checkOne(ctx context.Context, s config.Sync, res Resolver, clients ClientFunc) (string, error) {
	client, err := clients(ctx, s.TargetGroupARN, s.RoleARN)
	if err != nil {
		return "", err
	}
	g, err := client.Group(ctx, s.TargetGroupARN)
	if err != nil {
		return "", err
	}
	if err := CheckGroup(s, g); err != nil {
		return "", err
	}
	if !slices.Contains(nlbProtocols, g.Protocol) {
		return "", fmt.Errorf("target group protocol is %s, not a Network Load Balancer protocol (%s)",
			g.Protocol, strings.Join(nlbProtocols, ", "))
	}
	cidrs, err := client.VPCCIDRs(ctx, g.VPCID)
	if err != nil {
		return "", fmt.Errorf("reading VPC %s of the target group: %w", g.VPCID, err)
	}
	fam, err := resolver.FamilyFor(g.IPAddressType)
	if err != nil {
		return "", err
	}
	r, err := res.Resolve(ctx, s.Endpoint, fam)
	if err != nil {
		return "", err
	}
	if s.AvailabilityZone == plan.AZVPC {
		for _, a := range r.Addrs {
			if !slices.ContainsFunc(cidrs, func(c netip.Prefix) bool { return c.Contains(a) }) {
				return "", fmt.Errorf("%s resolves to %s, outside the target group's VPC %s %v, but availability_zone is vpc: "+
					"set availability_zone: auto (or all) to register it with AvailabilityZone all", s.Endpoint, a, g.VPCID, cidrs)
			}
		}
	}
	port := cmpOr(s.Port, g.Port)
	return fmt.Sprintf("target group %s (%s %s, port %d, %s) in %s; %s resolves to %s; targets will use port %d",
		g.Name, g.TargetType, g.Protocol, g.Port, g.IPAddressType, g.VPCID, s.Endpoint, r.Addrs, port), nil
}
