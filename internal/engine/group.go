package engine

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/plan"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
)

// This file is the mapping's view of its target group: what init learns once, the targets as last read, and
// the health of the targets ipsync registered.

// init learns what the mapping needs from the target group once: port, address family, VPC CIDRs.
func (m *mapping) init(ctx context.Context) error {
	if m.client != nil {
		return nil
	}
	client, err := m.e.deps.Clients(ctx, m.cfg.TargetGroupARN, m.cfg.RoleARN)
	if err != nil {
		return &HardError{Err: fmt.Errorf("AWS client for %s: %w", m.cfg.TargetGroupARN, err)}
	}
	g, err := client.Group(ctx, m.cfg.TargetGroupARN)
	if err != nil {
		return fmt.Errorf("reading target group %s: %w", m.cfg.TargetGroupARN, err)
	}
	if err := CheckGroup(m.cfg, g); err != nil {
		return err
	}
	pol := plan.Policy{
		Port:            cmp.Or(m.cfg.Port, g.Port),
		DeregisterAfter: m.cfg.DeregisterAfter,
		Prune:           m.cfg.Prune,
		AZ:              m.cfg.AvailabilityZone,
	}
	// auto: to choose a zone; vpc: to refuse an address outside the VPC; no allowed_cidrs: the VPC is allowed (I10).
	if pol.AZ == plan.AZAuto || pol.AZ == plan.AZVPC || len(m.cfg.AllowedCIDRs) == 0 {
		pol.VPCCIDRs, err = m.e.vpcs.get(ctx, vpcKey(m.cfg, g.VPCID), func(ctx context.Context) ([]netip.Prefix, error) {
			return client.VPCCIDRs(ctx, g.VPCID)
		})
		if err != nil {
			return fmt.Errorf("reading the CIDRs of VPC %s (the target group's) for availability_zone %s and allowed_cidrs: %w", g.VPCID, pol.AZ, err)
		}
	}
	fam, err := resolver.FamilyFor(g.IPAddressType)
	if err != nil {
		return &HardError{Err: fmt.Errorf("target group %s: %w", m.cfg.TargetGroupARN, err)}
	}
	if m.cfg.RDS != nil && m.membersReader == nil {
		if m.e.deps.Members == nil {
			return &HardError{Err: fmt.Errorf("%s: this ipsync has no RDS client", m.cfg.RDS)}
		}
		if m.membersReader, err = m.e.deps.Members(ctx, m.cfg.TargetGroupARN, m.cfg.RoleARN); err != nil {
			return &HardError{Err: fmt.Errorf("RDS client for %s: %w", m.cfg.RDS, err)}
		}
	}
	if !m.cfg.Prune {
		if err := m.readOwnership(ctx, client); err != nil {
			return err
		}
	}
	m.client, m.group, m.policy, m.family = client, g, pol, fam
	return nil
}

// vpcCache holds VPC CIDRs, read once per VPC as one client sees it: many mappings share a VPC. singleflight makes
// mappings that start together wait for one DescribeVpcs instead of each sending their own. VPC CIDRs change
// rarely; a hard error forgets them (a new secondary CIDR may be the fix), and so does a restart.
type vpcCache struct {
	mu    sync.Mutex
	cidrs map[string][]netip.Prefix
	reads singleflight.Group
}

// vpcKey names the mapping's VPC as its client sees it: one client serves one region and role (targets.Factory).
func vpcKey(s config.Sync, vpcID string) string {
	region, _ := targets.RegionFromARN(s.TargetGroupARN) // valid: the mapping has a client for it
	return region + " " + s.RoleARN + " " + vpcID
}

