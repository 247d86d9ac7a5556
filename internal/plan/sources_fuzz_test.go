package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/nlb"
)

// sourcesCase is a mapping with up to four sources, some unknown, held or pending, whose memory attributes
// addresses to sources (some of which are no longer sources) and remembers which answer counted each address's
// last absence, as it would after earlier passes.
type sourcesCase struct {
	srcs    []Source
	current []nlb.TargetHealth
	mem     Memory
	pol     Policy
}

func decodeSourcesCase(data []byte) sourcesCase {
	r := byteReader(data)
	var c sourcesCase
	names := []string{"a", "b", "c", "gone"} // "gone" is remembered, never passed: a member that left
	at := fuzzEpoch.Add(time.Duration(r.pick(13)) * time.Second)
	for i := range 1 + r.pick(3) {
		flags := r.next()
		s := Source{Name: names[i], Known: flags&1 != 0, Hold: flags&2 != 0}
		s.Pending = !s.Known && flags&4 != 0 // a member with no endpoint yet never answers
		if s.Known {
			s.Answer = Answer{Addrs: addrsOf(r.next()), At: at, TTL: time.Duration(1+r.pick(10)) * time.Second}
			if len(s.Answer.Addrs) == 0 {
				s.Answer.Addrs = []netip.Addr{fuzzIPs[r.pick(len(fuzzIPs))]} // a resolver never answers with none
			}
		}
		c.srcs = append(c.srcs, s)
	}
	c.current = r.targets()
	c.mem = Memory{Absent: map[netip.Addr]int{}, Owned: map[nlb.Target]bool{}, sources: map[string]sourceMemory{}, owner: map[netip.Addr]string{}}
	for _, name := range names {
		if r.pick(4) == 0 {
			continue // never answered
		}
		last := addrsOf(r.next())
		c.mem.sources[name] = sourceMemory{last: last, counted: Answer{Addrs: last, At: fuzzEpoch, TTL: time.Duration(1+r.pick(10)) * time.Second}}
	}
	r.readMemory(c.mem, names)
	c.mem.lastAbsence = map[netip.Addr]absence{}
	for _, ip := range fuzzIPs {
		if by := r.pick(len(names) + 1); by > 0 && c.mem.Absent[ip] > 0 {
			// The answer that counted its last absence runs out around this pass's answers (up to 12 s later).
			c.mem.lastAbsence[ip] = absence{source: names[by-1], until: fuzzEpoch.Add(time.Duration(r.pick(16)) * time.Second)}
		}
	}
	c.pol = r.policy()
	return c
}

// checkSources runs one pass (ObserveSources, then MakeSources) and asserts the rule for several sources: no
// address of an unknown source (its last answer) or of a held one is ever deregistered, nothing at all while an
// unknown source that is not pending never answered (held or not), and every desired address of a known source
// ends up with a live target once the plan is applied; I2, I4 to I7 hold on the union. An address whose source
// is gone (or was never attributed) is counted absent again only by a counted answer without it that comes from
// the source that counted its last absence, or after that answer ran out (I6: a TTL apart).
func checkSources(t *testing.T, c sourcesCase) {
	t.Helper()
	mem := ObserveSources(c.mem, c.srcs, c.current)
	p := MakeSources(c.srcs, c.current, mem, c.pol)

	want, protected := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	protectAll := false
	for _, s := range c.srcs {
		last, seen := c.mem.sources[s.Name]
		switch {
		case s.Known && s.Hold:
			addTo(protected, s.Answer.Addrs)
		case s.Known:
			addTo(want, s.Answer.Addrs)
		case seen:
			addTo(protected, last.last)
		case !s.Pending:
			protectAll = true
		}
	}
	checkDepartedAbsences(t, c, mem)
	checkPlan(t, p, want, c.current, mem, c.pol)
	for _, d := range p.Deregister {
		switch {
		case protectAll:
			t.Fatalf("I1: deregisters %v while a source that never answered is unknown", d.IP)
		case protected[d.IP]:
			t.Fatalf("I1: deregisters %v, which an unknown or held source stands for", d.IP)
		}
	}
	for ip := range want {
		if mem.Absent[ip] != 0 {
			t.Fatalf("I6: desired %v keeps an absence count %d", ip, mem.Absent[ip])
		}
	}
	for ip, n := range mem.Absent {
		if n > c.mem.Absent[ip]+1 {
			t.Fatalf("I6: one pass raised the absence of %v from %d to %d", ip, c.mem.Absent[ip], n)
		}
	}
}

// checkDepartedAbsences asserts that an address whose source is no longer one (or that was never attributed),
// missing from every known answer, is counted absent once more only by an answer that counts (as Observe
// counts the answers of one source), lacks it, and comes from the source that counted its last absence or no
// sooner than that answer ran out; and that memory then remembers that answer as the one that counted it.
func checkDepartedAbsences(t *testing.T, c sourcesCase, mem Memory) {
	t.Helper()
	sources, present := map[string]bool{}, map[netip.Addr]bool{}
	for _, s := range c.srcs {
		sources[s.Name] = true
		if s.Known {
			addTo(present, s.Answer.Addrs)
		}
	}
	reg := map[netip.Addr]bool{}
	for _, h := range c.current {
		if !h.Draining() {
			reg[h.IP] = true
		}
	}
	for ip := range reg {
		if owner, attributed := c.mem.owner[ip]; present[ip] || attributed && sources[owner] || mem.Absent[ip] != c.mem.Absent[ip]+1 {
			continue // not stale, counted by its own source, or not counted in this pass
		}
		prev, before := c.mem.lastAbsence[ip]
		var by []absence
		for _, s := range c.srcs {
			last := c.mem.sources[s.Name].counted
			countsNow := s.Known && (last.At.IsZero() || !slices.Equal(s.Answer.Addrs, last.Addrs) ||
				s.Answer.Server != last.Server || s.Answer.At.Sub(last.At) >= last.TTL)
			if countsNow && !slices.Contains(s.Answer.Addrs, ip) &&
				(!before || s.Name == prev.source || !s.Answer.At.Before(prev.until)) {
				by = append(by, absence{source: s.Name, until: s.Answer.At.Add(s.Answer.TTL)})
			}
		}
		if len(by) == 0 {
			t.Fatalf("I6: %v, whose source %q is gone, counted absent (%d -> %d) by no answer that may count it: its last absence was counted by %q's answer, which runs out %v after epoch (remembered: %v)",
				ip, c.mem.owner[ip], c.mem.Absent[ip], mem.Absent[ip], prev.source, prev.until.Sub(fuzzEpoch), before)
		}
		if got := mem.lastAbsence[ip]; !slices.ContainsFunc(by, func(a absence) bool { return a.source == got.source && a.until.Equal(got.until) }) {
			t.Fatalf("I6: %v counted absent; memory remembers %+v as the answer that counted it, want one of %+v", ip, got, by)
		}
	}
}

func FuzzMakeSources(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 1, 1, 0x03, 2, 0, 2, 0x04, 4, 1, 0, 1, 0, 1, 1, 2, 0, 3, 0, 3, 3, 3, 0x07, 1, 0x1f, 3, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) { checkSources(t, decodeSourcesCase(data)) })
}

// TestFuzzSourcesSeeded runs the several-sources property over many pseudo-random inputs in the normal suite.
func TestFuzzSourcesSeeded(t *testing.T) {
	seeded(0x2545f4914f6cdd1d, func(data []byte) { checkSources(t, decodeSourcesCase(data)) })
}
