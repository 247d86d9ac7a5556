package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/plan"
	"github.com/ipsync/ipsync/internal/resolver"
)

// This file is the mapping's view of its target group: what init learns once, the targets as last read, and
// the health of the targets ipsync registered.

// init learns what the mapping needs from the target group once: port and address family. It does not read the
// VPC: availability_zone auto learns from AWS's answers which addresses are outside it (register).
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

// forgetGroup drops what init learned (the group, the cached targets), so that the next pass reads them again:
// after a hard error the fix may be exactly there (a recreated group, a new port).
func (m *mapping) forgetGroup() {
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