// get returns the CIDRs under key, calling read once when no other mapping has read them yet.
func (c *vpcCache) get(ctx context.Context, key string, read func(context.Context) ([]netip.Prefix, error)) ([]netip.Prefix, error) {
	c.mu.Lock()
	cidrs, ok := c.cidrs[key]
	c.mu.Unlock()
	if ok {
		return cidrs, nil
	}
	v, err, _ := c.reads.Do(key, func() (any, error) {
		cidrs, err := read(ctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cidrs == nil {
			c.cidrs = map[string][]netip.Prefix{}
		}
		c.cidrs[key] = cidrs
		return cidrs, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]netip.Prefix), nil
}

// forget drops the CIDRs under key, so that the next get reads them again.
func (c *vpcCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cidrs, key)
	c.reads.Forget(key)
}

// forgetGroup drops what init learned (the group, its VPC's CIDRs, the cached targets), so that the next pass
// reads them again: after a hard error the fix may be exactly there (a new secondary CIDR, a recreated group).
func (m *mapping) forgetGroup() {
	if m.client == nil {
		return
	}
	m.e.vpcs.forget(vpcKey(m.cfg, m.group.VPCID))
	m.client, m.describedAt = nil, time.Time{}
}

// refresh reads the target group between resolutions: while following a new target's health, and at the
// resync interval to catch drift. It never changes the target group. The caller holds m.busy.
func (m *mapping) refresh(ctx context.Context) {
	if m.client == nil || m.describedAt.IsZero() || m.now().Before(m.wakeAt()) {
		return
	}
	if err := m.describe(ctx); err != nil {
		m.log.Warn("reading the target group failed; will retry", zap.Error(err))
		m.describedAt = m.now() // back off until the next scheduled read
	}
}

// describe reads the target group's targets into current.
func (m *mapping) describe(ctx context.Context) error {
	cur, err := m.client.Health(ctx, m.cfg.TargetGroupARN)
	if err != nil {
		return fmt.Errorf("reading the targets of %s: %w", m.cfg.TargetGroupARN, err)
	}
	m.current, m.describedAt = cur, m.now()
	// Targets by state first: a scrape that sees a convergence to healthy then also sees the healthy target.
	m.setTargetMetrics()
	m.observeHealth()
	return nil
}

// observeHealth records convergence to healthy for the targets ipsync is following.
func (m *mapping) observeHealth() {
	now := m.now()
	for ip, f := range m.awaitHealthy {
		healthy := slices.ContainsFunc(m.current, func(h nlb.TargetHealth) bool {
			return h.IP == ip && h.Port == m.policy.Port && h.State == nlb.StateHealthy
		})
		present := slices.ContainsFunc(m.current, func(h nlb.TargetHealth) bool {
			return h.IP == ip && h.Port == m.policy.Port && !h.Draining()
		})
		followed := []nlb.Target{{IP: ip, Port: m.policy.Port}}
		switch {
		case !present:
			delete(m.awaitHealthy, ip) // removed, by us or behind our back: nothing to follow
		case healthy && f.changedAt.IsZero():
			m.log.Info("target healthy", zap.Stringers("targets", followed), zap.Duration("since_registration", now.Sub(f.registeredAt)))
			delete(m.awaitHealthy, ip)
		case healthy:
			m.e.deps.Metrics.Converged(m.cfg.Name, metrics.StageHealthy, now.Sub(f.changedAt))
			m.log.Info("target healthy", zap.Stringers("targets", followed), zap.Duration("since_change", now.Sub(f.changedAt)))
			delete(m.awaitHealthy, ip)
		case now.Sub(f.registeredAt) > m.e.opts.FollowFor:
			m.log.Warn("target not healthy yet; no longer following it closely (check the target group's health check and the database's security group)",
				zap.Stringers("targets", followed), zap.Duration("since_registration", now.Sub(f.registeredAt)))
			delete(m.awaitHealthy, ip)
		}
	}
}

func (m *mapping) setTargetMetrics() {
	byState := map[string]int{}
	for _, h := range m.current {
		byState[h.State]++
	}
	m.e.deps.Metrics.SetTargets(m.cfg.Name, byState)
}
