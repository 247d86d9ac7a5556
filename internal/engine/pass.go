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
// endpoint, plan against the target group, apply the plan, and record the outcome (finish). The caller holds
// m.busy.
func (m *mapping) pass(ctx context.Context) (rep Report) {
	start := time.Now() // for the pass's duration metric: wall time
	rep = Report{Sync: m.cfg.Name, Endpoint: m.cfg.Endpoint, TargetGroupARN: m.cfg.TargetGroupARN, DryRun: m.e.opts.DryRun}
	defer func() { m.finish(&rep, start) }()

	if err := m.init(ctx); err != nil {
		rep.err = err
		m.nextResolve = m.now().Add(m.e.cfg.Poll.Max)
		return rep
	}
	res, resolvedAt, changed, err := m.resolve(ctx, &rep)
	if err != nil {
		rep.err = err
		return rep
	}
	p, err := m.plan(ctx, res, resolvedAt, changed)
	if err != nil {
		rep.err = err
		return rep
	}
	rep.Waiting, rep.Kept, rep.InSync = p.Waiting, p.Kept, p.InSync
	if p.InSync {
		m.changedAt = time.Time{} // the change is fully handled; a later drift fix is not a failover to time
	}
	rep.err = m.apply(ctx, p, &rep)
	m.writeOwnership(ctx) // also after a failed apply: what was registered before the failure is recorded
	rep.Targets = slices.Clone(m.current)
	return rep
}

// resolve resolves the endpoint for a pass, schedules the next resolution, refuses addresses the availability_zone
// policy cannot register, and notes an address change. It fills the report's DNS fields.
func (m *mapping) resolve(ctx context.Context, rep *Report) (res resolver.Result, at time.Time, changed bool, err error) {
	res, err = m.query(ctx)
	if err != nil {
		// I1: the desired state is unknown, so nothing changes. Try again soon: DNS errors are usually brief.
		m.nextResolve = m.now().Add(m.e.cfg.Poll.Min)
		return res, at, false, fmt.Errorf("resolving %s: %w; no target changed", m.cfg.Endpoint, err)
	}
	rep.Addresses, rep.TTL, rep.TTLSeconds, rep.Chain, rep.Server = res.Addrs, res.TTL, res.TTL.Seconds(), res.Chain, res.Server
	m.noteMode(res, rep)
	at = m.now()
	m.nextResolve = at.Add(m.ttl(res))
	m.e.deps.Metrics.SetResolvedAddresses(m.cfg.Name, len(res.Addrs))
	if err := CheckAddrs(m.cfg, m.group, m.policy.VPCCIDRs, res.Addrs); err != nil {
		return res, at, false, fmt.Errorf("%w; no target changed", err) // refused before any change (I10, availability_zone vpc)
	}
	changed = m.lastAddrs != nil && !slices.Equal(m.lastAddrs, res.Addrs)
	if changed {
		m.changedAt = m.now()
		m.e.deps.Metrics.AddressChange(m.cfg.Name)
		m.log.Info("address change detected", zap.Stringers("from", m.lastAddrs), zap.Stringers("to", res.Addrs),
			zap.Strings("chain", res.Chain), zap.String("dns_server", res.Server))
	}
	m.lastAddrs = res.Addrs
	return res, at, changed, nil
}

// query resolves the endpoint and counts the query. Durations are wall time, whatever clock schedules passes.
func (m *mapping) query(ctx context.Context) (resolver.Result, error) {
	start := time.Now()
	res, err := m.e.deps.Resolver.Resolve(ctx, m.cfg.Endpoint, m.family)
	m.e.deps.Metrics.DNSQuery(m.cfg.Name, dnsResult(err), time.Since(start))
	return res, err
}

// plan records the answer in memory and plans against the target group. The group is read first when the
// addresses changed or the view is older than resync_interval; a plan that changes something is never made from
// a cached view: the group is read again and the plan made on what is there now.
func (m *mapping) plan(ctx context.Context, res resolver.Result, at time.Time, changed bool) (plan.Plan, error) {
	fresh := changed || m.describedAt.IsZero() || m.now().Sub(m.describedAt) >= m.e.cfg.ResyncInterval
	if fresh {
		if err := m.describe(ctx); err != nil {
			return plan.Plan{}, err
		}
	}
	m.observe(res, at)
	p := plan.Make(res.Addrs, m.current, m.mem, m.policy)
	if !p.Empty() && !fresh {
		if err := m.describe(ctx); err != nil {
			return plan.Plan{}, err
		}
		p = plan.Make(res.Addrs, m.current, m.mem, m.policy)
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
