package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/plan"
	"github.com/ipsync/ipsync/internal/resolver"
)

// pass is one reconcile pass over a mapping, in this order: learn the target group once (init), resolve the
// mapping's sources, plan against the target group, apply the plan, and record the outcome (finish). The
// caller holds m.busy.
func (m *mapping) pass(ctx context.Context) (rep Report) {
	start := time.Now() // for the pass's duration metric: wall time
	rep = Report{Sync: m.cfg.Name, Endpoint: describeSource(m.cfg), TargetGroupARN: m.cfg.TargetGroupARN, DryRun: m.e.opts.DryRun}
	defer func() { m.finish(&rep, start) }()

	if err := m.init(ctx); err != nil {
		rep.err = err
		m.nextResolve = m.now().Add(m.e.cfg.Poll.Max)
		return rep
	}
	srcs, changed, partial, err := m.resolve(ctx, &rep)
	if err != nil {
		rep.err = err
		return rep
	}
	ctx = m.budgetCtx(ctx) // after resolve, which notes an address change
	p, err := m.plan(ctx, srcs, changed)
	if err != nil {
		rep.err = err
		return rep
	}
	rep.Waiting, rep.Kept, rep.Held, rep.InSync = p.Waiting, p.Kept, p.Held, p.InSync
	if p.InSync {
		m.changedAt = time.Time{} // the change is fully handled; a later drift fix is not a failover to time
	}
	rep.err = m.apply(ctx, p, &rep)
	m.writeOwnership(ctx) // also after a failed apply: what was registered before the failure is recorded
	if rep.err == nil {
		rep.err = partial // some sources did not answer: what they stood for stays, the pass says why
	}
	rep.Targets = slices.Clone(m.current)
	return rep
}

// resolve reads an rds: membership when due, resolves every source, schedules the next resolution, refuses
// addresses ipsync must not register (I10), and notes a change of the desired addresses. It fills
// the report's DNS and source fields. err is set when no source answered: nothing may change (I1). partial names
// the sources that did not answer while others did: the plan keeps what they stood for.
func (m *mapping) resolve(ctx context.Context, rep *Report) (srcs []plan.Source, changed bool, partial, err error) {
	m.readMembers(ctx)
	answers := m.resolveSpecs(ctx, m.specs())
	rep.Sources = sourceReports(answers)
	failures := m.sourceFailures(answers)
	now := m.now()
	next := now.Add(m.e.cfg.Poll.Max)
	for _, a := range answers {
		switch {
		case a.err == nil:
			next = minTime(next, a.at.Add(m.ttl(a.res)))
		case a.dns != "":
			next = minTime(next, now.Add(m.e.cfg.Poll.Min)) // DNS errors are usually brief
		}
	}
	if m.cfg.RDS != nil {
		next = minTime(next, m.nextMembers)
	}
	m.nextResolve = next
	want := desired(answers)
	if len(want) == 0 {
		// I1: the desired state is unknown, so nothing changes.
		m.nextResolve = minTime(next, now.Add(m.e.cfg.Poll.Min))
		return nil, false, nil, m.unknown(answers)
	}
	rep.Addresses = want
	for _, a := range answers {
		if a.err == nil {
			m.noteMode(a.res, rep) // the mapping's DNS mode, as its first source that answered got it
			break
		}
	}
	if len(answers) == 1 {
		res := answers[0].res
		rep.TTL, rep.Chain, rep.Server = res.TTL, res.Chain, res.Server
	} else {
		for _, a := range answers {
			if a.err == nil && !a.hold && (rep.TTL == 0 || a.res.TTL < rep.TTL) {
				rep.TTL = a.res.TTL
			}
		}
	}
	rep.TTLSeconds = rep.TTL.Seconds()
	m.e.deps.Metrics.SetResolvedAddresses(m.cfg.Name, len(want))
	if err := CheckAddrs(m.cfg, m.group, want); err != nil {
		return nil, false, nil, fmt.Errorf("%w; no target changed", err) // refused before any change (I10)
	}
	changed = m.lastAddrs != nil && !slices.Equal(m.lastAddrs, want)
	if changed {
		m.changedAt = now
		m.e.deps.Metrics.AddressChange(m.cfg.Name)
		m.log.Info("address change detected", zap.Stringers("from", m.lastAddrs), zap.Stringers("to", want),
			zap.Strings("chain", rep.Chain), zap.String("dns_server", rep.Server))
	}
	m.lastAddrs = want
	return m.planSources(answers), changed, failures, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// query resolves one name and counts the query. Durations are wall time, whatever clock schedules passes.
func (m *mapping) query(ctx context.Context, name string) (resolver.Result, error) {
	start := time.Now()
	res, err := m.e.deps.Resolver.Resolve(ctx, name, m.family)
	m.e.deps.Metrics.DNSQuery(m.cfg.Name, dnsResult(err), time.Since(start))
	return res, err
}

// plan records the sources in memory and plans against the target group. The group is read first when the
// addresses changed or the view is older than the mapping's resync interval; a plan that changes something is never
// made from a cached view: the group is read again and the plan made on what is there now. A dry run changes
// nothing, so its plan stands on the cached view until the resync is due: a difference it never applies must not
// cost a DescribeTargetHealth every TTL, more than steady state (I9).
func (m *mapping) plan(ctx context.Context, srcs []plan.Source, changed bool) (plan.Plan, error) {
	fresh := changed || m.describedAt.IsZero() || m.now().Sub(m.describedAt) >= m.resync
	if fresh {
		if err := m.describe(ctx); err != nil {
			return plan.Plan{}, err
		}
	}
	m.observe(srcs)
	p := plan.MakeSources(srcs, m.current, m.mem, m.policy)
	if !p.Empty() && !fresh && !m.e.opts.DryRun {
		if err := m.describe(ctx); err != nil {
			return plan.Plan{}, err
		}
		p = plan.MakeSources(srcs, m.current, m.mem, m.policy)
	}
	return p, nil
}

// finish records the pass in metrics, logs and readiness: a failed pass is logged here, once.
func (m *mapping) finish(rep *Report, start time.Time) {
	rep.err = classify(rep.err)
	switch {
	case rep.err != nil && IsHard(rep.err):
		// No retry fixes it: an error line saying what to change, and the next try only after poll.max, so that
		// a fix is picked up without a restart and AWS is not asked the refused question every TTL.
		rep.Result, rep.Error = ResultError, rep.err.Error()
		m.log.Error("sync pass failed", zap.Error(rep.err), zap.String("fault", "hard"), zap.Stringers("addresses", m.lastAddrs))
		m.nextResolve = m.now().Add(m.e.cfg.Poll.Max)
		m.forgetGroup()
	case rep.err != nil:
		rep.Result, rep.Error = ResultError, rep.err.Error()
		m.log.Warn("sync pass failed", zap.Error(rep.err), zap.String("fault", "soft"), zap.Stringers("addresses", m.lastAddrs))
	case rep.Changed():
		rep.Result = ResultChanged
	default:
		rep.Result = ResultUnchanged
	}
	rep.nextResolve = m.nextResolve
	m.e.deps.Metrics.SyncRun(m.cfg.Name, rep.Result, time.Since(start))
	if rep.err == nil {
		// After a failed pass in_sync keeps its last known value: a DNS outage is not a drift.
		m.e.deps.Metrics.SetInSync(m.cfg.Name, rep.InSync)
	}
	m.setStatus(rep.err)
}

func dnsResult(err error) string {
	if err == nil {
		return "success"
	}
	return string(resolver.KindOf(err))
}
