package metrics

import (
	"slices"
	"time"
)

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
var targetStates = [...]string{"initial", "healthy", "unhealthy", "unhealthy.draining", "unused", "draining", "unavailable"}

// syncResults are pre-created by Init so that increase() sees the first error.
var syncResults = [...]string{ResultUnchanged, ResultChanged, ResultError}

// convergenceStages are the values of the stage label of ipsync_convergence_seconds.
var convergenceStages = [...]string{StageRegistered, StageHealthy}

// SyncRun records one pass. Any result but ResultError also sets the last success time to now. A result other
// than the three counts as an error: it cannot be a success.
func (m *Metrics) SyncRun(sync, result string, d time.Duration) {
	if m == nil {
		return
	}
	i := slices.Index(syncResults[:], result)
	if i < 0 {
		result, i = ResultError, slices.Index(syncResults[:], ResultError)
	}
	m.mappings.update(sync, func(r *record) {
		r.runs[i]++
		r.duration.observe(syncDurationBuckets[:], seconds(d))
		if result != ResultError {
			r.lastSuccess = float64(time.Now().UnixNano()) / 1e9
		}
	})
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
	m.mappings.update(sync, func(r *record) { r.inSync = v })
}

// SetResolvedAddresses sets how many addresses the endpoint resolved to.
func (m *Metrics) SetResolvedAddresses(sync string, n int) {
	if m == nil {
		return
	}
	m.mappings.update(sync, func(r *record) { r.resolved = float64(n) })
}

// AddressChange counts one change of the resolved address set.
func (m *Metrics) AddressChange(sync string) {
	if m == nil {
		return
	}
	m.mappings.update(sync, func(r *record) { r.addressChanges++ })
}

// SetTargets sets the target count of every state: states missing from byState are set to 0. A state ELBv2 may
// add later is exported too, and zeroed once it is gone; a key that does not look like a state is ignored, so a
// caller bug cannot turn an IP or ARN into a label value.
func (m *Metrics) SetTargets(sync string, byState map[string]int) {
	if m == nil {
		return
	}
	m.mappings.update(sync, func(r *record) {
		for i, s := range targetStates[:] {
			r.targets[i] = float64(byState[s])
		}
		for s := range r.extraTargets {
			r.extraTargets[s] = float64(byState[s])
		}
		for s, n := range byState {
			if slices.Contains(targetStates[:], s) || !looksLikeState(s) {
				continue
			}
			if r.extraTargets == nil {
				r.extraTargets = map[string]float64{}
			}
			r.extraTargets[s] = float64(n)
		}
	})
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
	m.mappings.update(sync, func(r *record) { r.registrations += float64(n) })
}

// Deregistered counts n targets deregistered. n <= 0 is ignored.
func (m *Metrics) Deregistered(sync string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.mappings.update(sync, func(r *record) { r.deregistrations += float64(n) })
}

// Converged records the time from an address change to stage (StageRegistered or StageHealthy; another stage
// is a caller bug and is not recorded).
func (m *Metrics) Converged(sync, stage string, d time.Duration) {
	i := slices.Index(convergenceStages[:], stage)
	if m == nil || i < 0 {
		return
	}
	m.mappings.update(sync, func(r *record) { r.convergence[i].observe(convergenceBuckets[:], seconds(d)) })
}
