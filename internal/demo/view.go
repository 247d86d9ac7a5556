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

	"github.com/ipsync/ipsync/internal/config"
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

// nameWidth is the column of the tag of a plain line and of the mapping name of a log line: the longest mapping
// name ("inventory-reader"), so that the text after it lines up.
const nameWidth = 16

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
	s.write(fmt.Sprintf("%7.2fs  %-*s  %s\n", max(at.Sub(s.start), 0).Seconds(), nameWidth, tag, text))
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
		d.lookAt(ctx, m) // an error is shown in the view
	}
	d.drawFrame(d.frame(time.Now()))
}

func (d *demo) drawFrame(lines []string) { d.out.frame(lines) }

// How many engine log lines the live view shows: up to logLines, fewer on a short terminal, never under minLogs.
const (
	logLines = 8
	minLogs  = 3
)

// Levels of detail of a target group in the live view, from the most: a short terminal gets less per group
// rather than a view that scrolls.
const (
	detailFull    = iota // every line, a blank line between groups
	detailMedium         // without the p50/max and API call lines
	detailCompact        // the failover and its stages on one line, no blank line between groups
)

// frame renders the live view at now, fitted to the terminal when its size is known: the most detail per target
// group that leaves room for minLogs engine log lines.
func (d *demo) frame(now time.Time) []string {
	p := paint(true)
	cols, rows, ok := termSize(d.out.w)
	if !ok {
		cols, rows = 100, 24
	}
	var head []string
	for _, l := range wrap(header(d.opts), cols) {
		head = append(head, p.bold(l))
	}
	safety := p.green("0 targets")
	if n := len(d.violations); n > 0 {
		safety = p.red(plural(n, "target"))
	}
	next := d.dbs[d.failovers%len(d.dbs)]
	head = append(head, fmt.Sprintf("up %s   next failover: %s in %s   safety: %s deregistered or lost while in use",
		fmtClock(now.Sub(d.start)), next.name, fmtDur(max(d.nextFailover.Sub(now), 0)), safety), "")

	var lines []string
	for detail := detailFull; detail <= detailCompact; detail++ {
		lines = slices.Clone(head)
		for _, m := range d.maps {
			lines = append(lines, d.mappingLines(p, m, now, detail)...)
			if detail < detailCompact {
				lines = append(lines, "")
			}
		}
		if len(lines)+1+minLogs <= rows {
			break
		}
	}

	n := min(logLines, max(rows-len(lines)-1, minLogs))
	lines = append(lines, p.dim(fmt.Sprintf("engine log, last %d lines   (local DNS %s, local ELBv2 and RDS %s)", n, d.dns.Addr(), d.fake.URL())))
	for _, l := range d.logs.last(n) {
		lines = append(lines, "  "+l)
	}
	return lines
}

func (d *demo) mappingLines(p paint, m *mapping, now time.Time, detail int) []string {
	kind := m.db.kind
	switch m.role {
	case config.RoleWriter:
		kind += ", its writer"
	case config.RoleReader:
		kind += ", its readers"
	}
	title := fmt.Sprintf("%s  %s  %s -> target group %s:%d", p.bold(m.name), kind, m.source(), m.name, m.db.port)

	var tgs []string
	for _, t := range m.targets {
		tgs = append(tgs, fmt.Sprintf("%s %s", netip.AddrPortFrom(t.IP, uint16(t.Port)), p.state(t.State)))
	}
	if len(tgs) == 0 {
		tgs = append(tgs, p.dim("(none)"))
	}

	lines := []string{
		title,
		m.nowLine(p),
		"  targets    " + strings.Join(tgs, "   "),
	}
	fv := d.failoverView(p, m, now)
	after := "  after DNS  "
	if m.role != "" {
		after = "  after RDS  "
	}
	switch detail {
	case detailFull:
		return append(lines, "  failover   "+fv.head, after+fv.stages, "  p50/max    "+fv.p50, "  API calls  "+m.callsLine())
	case detailMedium:
		return append(lines, "  failover   "+fv.head, after+fv.stages)
	}
	return append(lines, "  failover   "+fv.head+"   "+fv.stages)
}

// nowLine is what the view's last look at DNS found: the endpoint's answer, or each member's.
func (m *mapping) nowLine(p paint) string {
	if len(m.looks) == 0 {
		return "  DNS now    " + p.dim("(not asked yet)")
	}
	if m.role == "" {
		l := m.looks[0]
		if l.err != nil {
			return "  DNS now    " + p.red(l.err.Error())
		}
		// The endpoint itself is in the title; here what it leads to.
		var chain []string
		for _, name := range l.res.Chain[1:] {
			chain = append(chain, "CNAME "+strings.TrimSuffix(name, ".")+" -> ")
		}
		return fmt.Sprintf("  DNS now    TTL %v  %sA %s", l.res.TTL, strings.Join(chain, ""), m.addrsWithAZ(p, l.res.Addrs))
	}
	// The members as RDS lists them now, each through its instance endpoint as the view resolves it.
	parts := make([]string, len(m.looks))
	for i, l := range m.looks {
		answer := p.red("no answer")
		if l.err == nil {
			answer = "A " + m.addrsWithAZ(p, l.res.Addrs)
		}
		parts[i] = l.inst.id + " " + answer
	}
	return "  members    " + strings.Join(parts, ", ")
}

func (m *mapping) addrsWithAZ(p paint, addrs []netip.Addr) string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = fmt.Sprintf("%s (%s)", p.bold(a.String()), m.db.azOf(a))
	}
	return strings.Join(out, ", ")
}

// failoverView is the last failover of a group: when, and how far the group has followed it (from the change
// in DNS or RDS), and the running p50/max over all failovers; each without its label.
type failoverView struct{ head, stages, p50 string }

func (d *demo) failoverView(p paint, m *mapping, now time.Time) failoverView {
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
			sync = fmt.Sprintf("initial sync %s: registered %s  healthy %s%s", setText(a.To), stage(a.Registered), stage(a.Healthy), m.quietText(p, now))
		}
		return failoverView{head: p.dim("none yet"), stages: sync, p50: p.dim("-")}
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
	return failoverView{
		head: fmt.Sprintf("#%d %s  %s ago  %s", a.N, a.changeText(), fmtDur(now.Sub(a.At)), status),
		stages: fmt.Sprintf("registered %s  healthy %s  old draining %s  old gone %s",
			stage(a.Registered), stage(a.Healthy), stage(a.Deregistered), stage(a.Gone)),
		p50: strings.Join(m.stagesP50Max(), "  "),
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
