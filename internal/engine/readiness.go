package engine

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Readiness states of a mapping (MappingReadiness.State). They name no address, ARN or error, so that /readyz can
// show them to anyone who reaches it.
const (
	ReadyOK       = "ok"
	ReadyStarting = "starting"     // no successful pass yet, and the readiness window since the start has not passed
	ReadyHard     = "error (hard)" // the last pass failed with an error no retry fixes (see HardError)
	ReadySoft     = "error (soft)" // retried errors outlasted the readiness window
)

// MappingReadiness is one mapping's readiness.
type MappingReadiness struct {
	Sync  string
	State string // one of the Ready* states
	Err   error  // the last pass's error, with ARNs and AWS's words: for logs and `status`, never for /readyz
}

// readinessWindow is how long a mapping stays ready without a successful pass: two resync intervals or two
// poll.max, whichever is longer.
func (e *Engine) readinessWindow() time.Duration {
	return max(2*e.cfg.ResyncInterval, 2*e.cfg.Poll.Max)
}

// Readiness returns each mapping's readiness, in configuration order. A mapping is ready once it has had a
// successful pass within the readiness window. One whose last pass failed with a hard error is not ready at
// once; soft errors make it unready only when they outlast the window. Before its first successful pass a
// mapping is "starting", even when its first passes failed softly, until the window has passed since it started:
// a DNS server that needs a second try at start-up is not "no successful pass in 2m".
func (e *Engine) Readiness() []MappingReadiness {
	window := e.readinessWindow()
	now := e.deps.Now()
	mappings := e.current()
	out := make([]MappingReadiness, 0, len(mappings))
	for _, m := range mappings {
		last, lastErr := m.status()
		r := MappingReadiness{Sync: m.cfg.Name, State: ReadyOK, Err: lastErr}
		switch {
		case IsHard(lastErr):
			r.State = ReadyHard
		case last.IsZero() && (lastErr == nil || now.Sub(m.since) <= window):
			r.State = ReadyStarting
		case last.IsZero() || now.Sub(last) > window:
			r.State = ReadySoft
		}
		out = append(out, r)
	}
	return out
}

// Ready returns nil once every mapping is ready (see Readiness), and otherwise an error naming the mappings that
// are not with their errors; a hard error says what to change.
func (e *Engine) Ready() error {
	var notReady []string
	for _, r := range e.Readiness() {
		switch r.State {
		case ReadyStarting:
			if r.Err == nil {
				notReady = append(notReady, r.Sync+": starting, no pass yet")
			} else {
				notReady = append(notReady, fmt.Sprintf("%s: starting, no successful pass yet: %v", r.Sync, r.Err))
			}
		case ReadyHard:
			notReady = append(notReady, fmt.Sprintf("%s: needs a change: %v", r.Sync, r.Err))
		case ReadySoft:
			notReady = append(notReady, fmt.Sprintf("%s: no successful pass in %s: %v", r.Sync, e.readinessWindow(), r.Err))
		}
	}
	if len(notReady) > 0 {
		return errors.New("not ready: " + strings.Join(notReady, "; "))
	}
	return nil
}
