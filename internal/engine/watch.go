package engine

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/nlb"
)

// This file serves the Lambda handler: passes over some mappings, and the failover watch. Both reuse the
// mapping's own reconcile, so the safety invariants and the memory between passes are the daemon's. Lambda can
// run invocations of one execution environment concurrently (AWS_LAMBDA_MAX_CONCURRENCY): every read or write of
// a mapping's memory here holds its busy lock, as the passes do.

// Names returns the mapping names in configuration order.
func (e *Engine) Names() []string {
	ms := e.current()
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.cfg.Name
	}
	return names
}

// RunOnceFor is RunOnce (Settle included) over the named mappings only, with reports in configuration order.
// Names that are not mappings are skipped: check them against Names first.
func (e *Engine) RunOnceFor(ctx context.Context, names []string) []Report {
	return each(e, e.selected(names), func(m *mapping) Report { return m.runOnce(ctx) })
}

// WatchReport is what a failover watch did for one mapping.
type WatchReport struct {
	// Report is the last pass, except that Registered and Deregistered hold everything the watch registered and
	// deregistered, and Result is "changed" when that is anything and the last pass did not fail.
	Report
	Passes       int `json:"passes"`
	FailedPasses int `json:"failed_passes,omitempty"`
	// AddressChanged: the endpoint resolved to other addresses than before the watch (or than at its first pass).
	AddressChanged bool `json:"address_changed"`
	// Settled: the watch saw a change (of the addresses, or of targets it had to register or deregister) and the
	// target group caught up with it, nothing left waiting, before the window ended.
	Settled bool `json:"settled"`
}

// Watch follows a failover: it resolves each named mapping and syncs it, again interval (default 1 s) after
// each pass, until its change has been seen and synced (WatchReport.Settled) or until window has passed or ctx
// is done. The mappings are watched at once, each ending on its own. It serves the Lambda's RDS events, which
// may come before the DNS record changes. A watch starts no pass that would begin after the window; an engine
// with DryRun changes nothing, so its watches never settle and last the window.
func (e *Engine) Watch(ctx context.Context, names []string, window, interval time.Duration) []WatchReport {
	if interval <= 0 {
		interval = time.Second
	}
	end := time.Now().Add(window) // wall clock: the window is the Lambda invocation's, not the engine's clock
	return each(e, e.selected(names), func(m *mapping) WatchReport { return m.watch(ctx, end, interval) })
}

func (m *mapping) watch(ctx context.Context, end time.Time, interval time.Duration) WatchReport {
	// The baseline is what this process last resolved (an execution environment lives across invocations);
	// without one, the first pass of the watch sets it.
	m.busy.Lock()
	s := watchState{baseline: m.lastAddrs}
	m.busy.Unlock()
	// The next pass starts interval after this one ended, as the daemon schedules: a ticker would start some
	// passes less than interval after the previous resolution, which the query budget answers with the same,
	// shared answer (resolver.Coalescer), so that a poll is lost.
	var last Report
	var membersRead time.Time
	for {
		if m.cfg.RDS != nil && time.Since(membersRead) >= config.MinRDSRefresh {
			// A failover changes an rds: source's members too (the writer and a reader swap): read them at the
			// shortest refresh while the watch lasts.
			membersRead = time.Now()
			m.refreshMembers()
		}
		last = m.reconcile(ctx)
		if s.see(last, m.e.opts.DryRun) || !time.Now().Add(interval).Before(end) || !wait(ctx, interval) {
			break
		}
	}
	w := s.WatchReport
	m.log.Info("failover watch ended", zap.Int("passes", w.Passes), zap.Int("failed_passes", w.FailedPasses),
		zap.Bool("address_changed", w.AddressChanged), zap.Bool("settled", w.Settled))

	w.Report = last
	w.Registered, w.Deregistered = s.reg, s.dereg
	if last.err == nil {
		w.Result = ResultUnchanged
		if len(s.reg) > 0 || len(s.dereg) > 0 {
			w.Result = ResultChanged
		}
	}
	return w
}

// watchState is what a watch has seen so far.
type watchState struct {
	WatchReport
	baseline   []netip.Addr
	reg, dereg []nlb.Target // everything the watch registered and deregistered
	moved      bool         // the watch registered or deregistered something
}

// see records one pass of the watch and reports whether the watch has settled.
func (s *watchState) see(last Report, dryRun bool) bool {
	s.Passes++
	s.reg, s.dereg = append(s.reg, last.Registered...), append(s.dereg, last.Deregistered...)
	if last.err != nil {
		s.FailedPasses++
		return false
	}
	if s.baseline == nil {
		s.baseline = last.Addresses
	} else if !slices.Equal(s.baseline, last.Addresses) {
		s.AddressChanged = true
	}
	// Registering or deregistering is catching up with a change, even one that happened before the watch had a
	// baseline (a new execution environment, or an event that came late).
	s.moved = s.moved || last.Changed()
	s.Settled = !dryRun && (s.AddressChanged || s.moved) && len(last.Waiting) == 0
	return s.Settled
}

// wait waits for d; false when ctx is done first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// selected returns the named mappings in configuration order.
func (e *Engine) selected(names []string) []*mapping {
	var out []*mapping
	for _, m := range e.current() {
		if slices.Contains(names, m.cfg.Name) {
			out = append(out, m)
		}
	}
	return out
}
