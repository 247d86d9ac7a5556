package demo

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ANSI control sequences of the live view.
const (
	ansiClear      = "\x1b[2J"
	ansiHome       = "\x1b[H"
	ansiClearLine  = "\x1b[K"
	ansiClearBelow = "\x1b[J"
	ansiHideCursor = "\x1b[?25l"
	ansiShowCursor = "\x1b[?25h"
	ansiNoWrap     = "\x1b[?7l" // long lines are cut at the edge instead of wrapping and scrolling the view
	ansiWrap       = "\x1b[?7h"
)

// screen serialises everything written to the output. In plain mode every event is a line; in live mode
// events are not printed (the view shows them) until the view has ended, and frames redraw in place.
type screen struct {
	mu       sync.Mutex
	w        io.Writer
	live     bool // a live view is (or will be) on screen
	began    bool // the live view changed the terminal (cursor hidden, wrapping off)
	restored bool
	start    time.Time
	werr     error
}

func newScreen(w io.Writer, live bool, start time.Time) *screen {
	return &screen{w: w, live: live, start: start}
}

func (s *screen) write(text string) {
	if s.werr != nil {
		return
	}
	if _, err := io.WriteString(s.w, text); err != nil {
		s.werr = fmt.Errorf("demo: writing the output: %w", err)
	}
}

// line prints one event, stamped with the time since the start, unless the live view shows it instead.
func (s *screen) line(at time.Time, tag, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live && !s.restored {
		return
	}
	s.write(fmt.Sprintf("%7.2fs  %-9s  %s\n", max(at.Sub(s.start), 0).Seconds(), tag, text))
}

// frame redraws the live view in place.
func (s *screen) frame(lines []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.restored {
		return
	}
	var b strings.Builder
	if !s.began {
		s.began = true
		b.WriteString(ansiHideCursor + ansiNoWrap + ansiClear)
	}
	b.WriteString(ansiHome)
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n') // no newline after the last line: a full-height frame must not scroll
		}
		b.WriteString(l)
		b.WriteString(ansiClearLine)
	}
	b.WriteString(ansiClearBelow)
	s.write(b.String())
}

// restore gives the terminal back (cursor, wrapping) and leaves the last frame on screen; later lines print
// below it. Safe to call more than once.
func (s *screen) restore() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.restored || !s.live {
		return
	}
	s.restored = true
	if s.began {
		s.write("\x1b[0m" + ansiWrap + ansiShowCursor + "\n")
	}
}

func (s *screen) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.werr
}

// paint colours text in the live view; plain output stays free of escape codes.
type paint bool

func (p paint) with(code, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p paint) bold(s string) string   { return p.with("1", s) }
func (p paint) dim(s string) string    { return p.with("2", s) }
func (p paint) green(s string) string  { return p.with("32", s) }
func (p paint) yellow(s string) string { return p.with("33", s) }
func (p paint) red(s string) string    { return p.with("31", s) }

// state colours a target state: healthy green, on its way in yellow, on its way out magenta, failing red.
func (p paint) state(st string) string {
	switch st {
	case "healthy":
		return p.green(st)
	case "initial":
		return p.yellow(st)
	case "draining", "unhealthy.draining":
		return p.with("35", st)
	case "unused", "unavailable":
		return p.dim(st)
	}
	return p.red(st)
}

func header(o Options) string {
	return fmt.Sprintf("ipsync demo: a database fails over every %v and ipsync re-points its NLB targets. Ctrl-C to stop.",
		o.FailoverEvery)
}

// draw looks at DNS again and redraws the live view.
func (d *demo) draw(ctx context.Context) {
	for _, m := range d.maps {
		_, _ = d.resolve(ctx, m) // an error is shown in the view
	}
	d.drawFrame(d.frame(time.Now()))
}

func (d *demo) drawFrame(lines []string) { d.out.frame(lines) }

// How many engine log lines the live view shows: up to logLines, fewer on a short terminal, never under minLogs.
const (
	logLines = 8
	minLogs  = 3
)

// frame renders the live view at now, fitted to the terminal when its size is known.
func (d *demo) frame(now time.Time) []string {
	p := paint(true)
	cols, rows, ok := termSize(d.out.w)
	if !ok {
		cols, rows = 100, 24
	}
	var lines []string
	for _, l := range wrap(header(d.opts), cols) {
		lines = append(lines, p.bold(l))
	}
	safety := p.green("0 deregistrations")
	if n := len(d.violations); n > 0 {
		safety = p.red(fmt.Sprintf("%d deregistrations", n))
	}
	next := d.maps[d.failovers%len(d.maps)]
	lines = append(lines, fmt.Sprintf("up %s   next failover: %s in %s   safety: %s of an address DNS served",
		fmtClock(now.Sub(d.start)), next.name, fmtDur(max(d.nextFailover.Sub(now), 0)), safety), "")

	for _, m := range d.maps {
		lines = append(lines, d.mappingLines(p, m, now)...)
		lines = append(lines, "")
	}

	n := min(logLines, max(rows-len(lines)-1, minLogs))
	lines = append(lines, p.dim(fmt.Sprintf("engine log, last %d lines   (local DNS %s, local ELBv2 %s)", n, d.dns.Addr(), d.fake.URL())))
	for _, l := range d.logs.last(n) {
		lines = append(lines, "  "+l)
	}
	return lines
}

