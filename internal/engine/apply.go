package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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
	if !m.e.opts.DryRun || m.shadowNews(p) {
		m.log.Info("target group out of sync", zap.Stringers("addresses", m.lastAddrs),
			zap.Stringers("register", p.Register), zap.Stringers("deregister", p.Deregister),
			zap.Stringers("waiting", p.Waiting), zap.Bool("dry_run", m.e.opts.DryRun))
	}
	if m.e.opts.DryRun {
		// I8: decided here, at the point of change.
		rep.Registered, rep.Deregistered = p.Register, p.Deregister
		rep.ZoneAtRegistration = m.zoneAtRegistration(p.Register)
		return nil
	}
	if len(p.Register) > 0 {
		done, err := m.register(ctx, p.Register)
		rep.Registered = done
		if awserr.IsTooManyTargets(err) && len(p.Deregister) > 0 && !m.skipDeregistration(p.Deregister) {
			m.log.Warn("target group is full (TooManyTargets): deregistering stale targets before registering, an exception to register-first",
				zap.Stringers("deregister", p.Deregister))
			if err := m.deregisterStale(ctx, p.Deregister, rep); err != nil {
				return err
			}
			p.Deregister = nil
			done, err = m.register(ctx, p.Register)
			rep.Registered = union(rep.Registered, done)
		}
		if err != nil {
			return err // I3: nothing is deregistered when registration failed
		}
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

// shadowNews reports whether a dry run's plan is worth a log line: it differs from the one logged last, or the
// target group was read since. A difference a dry run never applies is then logged once per resync_interval, not
// every TTL.
func (m *mapping) shadowNews(p plan.Plan) bool {
	key := fmt.Sprint(p.Register, p.Deregister, p.Waiting, m.lastAddrs)
	if key == m.shadowLogged && m.describedAt.Equal(m.shadowRead) {
		return false
	}
	m.shadowLogged, m.shadowRead = key, m.describedAt
	return true
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
		err = CheckAddrs(m.cfg, m.group, want)
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

// register registers ts and follows their health. It returns the targets registered, with the zone AWS took
// them with, also when it fails part way. A failure is returned, not logged: finish logs the pass.
func (m *mapping) register(ctx context.Context, ts []nlb.Target) ([]nlb.Target, error) {
	m.log.Info("registering targets", zap.Stringers("targets", ts))
	err := m.client.Register(ctx, m.cfg.TargetGroupARN, ts)
	switch {
	case err == nil:
		m.registered(ts)
		return ts, nil
	case m.policy.AZ == plan.AZAuto && awserr.IsInvalid(err):
		return m.registerEach(ctx, ts, err)
	default:
		return nil, fmt.Errorf("registering %v in %s: %w", ts, m.cfg.TargetGroupARN, err)
	}
}

// registerEach learns from AWS which addresses are outside the target group's VPC (availability_zone auto),
// after AWS refused the batch ts as invalid. AWS takes an address inside the VPC only without a zone and one
// outside it (a peered VPC, on premises) only with "all", and refuses a whole batch for one address sent the
// other way. So each address is registered alone: with the zone planned for it, then with the other one. The
// zone AWS accepts is remembered (plan.LearnZone), so later registrations of an outside address send "all" at
// once. An address AWS refuses both ways is a hard error naming it and AWS's answers, after the other addresses
// were tried (one refused address must not keep a new writer out); the addresses AWS took are returned, and
// nothing is deregistered (I3). Any other error (throttling, the network) stops at once.
func (m *mapping) registerEach(ctx context.Context, ts []nlb.Target, batchErr error) ([]nlb.Target, error) {
	m.log.Info("AWS refused the registration as invalid; registering each address alone to learn which need AvailabilityZone all (outside the target group's VPC)",
		zap.Stringers("targets", ts), zap.Error(batchErr))
	var done []nlb.Target
	var refused []*HardError
	for _, t := range ts {
		got, err := m.registerAlone(ctx, t, batchErr, len(ts) == 1)
		var h *HardError
		switch {
		case errors.As(err, &h):
			refused = append(refused, h)
		case err != nil:
			return done, err
		default:
			done = append(done, got)
		}
	}
	switch len(refused) {
	case 0:
		return done, nil
	case 1:
		return done, refused[0]
	}
	errs := make([]error, len(refused))
	for i, h := range refused {
		errs[i] = h.Err
	}
	return done, &HardError{Err: errors.Join(errs...), Fix: refused[0].Fix}
}

// registerAlone registers t by itself, with the zone planned for it, then with the other one, and returns the
// target as AWS took it. answered: the refused batch was t alone, so batchErr is already AWS's answer to the
// first try.
func (m *mapping) registerAlone(ctx context.Context, t nlb.Target, batchErr error, answered bool) (nlb.Target, error) {
	zones := []string{t.AvailabilityZone, "all"}
	if t.AvailabilityZone == "all" {
		zones = []string{"all", ""}
	}
	refused := map[string]error{}
	for i, zone := range zones {
		try := nlb.Target{IP: t.IP, Port: t.Port, AvailabilityZone: zone}
		err := batchErr
		if !answered || i > 0 {
			err = m.client.Register(ctx, m.cfg.TargetGroupARN, []nlb.Target{try})
		}
		if err == nil {
			m.learnZone(try)
			m.registered([]nlb.Target{try})
			return try, nil
		}
		if !awserr.IsInvalid(err) {
			return nlb.Target{}, fmt.Errorf("registering %v in %s: %w", try, m.cfg.TargetGroupARN, err)
		}
		refused[zone] = err
	}
	addr := netip.AddrPortFrom(t.IP, uint16(t.Port)) //nolint:gosec // G115: a port is 1-65535 (validated config, AWS answers)
	return nlb.Target{}, &HardError{
		Err: fmt.Errorf("AWS refuses to register %s in %s both without an AvailabilityZone (%w) and with AvailabilityZone all (%w); nothing deregistered",
			addr, m.cfg.TargetGroupARN, refused[""], refused["all"]),
		Fix: "check the endpoint's address and the port: AWS takes an address inside the target group's VPC without a zone and one outside it (a peered VPC) with all",
	}
}

// learnZone remembers the zone AWS took target t with, and says so the first time.
func (m *mapping) learnZone(t nlb.Target) {
	if mem := plan.LearnZone(m.mem, t.IP, t.AvailabilityZone == "all"); len(mem.ZoneAll) != len(m.mem.ZoneAll) {
		m.log.Info("AWS takes the address only with this zone; later registrations send it at once",
			zap.Stringer("target", t), zap.Bool("outside_vpc", t.AvailabilityZone == "all"))
		m.mem = mem
	}
}

// registered records targets AWS accepted: ipsync's own (I7), in the view of the group as initial, and followed
// until healthy.
func (m *mapping) registered(ts []nlb.Target) {
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
}

// zoneAtRegistration are the addresses of a dry run's registrations whose zone AWS's answer decides
// (availability_zone auto, nothing learned yet): a dry run sends nothing, so it cannot learn (I8).
func (m *mapping) zoneAtRegistration(ts []nlb.Target) []netip.Addr {
	if m.policy.AZ != plan.AZAuto {
		return nil
	}
	var out []netip.Addr
	for _, t := range ts {
		if t.AvailabilityZone == "" {
			out = append(out, t.IP)
		}
	}
	return out
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
