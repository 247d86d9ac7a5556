package engine

import (
	"context"
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/plan"
)

// apply changes the target group as planned: register first, deregister only after that succeeded (I3), except
// when the group is full (TooManyTargets), where stale targets must go first to make room.
func (m *mapping) apply(ctx context.Context, p plan.Plan, rep *Report) error {
	if p.Empty() {
		return nil
	}
	m.log.Info("target group out of sync", zap.Stringers("addresses", m.lastAddrs),
		zap.Stringers("register", p.Register), zap.Stringers("deregister", p.Deregister),
		zap.Stringers("waiting", p.Waiting), zap.Bool("dry_run", m.e.opts.DryRun))
	if m.e.opts.DryRun {
		// I8: decided here, at the point of change.
		rep.Registered, rep.Deregistered = p.Register, p.Deregister
		return nil
	}
	if len(p.Register) > 0 {
		err := m.register(ctx, p.Register)
		if awserr.IsTooManyTargets(err) && len(p.Deregister) > 0 {
			m.log.Warn("target group is full (TooManyTargets): deregistering stale targets before registering, an exception to register-first",
				zap.Stringers("deregister", p.Deregister))
			if err := m.deregisterStale(ctx, p.Deregister, rep); err != nil {
				return err
			}
			p.Deregister = nil
			err = m.register(ctx, p.Register)
		}
		if err != nil {
			return err // I3: nothing is deregistered when registration failed
		}
		rep.Registered = p.Register
	}
	if len(p.Deregister) > 0 {
		if err := m.deregisterStale(ctx, p.Deregister, rep); err != nil {
			return err
		}
	}
	m.setTargetMetrics()
	return nil
}

// deregisterStale resolves the endpoint once more, then deregisters the targets DNS still leaves out. The pass's
// answer can be seconds old by now when AWS was slow or throttled, and an address DNS serves again meanwhile must
// stay (I2 on the freshest answer). When that resolution fails, or carries an address ipsync refuses (I10),
// nothing is deregistered (I1).
func (m *mapping) deregisterStale(ctx context.Context, ts []nlb.Target, rep *Report) error {
	res, err := m.query(ctx)
	if err == nil {
		err = CheckAddrs(m.cfg, m.group, m.policy.VPCCIDRs, res.Addrs)
	}
	if err != nil {
		return fmt.Errorf("resolving %s again before deregistering %v: %w; nothing deregistered", m.cfg.Endpoint, ts, err)
	}
	m.observe(res, m.now()) // just after the pass's own resolution: resets an address that is back, counts no absence
	var stale, back []nlb.Target
	for _, t := range ts {
		if slices.Contains(res.Addrs, t.IP) {
			back = append(back, t)
		} else {
			stale = append(stale, t)
		}
	}
	if len(back) > 0 {
		m.log.Info("not deregistering targets DNS returns again", zap.Stringers("targets", back), zap.Stringers("addresses", res.Addrs))
	}
	if len(stale) == 0 {
		return nil
	}
	if err := m.deregister(ctx, stale); err != nil {
		return err
	}
	rep.Deregistered = append(rep.Deregistered, stale...)
	return nil
}

// register registers ts and follows their health. A failure is returned, not logged: finish logs the pass.
func (m *mapping) register(ctx context.Context, ts []nlb.Target) error {
	m.log.Info("registering targets", zap.Stringers("targets", ts))
	if err := m.client.Register(ctx, m.cfg.TargetGroupARN, ts); err != nil {
		return fmt.Errorf("registering %v in %s: %w", ts, m.cfg.TargetGroupARN, err)
	}
	now := m.now()
	m.log.Info("registered targets", zap.Stringers("targets", ts))
	m.mem = plan.Registered(m.mem, ts)
	m.e.deps.Metrics.Registered(m.cfg.Name, len(ts))
	for _, t := range ts {
		m.current = slices.DeleteFunc(m.current, func(h nlb.TargetHealth) bool { return h.IP == t.IP && h.Port == t.Port })
		m.current = append(m.current, nlb.TargetHealth{Target: t, State: nlb.StateInitial})
		// Convergence is measured from a seen address change; a first registration at start-up has none, but
		// its health is still followed.
		if !m.changedAt.IsZero() {
			m.e.deps.Metrics.Converged(m.cfg.Name, "registered", now.Sub(m.changedAt))
		}
		m.awaitHealthy[t.IP] = follow{changedAt: m.changedAt, registeredAt: now}
	}
	return nil
}

// deregister deregisters ts, exactly as the target group reported them (I4). A failure is returned, not logged.
func (m *mapping) deregister(ctx context.Context, ts []nlb.Target) error {
	m.log.Info("deregistering targets", zap.Stringers("targets", ts))
	if err := m.client.Deregister(ctx, m.cfg.TargetGroupARN, ts); err != nil {
		return fmt.Errorf("deregistering %v from %s: %w", ts, m.cfg.TargetGroupARN, err)
	}
	m.log.Info("deregistered targets", zap.Stringers("targets", ts))
	m.mem = plan.Deregistered(m.mem, ts)
	m.e.deps.Metrics.Deregistered(m.cfg.Name, len(ts))
	for _, t := range ts {
		delete(m.awaitHealthy, t.IP) // gone before it was healthy: nothing left to follow (I9)
		for i := range m.current {
			if m.current[i].Target == t {
				m.current[i].State = nlb.StateDraining
			}
		}
	}
	return nil
}