func (d *demo) mappingLines(p paint, m *mapping, now time.Time) []string {
	title := fmt.Sprintf("%s  %s  %s -> target group %s:%d", p.bold(m.name), m.kind, m.endpoint, m.name, m.port)

	dnsNow := p.dim("(not asked yet)")
	if m.answerErr != nil {
		dnsNow = p.red(m.answerErr.Error())
	} else if len(m.answer.Addrs) > 0 {
		var addrs []string
		for _, a := range m.answer.Addrs {
			addrs = append(addrs, fmt.Sprintf("%s (%s)", p.bold(a.String()), m.azOf(a)))
		}
		// The endpoint itself is in the title; here what it leads to.
		var chain []string
		for _, name := range m.answer.Chain[1:] {
			chain = append(chain, "CNAME "+strings.TrimSuffix(name, ".")+" -> ")
		}
		dnsNow = fmt.Sprintf("TTL %v  %sA %s", m.answer.TTL, strings.Join(chain, ""), strings.Join(addrs, ", "))
	}

	var tgs []string
	for _, t := range m.targets {
		tgs = append(tgs, fmt.Sprintf("%s %s", netip.AddrPortFrom(t.IP, uint16(t.Port)), p.state(t.State)))
	}
	if len(tgs) == 0 {
		tgs = append(tgs, p.dim("(none)"))
	}

	lines := []string{
		title,
		"  DNS now    " + dnsNow,
		"  targets    " + strings.Join(tgs, "   "),
	}
	return append(append(lines, d.failoverLines(p, m, now)...), "  API calls  "+m.callsLine())
}

// failoverLines describe the last failover (when, and how far the target group has followed it, from the DNS
// change) and the running p50/max over all failovers.
func (d *demo) failoverLines(p paint, m *mapping, now time.Time) []string {
	a := m.active
	stage := func(v time.Duration) string {
		switch {
		case v != 0:
			return p.green(fmtDur(v))
		case a.done:
			return p.dim("-")
		}
		return p.yellow("...")
	}
	if a == nil || a.initial {
		sync := p.dim("-")
		if a != nil {
			sync = fmt.Sprintf("initial sync %s: registered %s  healthy %s%s", a.To, stage(a.Registered), stage(a.Healthy), m.quietText(p, now))
		}
		return []string{"  failover   " + p.dim("none yet"), "  after DNS  " + sync, "  p50/max    " + p.dim("-")}
	}
	var status string
	switch {
	case a.Converged:
		status = p.green("converged") + m.quietText(p, now)
	case a.Superseded:
		status = p.red("superseded by the next failover")
	default:
		status = p.yellow("converging")
	}
	head := fmt.Sprintf("#%d %s -> %s  %s ago  %s", a.N, a.From, a.To, fmtDur(now.Sub(a.At)), status)
	this := fmt.Sprintf("registered %s  healthy %s  old draining %s  old gone %s",
		stage(a.Registered), stage(a.Healthy), stage(a.Deregistered), stage(a.Gone))
	return []string{
		"  failover   " + head,
		"  after DNS  " + this,
		"  p50/max    " + strings.Join(m.stagesP50Max(), "  "),
	}
}

// callsLine counts the API calls for one target group.
func (m *mapping) callsLine() string {
	return fmt.Sprintf("DescribeTargetHealth %d, RegisterTargets %d, DeregisterTargets %d",
		m.calls["DescribeTargetHealth"], m.calls["RegisterTargets"], m.calls["DeregisterTargets"])
}

// quietText counts the API calls since the target group converged: steady state costs nothing (I9).
func (m *mapping) quietText(p paint, now time.Time) string {
	if m.steadySince.IsZero() {
		return ""
	}
	calls := fmt.Sprintf("%d API calls", m.quietCalls)
	switch m.quietCalls {
	case 0:
		calls = p.green(calls)
	case 1:
		calls = "1 API call"
	}
	return fmt.Sprintf(", then %s in %s", calls, fmtDur(now.Sub(m.steadySince)))
}

func (d *demo) apiText() string {
	actions := make([]string, 0, len(d.apiTotals))
	for a := range d.apiTotals {
		actions = append(actions, a)
	}
	slices.Sort(actions)
	parts := make([]string, 0, len(actions))
	for _, a := range actions {
		parts = append(parts, fmt.Sprintf("%s %d", a, d.apiTotals[a]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// fmtClock is an uptime: 0:42, 12:03, 1:02:03.
func fmtClock(d time.Duration) string {
	s := int(d.Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// wrap breaks text into lines of at most width runes, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(text) {
		if cur.Len() > 0 && utf8.RuneCountInString(cur.String())+1+utf8.RuneCountInString(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}
