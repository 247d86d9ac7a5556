package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/plan"
)

// apply changes the target group as planned: register first, deregister only once the new targets are seen in
// DescribeTargetHealth (I3), except when the group is full (TooManyTargets), where stale targets must go first to
// make room.
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
		if awserr.IsTooManyTargets(err) && len(p.Deregister) > 0 && !m.skipDeregistration(p.Deregister) {
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
	if len(p.Deregister) > 0 && !m.skipDeregistration(p.Deregister) {
		if err := m.awaitSeen(ctx, rep.Registered); err != nil {
			return err
		}
		if err := m.deregisterStale(ctx, p.Deregister, rep); err != nil {
			return err
		}
	}
	m.setTargetMetrics()
	return nil
}

// seenAfter are the waits before each DescribeTargetHealth read that looks for targets just registered, before
// stale ones are deregistered (I3). AWS lists a new target (as initial) at once; the later reads cover a brief
// lag, and the bound keeps the pass short when a registration AWS accepted never shows up: the next pass
// registers it again.
var seenAfter = []time.Duration{0, 250 * time.Millisecond, time.Second}

// awaitSeen returns nil once every target of ts is in DescribeTargetHealth in any state but draining, and an
// error after len(seenAfter) reads without them. A successful RegisterTargets answer alone is not enough (I3).
func (m *mapping) awaitSeen(ctx context.Context, ts []nlb.Target) error {
	if len(ts) == 0 {
		return nil
	}
	var missing []nlb.Target
	for _, d := range seenAfter {
		if !sleep(ctx, d) {
			return fmt.Errorf("stopped while waiting for %v to appear in %s; nothing deregistered", ts, m.cfg.TargetGroupARN)
		}
		if err := m.describe(ctx); err != nil {
			return fmt.Errorf("reading the targets to see %v before deregistering stale ones: %w; nothing deregistered", ts, err)
		}
		missing = slices.DeleteFunc(slices.Clone(ts), func(t nlb.Target) bool {
			return slices.ContainsFunc(m.current, func(h nlb.TargetHealth) bool { return h.IP == t.IP && h.Port == t.Port && !h.Draining() })
		})
		if len(missing) == 0 {
			return nil
		}
	}
	return fmt.Errorf("registered %v in %s, but after %d reads over %s they are not in DescribeTargetHealth (AWS accepted the registration and has not carried it out); "+
		"nothing deregistered: the stale targets stay until the new ones appear, and the next pass registers them again",
		missing, m.cfg.TargetGroupARN, len(seenAfter), sum(seenAfter))
}

// sleep waits d; false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func sum(ds []time.Duration) (total time.Duration) {
	for _, d := range ds {
		total += d
	}
	return total
}

// deregisterStale resolves the mapping's sources once more, then deregisters the targets a plan on that fresh
// answer still deregisters. The pass's answer can be seconds old by now when AWS was slow or throttled, and an
// address DNS serves again meanwhile must stay (I2 on the freshest answer); a source that fails now holds what
// it last stood for (I1). When no source answers, or an answer carries an address ipsync refuses (I10), nothing
// is deregistered.
func (m *mapping) deregisterStale(ctx context.Context, ts []nlb.Target, rep *Report) error {
	answers := m.resolveSpecs(ctx, m.specs())
	want := desired(answers)
	var err error
	switch {
	case len(want) == 0:
		if err = m.sourceFailures(answers); err == nil {
			err = errors.New("no member is available")
		}
	default:
		err = CheckAddrs(m.cfg, m.group, m.policy.VPCCIDRs, want)
	}
	if err != nil {
		return fmt.Errorf("resolving %s again before deregistering %v: %w; nothing deregistered", describeSource(m.cfg), ts, err)
	}
	srcs := m.planSources(answers)
	m.observe(srcs) // just after the pass's own resolution: resets an address that is back
	again := plan.MakeSources(srcs, m.current, m.mem, m.policy).Deregister
	var stale, back []nlb.Target
	for _, t := range ts {
		if slices.Contains(again, t) {
			stale = append(stale, t)
		} else {
			back = append(back, t)
		}
	}
	if len(back) > 0 {
		m.log.Info("not deregistering targets DNS returns again", zap.Stringers("targets", back), zap.Stringers("addresses", desired(answers)))
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
	m.ownPending = true
	m.e.deps.Metrics.Registered(m.cfg.Name, len(ts))
	for _, t := range ts {
		m.current = slices.DeleteFunc(m.current, func(h nlb.TargetHealth) bool { return h.IP == t.IP && h.Port == t.Port })
		m.current = append(m.current, nlb.TargetHealth{Target: t, State: nlb.StateInitial})
		// Convergence is measured from a seen address change; a first registration at start-up has none, but
		// its health is still followed.
		if !m.changedAt.IsZero() {
			m.e.deps.Metrics.Converged(m.cfg.Name, metrics.StageRegistered, now.Sub(m.changedAt))
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
	m.ownPending = true
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
