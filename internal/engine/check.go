package engine

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
)

// CheckResult is the outcome of checking one mapping against AWS and DNS.
type CheckResult struct {
	Sync     string
	Summary  string   // what was found, when Err is nil
	Warnings []string // what works, but most likely not as the user wants (with or without Err)
	Err      error
}

// nlbProtocols are the target-group protocols of a Network Load Balancer.
var nlbProtocols = []string{"TCP", "TLS", "UDP", "TCP_UDP"}

// CheckRemote checks every mapping without changing anything: the target group exists and is of type ip with an
// NLB protocol, and the endpoint resolves to addresses of the group's family that ipsync may register (I10); an
// rds: source's membership is read (with members; nil:
// not checked) and each available member's endpoint resolved. Up to 16 mappings are checked at once (AWS allows
// about 10 Describe calls a second); results come in configuration order.
// The daemon and `sync` refuse the same things with the same messages (CheckGroup, CheckAddrs).
func CheckRemote(ctx context.Context, cfg *config.Config, res Resolver, clients ClientFunc, members MembersFunc) []CheckResult {
	out := make([]CheckResult, len(cfg.Syncs))
	var g errgroup.Group
	g.SetLimit(16)
	for i, s := range cfg.Syncs {
		g.Go(func() error {
			var warnings []string
			summary, err := checkOne(ctx, s, res, clients, members, &warnings)
			if err != nil {
				err = classify(fmt.Errorf("%s -> %s: %w", describeSource(s), s.TargetGroupARN, err))
			}
			out[i] = CheckResult{Sync: s.Name, Summary: summary, Warnings: warnings, Err: err}
			return nil
		})
	}
	_ = g.Wait() // each result carries its own error
	return out
}

// checkOne checks one mapping; warnings gets what works but most likely not as the user wants.
func checkOne(ctx context.Context, s config.Sync, res Resolver, clients ClientFunc, members MembersFunc, warnings *[]string) (string, error) {
	client, err := clients(ctx, s.TargetGroupARN, s.RoleARN)
	if err != nil {
		return "", err
	}
	g, err := client.Group(ctx, s.TargetGroupARN)
	if err != nil {
		return "", fmt.Errorf("reading the target group: %w", err)
	}
	if err := CheckGroup(s, g); err != nil {
		return "", err
	}
	if w := ipv6Warning(s, g); w != "" {
		*warnings = append(*warnings, w)
	}
	fam, err := resolver.FamilyFor(g.IPAddressType)
	if err != nil {
		return "", err
	}
	names, err := checkNames(ctx, s, members)
	if err != nil {
		return "", err
	}
	var resolved []string
	var addrs []netip.Addr
	for _, name := range names {
		r, err := res.Resolve(ctx, name, fam)
		if err != nil {
			return "", err
		}
		resolved = append(resolved, fmt.Sprintf("%s resolves to %s (%s)", name, r.Addrs, modeSummary(r)))
		addrs = append(addrs, r.Addrs...)
	}
	if err := CheckAddrs(s, g, addrs); err != nil {
		return "", err
	}
	if len(resolved) == 0 {
		resolved = []string{"its membership is read by the first pass"}
	}
	port := cmp.Or(s.Port, g.Port)
	return fmt.Sprintf("target group %s (%s %s, port %d, %s) in %s; %s; targets will use port %d",
		g.Name, g.TargetType, g.Protocol, g.Port, g.IPAddressType, g.VPCID, strings.Join(resolved, "; "), port), nil
}

// checkNames are the DNS names a check resolves: the mapping's names, or the endpoints of an rds: source's
// available members (none when there is no members reader).
func checkNames(ctx context.Context, s config.Sync, members MembersFunc) ([]string, error) {
	if s.RDS == nil {
		return s.DNSNames(), nil
	}
	if members == nil {
		return nil, nil
	}
	reader, err := members(ctx, s.TargetGroupARN, s.RoleARN)
	if err != nil {
		return nil, err
	}
	got, err := reader.Read(ctx, *s.RDS)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range got.Available() {
		names = append(names, m.Address)
	}
	return names, nil
}

// ula is the IPv6 unique local range, the only IPv6 range in the default allowed_cidrs.
var ula = netip.MustParsePrefix("fc00::/7")

