package demo

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ipsync/ipsync/internal/elbv2fake"
)

// This file is how the demo watches the fake: the targets of every group (its convergence clock, and the safety
// check of what it sees) and the calls the fake received (counts, and the safety check of each deregistration).

// sample reads every target group from the fake and advances the convergence trackers.
func (d *demo) sample(now time.Time) {
	for _, m := range d.maps {
		ts := d.fake.Targets(m.arn)
		d.reportTransitions(m, ts, now)
		m.targets = ts
		a := m.active
		if a == nil || a.done {
			continue
		}
		a.observe(ts, m.db.port, now) // each stage is reported with its target's transition above
		if a.Converged {
			a.done = true
			m.steadySince, m.quietCalls = now, 0
			if a.initial {
				d.out.line(now, m.name, fmt.Sprintf("initial sync done: %s healthy %s after start", setText(a.To), fmtDur(a.Healthy)))
				continue
			}
			d.out.line(now, m.name, fmt.Sprintf("converged: failover #%d %s in %s (registered %s, healthy %s, old deregistered %s, old gone %s)",
				a.N, a.changeText(), fmtDur(a.Gone), fmtDur(a.Registered), fmtDur(a.Healthy), fmtDur(a.Deregistered), fmtDur(a.Gone)))
		}
	}
}

// reportTransitions prints (plain mode) each target state change since the last sample, and flags a target
// that left the live targets (draining or gone) while its source stood for it all along: a member or DNS
// answer ipsync must have kept (I2).
func (d *demo) reportTransitions(m *mapping, ts []elbv2fake.TargetState, now time.Time) {
	next := make(map[netip.AddrPort]string, len(ts))
	for _, t := range ts {
		next[netip.AddrPortFrom(t.IP, uint16(t.Port))] = t.State
	}
	report := func(ap netip.AddrPort, state string) {
		text := fmt.Sprintf("target %s %s", ap, state)
		if a := m.active; a != nil && !a.done && (slices.Contains(a.To, ap.Addr()) || slices.Contains(a.From, ap.Addr())) {
			text += fmt.Sprintf(" (%s after %s)", fmtDur(now.Sub(a.At)), m.changeWord())
			if a.initial {
				text = fmt.Sprintf("target %s %s (%s after start)", ap, state, fmtDur(now.Sub(a.At)))
			}
		}
		d.out.line(now, m.name, text)
	}
	// Only when the source stood for the same addresses over the whole interval since the last sample: a target
	// deregistered just before a failover brought its address back is not a loss.
	stable := !m.prevAt.IsZero() && !m.changedSince(m.prevAt)
	lost := func(ap netip.AddrPort, old, state string) {
		if stable && old != "" && !draining(old) && (state == "" || draining(state)) && slices.Contains(m.desiredAt(now), ap.Addr()) {
			d.violate(now, fmt.Sprintf("%s: target %s %s at %s while %s", m.name, ap, stateOrGone(state), fmtDur(now.Sub(d.start)), m.inUse()))
		}
	}
	for _, t := range ts {
		ap := netip.AddrPortFrom(t.IP, uint16(t.Port))
		if old, ok := m.prev[ap]; !ok || old != t.State {
			report(ap, t.State)
			lost(ap, old, t.State)
		}
	}
	var gone []netip.AddrPort
	for ap := range m.prev {
		if _, ok := next[ap]; !ok {
			gone = append(gone, ap)
		}
	}
	slices.SortFunc(gone, netip.AddrPort.Compare)
	for _, ap := range gone {
		report(ap, "gone")
		lost(ap, m.prev[ap], "")
	}
	m.prev, m.prevAt = next, now
}

func stateOrGone(state string) string {
	if state == "" {
		return "gone"
	}
	return state
}

// violate records and prints a breach of I2 the demo saw.
func (d *demo) violate(at time.Time, what string) {
	d.violations = append(d.violations, what)
	d.out.line(at, "UNSAFE", what)
}

// scanCalls reads the calls the fake received since the last scan: counts for the view, and the I2 check of
// every DeregisterTargets against what the group's source stood for when it arrived.
func (d *demo) scanCalls() {
	d.lastScan = time.Now()
	calls := d.fake.Calls()
	if len(calls) < d.seenCalls { // the log was reset behind the demo's back: count it again
		d.seenCalls = 0
	}
	for _, c := range calls[d.seenCalls:] {
		d.apiTotals[c.Action]++
		m := d.byARN[callARN(c)]
		if m == nil {
			continue
		}
		m.calls[c.Action]++
		if !m.steadySince.IsZero() && c.At.After(m.steadySince) {
			m.quietCalls++
		}
		if c.Action != "DeregisterTargets" {
			continue
		}
		desired := m.desiredAt(c.At)
		for _, ip := range c.TargetIPs() {
			if slices.Contains(desired, ip) {
				d.violate(c.At, fmt.Sprintf("%s: DeregisterTargets of %s at %s while %s", m.name, ip, fmtDur(c.At.Sub(d.start)), m.inUse()))
			}
		}
	}
	d.seenCalls = len(calls)
	d.finalCalls = calls
}
