package metrics

import "time"

// Values of the result label of ipsync_sync_runs_total.
const (
	ResultUnchanged = "unchanged"
	ResultChanged   = "changed"
	ResultError     = "error"
)

// Values of the stage label of ipsync_convergence_seconds.
const (
	StageRegistered = "registered"
	StageHealthy    = "healthy"
)

// targetStates are the ELBv2 target health states; each is exported for every known mapping, 0 when none.
func targetStates() []string {
	return []string{"initial", "healthy", "unhealthy", "unhealthy.draining", "unused", "draining", "unavailable"}
}

// syncResults are pre-created by Init so that increase() sees the first error.
func syncResults() []string { return []string{ResultUnchanged, ResultChanged, ResultError} }

// SyncRun records one pass. Any result but ResultError also sets the last success time to now.
func (m *Metrics) SyncRun(sync, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.syncRuns.WithLabelValues(sync, result).Inc()
	m.syncDuration.WithLabelValues(sync).Observe(seconds(d))
	if result != ResultError {
		m.lastSuccess.WithLabelValues(sync).SetToCurrentTime()
	}
}

// SetInSync sets ipsync_in_sync to 1 or 0.
func (m *Metrics) SetInSync(sync string, in bool) {
	if m == nil {
		return
	}
	v := 0.0
	if in {
		v = 1
	}
	m.inSync.WithLabelValues(sync).Set(v)
}

// SetResolvedAddresses sets how many addresses the endpoint resolved to.
func (m *Metrics) SetResolvedAddresses(sync string, n int) {
	if m == nil {
		return
	}
	m.resolved.WithLabelValues(sync).Set(float64(n))
}

// AddressChange counts one change of the resolved address set.
func (m *Metrics) AddressChange(sync string) {
	if m == nil {
		return
	}
	m.addressChanges.WithLabelValues(sync).Inc()
}

// SetTargets sets the target count of every state: states missing from byState are set to 0. A state ELBv2 may
// add later is exported too, and zeroed once it is gone; a key that does not look like a state is ignored, so a
// caller bug cannot turn an IP or ARN into a label value.
func (m *Metrics) SetTargets(sync string, byState map[string]int) {
	if m == nil {
		return
	}
	known := make(map[string]bool, len(targetStates()))
	for _, s := range targetStates() {
		known[s] = true
		m.targets.WithLabelValues(sync, s).Set(float64(byState[s]))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	extra := m.extraStates[sync]
	for s := range extra {
		if _, ok := byState[s]; !ok {
			m.targets.WithLabelValues(sync, s).Set(0)
		}
	}
	for s, n := range byState {
		if known[s] || !looksLikeState(s) {
			continue
		}
		if extra == nil {
			if m.extraStates == nil {
				m.extraStates = make(map[string]map[string]struct{})
			}
			extra = make(map[string]struct{})
			m.extraStates[sync] = extra
		}
		extra[s] = struct{}{}
		m.targets.WithLabelValues(sync, s).Set(float64(n))
	}
}

// looksLikeState accepts what an ELBv2 state looks like: short, lower-case letters, '.' and '_'.
func looksLikeState(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '.' && r != '_' {
			return false
		}
	}
	return true
}

// Registered counts n targets registered. n <= 0 is ignored (a counter cannot go down).
func (m *Metrics) Registered(sync string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.registrations.WithLabelValues(sync).Add(float64(n))
}

// Deregistered counts n targets deregistered. n <= 0 is ignored.
func (m *Metrics) Deregistered(sync string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.deregistrations.WithLabelValues(sync).Add(float64(n))
}

// Converged records the time from an address change to stage (StageRegistered or StageHealthy).
func (m *Metrics) Converged(sync, stage string, d time.Duration) {
	if m == nil {
		return
	}
	m.convergence.WithLabelValues(sync, stage).Observe(seconds(d))
}
