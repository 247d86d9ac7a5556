package plan

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/nlb"
)

// sourcesCase is a mapping with up to four sources, some unknown, held or pending, whose memory attributes addresses
// to sources (some of which are no longer sources), as it would after earlier passes.
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
	c.pol = r.policy()
	return c
}

// checkSources runs one pass (ObserveSources, then MakeSources) and asserts the rule for several sources: no
// address of an unknown source (its last answer) or of a held one is ever deregistered, nothing at all while an
// unknown source that is not pending never answered (held or not), and every desired address of a known source ends up with a live target once
// the plan is applied; I2, I4 to I7 hold on the union.
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

func FuzzMakeSources(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 1, 1, 0x03, 2, 0, 2, 0x04, 4, 1, 0, 1, 0, 1, 1, 2, 0, 3, 0, 3, 3, 3, 0x07, 1, 0x1f, 3, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) { checkSources(t, decodeSourcesCase(data)) })
}

// TestFuzzSourcesSeeded runs the several-sources property over many pseudo-random inputs in the normal suite.
func TestFuzzSourcesSeeded(t *testing.T) {
	seeded(0x2545f4914f6cdd1d, func(data []byte) { checkSources(t, decodeSourcesCase(data)) })
}
