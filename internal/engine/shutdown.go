package engine

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/nlb"
)

// This file is how the daemon stops. ECS sends SIGTERM and kills the task 30 s later (its default stop timeout),
// so the engine must stop in a bounded time, and never be cut off in the middle of removing targets: after stop,
// no deregistration starts (stale targets stay until ipsync runs again, which is harmless), registrations in
// flight may finish (they only add an address DNS serves), and the passes in flight get Options.StopGrace, after
// which their calls are cancelled. A call cancelled in flight is one whose answer is lost: the next start reads
// what AWS made of it.

// shutdown marks the engine as stopping and waits for the passes in flight (running) to report on done, at most
// StopGrace before cut cancels their calls; it logs what was left undone.
func (e *Engine) shutdown(running map[*mapping]bool, done <-chan wake, cut context.CancelFunc) {
	e.stoppingOnce.Do(func() { close(e.stopping) })
	if len(running) == 0 {
		return
	}
	e.deps.Log.Info("stopping: finishing the passes in flight; no deregistration starts now",
		zap.Strings("syncs", names(running)), zap.Duration("grace", e.opts.StopGrace))
	grace := time.NewTimer(e.opts.StopGrace)
	defer grace.Stop()
	for len(running) > 0 {
		select {
		case w := <-done:
			delete(running, w.m)
		case <-grace.C:
			e.deps.Log.Warn("stopping: passes still in flight after the grace are cut short: their calls are cancelled; "+
				"the next start reads the target group and finishes the job",
				zap.Strings("syncs", names(running)), zap.Duration("grace", e.opts.StopGrace))
			cut()
		}
	}
}

// isStopping reports whether Run's stop is done.
func (e *Engine) isStopping() bool {
	select {
	case <-e.stopping:
		return true
	default:
		return false
	}
}

// skipDeregistration reports whether the engine is stopping, and if so logs the stale targets it leaves registered.
func (m *mapping) skipDeregistration(ts []nlb.Target) bool {
	if !m.e.isStopping() {
		return false
	}
	m.log.Warn("stopping: not deregistering stale targets; they stay registered until ipsync runs again",
		zap.Stringers("targets", ts))
	return true
}

func names(ms map[*mapping]bool) []string {
	out := make([]string, 0, len(ms))
	for m := range ms {
		out = append(out, m.cfg.Name)
	}
	slices.Sort(out)
	return out
}
