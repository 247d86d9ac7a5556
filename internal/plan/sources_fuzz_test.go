package plan

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/nlb"
)

// sourcesCase is a mapping with up to four sources, some unknown or held, whose memory attributes addresses
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
		if s.Known {
			s.Answer = Answer{Addrs: addrsOf(r.next()), At: at, TTL: time.Duration(1+r.pick(10)) * time.Second}
			if len(s.Answer.Addrs) == 0 {
				s.Answer.Addrs = []netip.Addr{fuzzIPs[r.pick(len(fuzzIPs))]} // a resolver never answers with none
			}
		}
		c.srcs = append(c.srcs, s)
	}
	for range r.pick(9) {
		c.current = append(c.current, nlb.TargetHealth{
			Target: nlb.Target{IP: fuzzIPs[r.pick(len(fuzzIPs))], Port: fuzzPorts[r.pick(2)], AvailabilityZone: fuzzZones[r.pick(3)]},
			State:  fuzzStates[r.pick(len(fuzzStates))],
		})
	}
	c.mem = Memory{Absent: map[netip.Addr]int{}, Owned: map[nlb.Target]bool{}, sources: map[string]sourceMemory{}, owner: map[netip.Addr]string{}}
	for _, name := range names {
		if r.pick(4) == 0 {
			continue // never answered
		}
		last := addrsOf(r.next())
		c.mem.sources[name] = sourceMemory{last: last, counted: Answer{Addrs: last, At: fuzzEpoch, TTL: time.Duration(1+r.pick(10)) * time.Second}}
	}
	for _, ip := range fuzzIPs {
		if n := r.pick(5); n > 0 {
			c.mem.Absent[ip] = n - 1
		}
		if o := r.pick(5); o > 0 {
			c.mem.owner[ip] = names[o-1]
		}
		owns := r.next()
		for i, port := range fuzzPorts {
			c.mem.Owned[nlb.Target{IP: ip, Port: port}] = owns&(1<<i) != 0
		}
	}
	flags := r.next()
	c.pol = Policy{Port: fuzzPorts[flags&1], Prune: flags&2 != 0, DeregisterAfter: 1 + r.pick(3), AZ: fuzzAZ[r.pick(3)]}
	return c
}

// checkSources runs one pass (ObserveSources, then MakeSources) and asserts the rule for several sources: no
// address of an unknown source (its last answer) or of a held one is ever deregistered, nothing at all while an
// unknown source never answered, and every desired address of a known source ends up with a live target once
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
		case !s.Hold:
			protectAll = true
		}
	}
	if len(want) == 0 {
		if !p.Empty() || p.InSync {
			t.Fatalf("I1: no known desired address must change nothing, got %+v", p)
		}
		return
	}
	live, liveOnPort := map[nlb.Target]bool{}, map[netip.Addr]bool{}
	for _, h := range c.current {
		if !h.Draining() {
			live[h.Target] = true
			liveOnPort[h.IP] = liveOnPort[h.IP] || h.Port == c.pol.Port
		}
	}
	for _, d := range p.Deregister {
		switch {
		case protectAll:
			t.Fatalf("I1: deregisters %v while a source that never answered is unknown", d.IP)
		case protected[d.IP]:
			t.Fatalf("I1: deregisters %v, which an unknown or held source stands for", d.IP)
		case want[d.IP]:
			t.Fatalf("I2: deregisters desired %v", d.IP)
		case !live[d]:
			t.Fatalf("I4/I5: deregisters %+v, not a live target as reported", d)
		case mem.Absent[d.IP] < c.pol.DeregisterAfter:
			t.Fatalf("I6: deregisters %v after %d absences, needs %d", d.IP, mem.Absent[d.IP], c.pol.DeregisterAfter)
		case !c.pol.Prune && !mem.Owned[nlb.Target{IP: d.IP, Port: d.Port}]:
			t.Fatalf("I7: deregisters %v, not ipsync's, with prune off", d.IP)
		}
	}
	registering := map[netip.Addr]bool{}
	for _, r := range p.Register {
		if !want[r.IP] || r.Port != c.pol.Port || liveOnPort[r.IP] {
			t.Fatalf("registers %+v: not a desired address without a live target on port %d", r, c.pol.Port)
		}
		registering[r.IP] = true
	}
	for ip := range want {
		if !liveOnPort[ip] && !registering[ip] {
			t.Fatalf("desired %v of a known source has no live target and is not registered", ip)
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
	seed := uint64(0x2545f4914f6cdd1d)
	for range 20000 {
		data := make([]byte, 64)
		for j := range data {
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			data[j] = byte(seed)
		}
		checkSources(t, decodeSourcesCase(data))
	}
}
