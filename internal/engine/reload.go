package engine

import (
	"reflect"
	"time"

	"github.com/ipsync/ipsync/internal/config"
)

// ReloadReport says what a reload did, by mapping name.
type ReloadReport struct {
	Kept    []string // unchanged: they keep their memory (absence counts, ownership, targets being followed)
	Changed []string // changed settings: stopped, and started again with an empty memory
	Added   []string
	Removed []string // stopped; their target groups are left as they are
	// Restart names the settings outside syncs that differ from the running ones: they apply only after a
	// restart (the resolver, the HTTP listener and the logger are built once; poll and resync_interval with them).
	Restart []string
}

// Reload replaces the mappings with those of cfg, which must be valid, while Run runs (SIGHUP), or between passes.
// A mapping of the same name and settings is kept as it is, memory and schedule included. A removed or changed
// mapping is stopped first: Reload waits for its pass in flight, and it makes no call after that; it leaves its
// target group as it is. New and changed mappings then start at once. Reloads are serialized.
func (e *Engine) Reload(cfg *config.Config) ReloadReport {
	e.reloading.Lock()
	defer e.reloading.Unlock()
	var rep ReloadReport
	old := map[string]*mapping{}
	for _, m := range e.current() {
		old[m.cfg.Name] = m
	}
	var next, started, stopped []*mapping
	// Drift re-reads are spaced for the new set of mappings, with the running resync_interval and budget.
	running := *e.cfg
	running.Syncs = cfg.Syncs
	var resync []time.Duration
	resync, e.stretched = resyncIntervals(&running, e.stretched, e.deps.Log)
	for i, s := range cfg.Syncs {
		m, ok := old[s.Name]
		delete(old, s.Name)
		switch {
		case ok && reflect.DeepEqual(m.cfg, s):
			rep.Kept = append(rep.Kept, s.Name)
			next = append(next, m)
			m.setResync(resync[i])
			continue
		case ok:
			rep.Changed = append(rep.Changed, s.Name)
			stopped = append(stopped, m)
		default:
			rep.Added = append(rep.Added, s.Name)
		}
		m = newMapping(e, s, resync[i])
		next, started = append(next, m), append(started, m)
	}
	for _, m := range e.current() {
		if _, gone := old[m.cfg.Name]; gone {
			rep.Removed = append(rep.Removed, m.cfg.Name)
			stopped = append(stopped, m)
		}
	}
	// Stopped before the new ones start, so that an old and a new mapping never work on one group at once.
	for _, m := range stopped {
		m.retire()
	}
	for _, name := range rep.Removed {
		e.deps.Metrics.Forget(name)
	}
	for _, m := range started {
		initMetrics(e.deps.Metrics, m.cfg)
	}
	e.mu.Lock()
	e.mappings = next
	e.started = append(e.started, started...)
	e.mu.Unlock()
	select {
	case e.reloaded <- struct{}{}:
	default: // Run has a wake-up pending already
	}
	rep.Restart = restartSettings(e.cfg, cfg)
	return rep
}

// retire stops the mapping for good: it waits for the pass in flight, and no pass starts after it.
func (m *mapping) retire() {
	m.busy.Lock()
	defer m.busy.Unlock()
	m.retired.Store(true)
}

// current returns the mappings in configuration order. Reload replaces the slice, never changes it.
func (e *Engine) current() []*mapping {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mappings
}

// takeStarted returns the mappings Reload started since the last call, for Run to schedule.
func (e *Engine) takeStarted() []*mapping {
	e.mu.Lock()
	defer e.mu.Unlock()
	ms := e.started
	e.started = nil
	return ms
}

// restartSettings names the settings outside syncs that differ between running and next.
func restartSettings(running, next *config.Config) []string {
	var out []string
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"dns", running.DNS, next.DNS},
		{"poll", running.Poll, next.Poll},
		{"resync_interval", running.ResyncInterval, next.ResyncInterval},
		{"aws", running.AWS, next.AWS},
		{"listen", running.Listen, next.Listen},
		{"log", running.Log, next.Log},
		{"discover", running.Discover, next.Discover},
	} {
		if !reflect.DeepEqual(s.a, s.b) {
			out = append(out, s.name)
		}
	}
	return out
}