// ipv6Warning warns about an ipv6 target group whose mapping allows no IPv6 range but ULA: AWS gives VPCs global
// unicast IPv6 ranges, so every address the database has in the VPC would be refused (I10).
func ipv6Warning(s config.Sync, g targets.Group) string {
	if g.IPAddressType != "ipv6" {
		return ""
	}
	for _, p := range s.AllowedPrefixes() {
		if p.Addr().Is6() && !p.Addr().Is4In6() && !(p.Bits() >= ula.Bits() && ula.Contains(p.Addr())) {
			return ""
		}
	}
	return fmt.Sprintf("target group %s is ipv6, but allowed_cidrs allows no IPv6 range outside ULA (fc00::/7): AWS VPC IPv6 "+
		"addresses are global unicast, so every database address would be refused (I10); add the IPv6 CIDR of VPC %s "+
		"(e.g. 2600:1f18:1234:5600::/56) to allowed_cidrs", s.TargetGroupARN, g.VPCID)
}

// CheckGroup refuses a target group ipsync cannot serve: not of type ip, or not a Network Load Balancer's. The
// error is a *HardError whose message says what to change.
func CheckGroup(s config.Sync, g targets.Group) error {
	if g.TargetType != "ip" {
		return &HardError{Err: fmt.Errorf("target group %s has target type %q; ipsync needs a target group of type ip: create one with --target-type ip",
			s.TargetGroupARN, g.TargetType)}
	}
	if !slices.Contains(nlbProtocols, g.Protocol) {
		return &HardError{Err: fmt.Errorf("target group %s has protocol %s, not a Network Load Balancer protocol (%s): "+
			"ipsync keeps an NLB's target group; point target_group_arn at an ip target group with protocol TCP (or TLS)",
			s.TargetGroupARN, g.Protocol, strings.Join(nlbProtocols, ", "))}
	}
	return nil
}

// CheckAddrs refuses an answer ipsync must not act on, before anything is planned; the error is a *HardError.
// I10: every address must be one a database can have: never loopback, link-local, unspecified, multicast or
// broadcast, and inside the mapping's allowed_cidrs (by default RFC 1918, RFC 6598 and IPv6 ULA). One other
// address refuses the whole answer, the real new address with it: AWS would refuse the batch that carried both
// anyway, and an answer that carries one is poisoned or misconfigured. The default leaves out a VPC that uses a
// public CIDR block on purpose: ipsync does not read the VPC (which would cost an IAM permission and the EC2
// SDK), so such a VPC's range must be listed in allowed_cidrs. That includes every VPC's IPv6 range: AWS gives
// VPCs global unicast IPv6 CIDRs (Amazon-provided or BYOIP), never ULA, so an ipv6 target group needs
// allowed_cidrs.
func CheckAddrs(s config.Sync, g targets.Group, addrs []netip.Addr) error {
	allowed, allowedText := s.AllowedPrefixes(), fmt.Sprint(s.AllowedCIDRs)
	fix := func(netip.Addr) string {
		return "fix the endpoint's DNS records, or add the database's range to allowed_cidrs"
	}
	if len(allowed) == 0 {
		allowed, allowedText = privateRanges, "(default: RFC 1918, RFC 6598 and IPv6 ULA)"
		fix = func(a netip.Addr) string {
			if a.Is6() && !a.Is4In6() {
				return fmt.Sprintf("AWS VPC IPv6 addresses are global unicast: add the IPv6 CIDR of the target group's VPC %s "+
					"(e.g. 2600:1f18:1234:5600::/56) to allowed_cidrs, or fix the endpoint's DNS records", g.VPCID)
			}
			return fmt.Sprintf("fix the endpoint's DNS records, or if the target group's VPC %s uses a public CIDR block, "+
				"add the VPC's CIDR to allowed_cidrs", g.VPCID)
		}
	}
	for _, a := range addrs {
		if kind := notADatabase(a); kind != "" {
			return &HardError{Err: fmt.Errorf("%s resolves to %v, and %s is %s address, which ipsync never registers (I10): "+
				"fix the endpoint's DNS records or dns.servers (the answer is poisoned or misconfigured)", describeSource(s), addrs, a, kind)}
		}
		if !slices.ContainsFunc(allowed, func(c netip.Prefix) bool { return c.Contains(a) }) {
			return &HardError{Err: fmt.Errorf("%s resolves to %v, with %s, outside allowed_cidrs %s (I10): %s",
				describeSource(s), addrs, a, allowedText, fix(a))}
		}
	}
	return nil
}

// privateRanges are the ranges a database's address is in by default (I10): RFC 1918, RFC 6598 (carrier-grade
// NAT, which VPCs may use) and IPv6 unique local addresses.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// notADatabase names the kind of a that can never be a database's address ("a loopback", ...), or returns "".
// No allowed_cidrs entry overrides it. An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
func notADatabase(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "a loopback"
	case a.IsUnspecified():
		return "an unspecified"
	case a.IsLinkLocalUnicast():
		return "a link-local"
	case a.IsMulticast():
		return "a multicast"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "a broadcast"
	}
	return ""
}
