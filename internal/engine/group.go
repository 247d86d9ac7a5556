package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/plan"
	"github.com/ipsync/ipsync/internal/resolver"
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
		Port:            cmpOr(m.cfg.Port, g.Port),
		DeregisterAfter: m.cfg.DeregisterAfter,
		Prune:           m.cfg.Prune,
		AZ:              m.cfg.AvailabilityZone,
	}
	if pol.AZ == plan.AZAuto || pol.AZ == plan.AZVPC { // vpc: to refuse an address outside the VPC (CheckAddrs)
		if pol.VPCCIDRs, err = m.e.vpcCIDRs(ctx, client, g.VPCID); err != nil {
			return fmt.Errorf("reading the CIDRs of VPC %s (the target group's) for availability_zone %s: %w", g.VPCID, pol.AZ, err)
		}
	}
	fam, err := resolver.FamilyFor(g.IPAddressType)
	if err != nil {
		return &HardError{Err: fmt.Errorf("target group %s: %w", m.cfg.TargetGroupARN, err)}
	}
	m.client, m.group, m.policy, m.family = client, g, pol, fam
	return nil
}

func cmpOr(a, b int32) int32 {
	if a != 0 {
		return a
	}
	return b
}

// vpcKey names a VPC as one client sees it.
type vpcKey struct {
	client TargetGroup
	vpcID  string
}

// vpcCIDRs returns the VPC's CIDRs, from the cache when another mapping already read them. VPC CIDRs change
// rarely; a restart picks up a change.
func (e *Engine) vpcCIDRs(ctx context.Context, client TargetGroup, vpcID string) ([]netip.Prefix, error) {
	key := vpcKey{client, vpcID}
	e.vpcMu.Lock()
	cidrs, ok := e.vpcs[key]
	e.vpcMu.Unlock()
	if ok {
		return cidrs, nil
	}
	cidrs, err := client.VPCCIDRs(ctx, vpcID)
	if err != nil {
		return nil, err
	}
	e.vpcMu.Lock()
	defer e.vpcMu.Unlock()
	if e.vpcs == nil {
		e.vpcs = map[vpcKey][]netip.Prefix{}
	}
	e.vpcs[key] = cidrs
	return cidrs, nil
}

// forgetGroup drops what init learned (the group, its VPC's CIDRs, the cached targets), so that the next pass
// reads them again: after a hard error the fix may be exactly there (a new secondary CIDR, a recreated group).
func (m *mapping) forgetGroup() {
	if m.client == nil {
		return
	}
	m.e.vpcMu.Lock()
	delete(m.e.vpcs, vpcKey{m.client, m.group.VPCID})
	m.e.vpcMu.Unlock()
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
	m.observeHealth()
	m.setTargetMetrics()
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
			m.e.deps.Metrics.Converged(m.cfg.Name, "healthy", now.Sub(f.changedAt))
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
