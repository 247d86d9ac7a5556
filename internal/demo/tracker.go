package demo

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ipsync/ipsync/internal/elbv2fake"
)

// tracker follows one failover (or the initial sync) of one target group in the fake's state until it converges.
type tracker struct {
	Failover
	initial bool // the engine's first sync: nothing to remove, not counted as a failover
	done    bool // converged or superseded: nothing more to watch
}

func draining(state string) bool {
	return state == elbv2fake.StateDraining || state == elbv2fake.StateUnhealthyDraining
}

// added and removed are what the failover changes in the group; an address in both From and To (a reader that
// stays a reader) is neither.
func (f *Failover) added() []netip.Addr   { return minus(f.To, f.From) }
func (f *Failover) removed() []netip.Addr { return minus(f.From, f.To) }

func minus(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// observe advances the stages from one sample of the target group: each stage is reached when it holds for
// every address the failover adds (or removes).
func (f *tracker) observe(ts []elbv2fake.TargetState, port int32, now time.Time) {
	state := func(ip netip.Addr) string {
		for _, t := range ts {
			if t.IP == ip && t.Port == port {
				return t.State
			}
		}
		return ""
	}
	all := func(addrs []netip.Addr, ok func(state string) bool) bool {
		for _, a := range addrs {
			if !ok(state(a)) {
				return false
			}
		}
		return true
	}
	since := max(now.Sub(f.At), time.Nanosecond) // zero means "not seen"
	added, removed := f.added(), f.removed()
	if f.Registered == 0 && all(added, func(s string) bool { return s != "" && !draining(s) }) {
		f.Registered = since
	}
	if f.Healthy == 0 && all(added, func(s string) bool { return s == elbv2fake.StateHealthy }) {
		f.Healthy = since
	}
	if len(removed) > 0 {
		if f.Deregistered == 0 && all(removed, func(s string) bool { return s == "" || draining(s) }) {
			f.Deregistered = since
		}
		if f.Gone == 0 && all(removed, func(s string) bool { return s == "" }) {
			f.Gone = since
		}
	}
	f.Converged = f.Healthy != 0 && (len(removed) == 0 || f.Gone != 0)
}

// changeText is what a failover changed in a group: "10.0.1.40 -> 10.0.3.52", or for a group of several
// targets "[10.0.2.61, 10.0.3.62] -> [10.0.1.60, 10.0.3.62]".
func (f Failover) changeText() string { return setText(f.From) + " -> " + setText(f.To) }

// stageStats is the running p50 and max of one stage over the failovers that reached it.
func (m *mapping) stageStats(stage func(Failover) time.Duration) (p50, worst time.Duration, n int) {
	var ds []time.Duration
	for _, f := range m.failoverLog {
		if d := stage(f.Failover); d > 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[(len(ds)-1)/2], ds[len(ds)-1], len(ds)
}

func (m *mapping) converged() int {
	n := 0
	for _, f := range m.failoverLog {
		if f.Converged {
			n++
		}
	}
	return n
}

type stage struct {
	name string
	of   func(Failover) time.Duration
}

// stages are the steps of a failover's convergence, in the view's order.
func stages() []stage {
	return []stage{
		{"registered", func(f Failover) time.Duration { return f.Registered }},
		{"healthy", func(f Failover) time.Duration { return f.Healthy }},
		{"old draining", func(f Failover) time.Duration { return f.Deregistered }},
		{"old gone", func(f Failover) time.Duration { return f.Gone }},
	}
}

// statsText is the p50/max summary of a mapping.
func (m *mapping) statsText() string {
	if len(m.failoverLog) == 0 {
		return "no failover"
	}
	still := ""
	if last := m.failoverLog[len(m.failoverLog)-1]; !last.done {
		still = " (the last one still converging)"
	}
	return fmt.Sprintf("%d of %s converged%s; from %s, p50/max %s",
		m.converged(), plural(len(m.failoverLog), "failover"), still, m.changeWord(), strings.Join(m.stagesP50Max(), ", "))
}

// stagesP50Max is "<stage> <p50>/<max>" for each stage of convergence ("<stage> -" before any failover reached it).
func (m *mapping) stagesP50Max() []string {
	var out []string
	for _, s := range stages() {
		p50, worst, n := m.stageStats(s.of)
		if n == 0 {
			out = append(out, s.name+" -")
			continue
		}
		out = append(out, fmt.Sprintf("%s %s/%s", s.name, fmtDur(p50), fmtDur(worst)))
	}
	return out
}

// fmtDur shows a duration to the precision people read: 0.42s, 4.3s, 1m05s.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
