package plan

import (
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/nlb"
)

// The fuzzer draws every input from a small universe so that collisions (same IP on two ports, a desired address
// that is also stale, draining and live copies of one address) are common rather than astronomically rare.
var (
	fuzzIPs = []netip.Addr{
		netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.9.3"),
		netip.MustParseAddr("10.1.0.4"), netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("198.51.100.6"),
	}
	fuzzPorts  = []int32{5432, 3306}
	fuzzZones  = []string{"", "all", "us-east-1a"}
	fuzzStates = []string{"initial", "healthy", "unhealthy", "unhealthy.draining", "unused", "draining", "unavailable"}
	fuzzAZ     = []string{AZAuto, AZAll, AZVPC}
	// Servers an answer may come from: a zone's name servers, or "" for one unnamed server.
	fuzzServers = []string{"", "ns1:53", "ns2:53"}
)

// byteReader hands out fuzz bytes, then zeros once they run out.
type byteReader []byte

func (b *byteReader) next() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

func (b *byteReader) pick(n int) int { return int(b.next()) % n }

type fuzzCase struct {
	desired []netip.Addr
	current []nlb.TargetHealth
	mem     Memory
	pol     Policy
	// at, ttl and server are the answer's arrival, TTL and server, for Observe; mem.sources[""].counted is the
	// last counted answer (or none), mem.sources[""].seen what earlier answers said about each address.
	at     time.Time
	ttl    time.Duration
	server string
}

// fuzzEpoch is when the last counted answer arrived; the new answer comes up to 12 s later.
var fuzzEpoch = time.Unix(1_700_000_000, 0)

// addrsOf returns the fuzz addresses selected by mask, sorted like a resolver's answer.
func addrsOf(mask byte) []netip.Addr {
	var out []netip.Addr
	for i, ip := range fuzzIPs {
		if mask&(1<<i) != 0 {
			out = append(out, ip)
		}
	}
	return out
}

// targets reads up to eight targets of the target group as reported: any fuzz address, port, zone and state.
func (b *byteReader) targets() []nlb.TargetHealth {
	var current []nlb.TargetHealth
	for range b.pick(9) {
		current = append(current, nlb.TargetHealth{
			Target: nlb.Target{IP: fuzzIPs[b.pick(len(fuzzIPs))], Port: fuzzPorts[b.pick(2)], AvailabilityZone: fuzzZones[b.pick(3)]},
			State:  fuzzStates[b.pick(len(fuzzStates))],
		})
	}
	return current
}

// readMemory fills mem, for each fuzz address, with an absence count (or none), with names (if any) the source it
// is attributed to (or none), and whether ipsync owns it on each port.
func (b *byteReader) readMemory(mem Memory, names []string) {
	for _, ip := range fuzzIPs {
		if n := b.pick(5); n > 0 {
			mem.Absent[ip] = n - 1
		}
		if names != nil {
			if o := b.pick(len(names) + 1); o > 0 {
				mem.owner[ip] = names[o-1]
			}
		}
		owns := b.next() // per port: the same IP on another port may not be ipsync's
		for i, port := range fuzzPorts {
			mem.Owned[nlb.Target{IP: ip, Port: port}] = owns&(1<<i) != 0
		}
	}
}

// policy reads a mapping's policy: port, prune, deregister_after and availability_zone.
func (b *byteReader) policy() Policy {
	flags := b.next()
	return Policy{
		Port:            fuzzPorts[flags&1],
		Prune:           flags&2 != 0,
		DeregisterAfter: 1 + b.pick(3),
		AZ:              fuzzAZ[b.pick(3)],
	}
}

// seeded calls fn with 20000 pseudo-random inputs of 96 bytes (more than a case reads) drawn from seed, so that the fuzz properties run
// in the normal suite and a broken invariant fails `go test` without -fuzz.
func seeded(seed uint64, fn func(data []byte)) {
	for range 20000 {
		data := make([]byte, 96)
		for j := range data {
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			data[j] = byte(seed)
		}
		fn(data)
	}
}

func decodeCase(data []byte) fuzzCase {
	r := byteReader(data)
	var c fuzzCase
	c.desired = addrsOf(r.next())
	c.current = r.targets()
	c.mem = Memory{Absent: map[netip.Addr]int{}, Owned: map[nlb.Target]bool{}, sources: map[string]sourceMemory{}}
	r.readMemory(c.mem, nil)
	c.pol = r.policy()
	// The last counted answer: none, the same addresses as this one (a repeat), or any (often another).
	switch lastTTL, lastServer := time.Duration(1+r.pick(10))*time.Second, fuzzServers[r.pick(3)]; r.pick(3) {
	case 1:
		c.mem.sources[""] = sourceMemory{counted: Answer{Addrs: c.desired, At: fuzzEpoch, TTL: lastTTL, Server: lastServer}}
	case 2:
		c.mem.sources[""] = sourceMemory{counted: Answer{Addrs: addrsOf(r.next()), At: fuzzEpoch, TTL: lastTTL, Server: lastServer}}
	}
	// What earlier answers said: per address, nothing, or when it appeared (up to 90 s before the new answer,
	// across ServerLag), when it was last returned, and which servers returned it.
	c.at = fuzzEpoch.Add(time.Duration(r.pick(13)) * time.Second)
	seen := map[netip.Addr]sighting{}
	for _, ip := range fuzzIPs {
		by := r.next()
		if by&8 == 0 {
			continue
		}
		first := c.at.Add(-time.Duration(r.pick(91)) * time.Second)
		s := sighting{first: first, last: first.Add(time.Duration(r.pick(91)) * time.Second), by: map[string]bool{}}
		for i, srv := range fuzzServers {
			if by&(1<<i) != 0 {
				s.by[srv] = true
			}
		}
		seen[ip] = s
	}
	single := c.mem.sources[""]
	single.seen = seen
	c.mem.sources[""] = single
	c.ttl = time.Duration(1+r.pick(10)) * time.Second
	c.server = fuzzServers[r.pick(3)]
	// Addresses AWS accepted only with zone all (availability_zone auto learns them at registration).
	if zones := addrsOf(r.next()); len(zones) > 0 {
		c.mem.ZoneAll = toSet(zones)
	}
	return c
}

// checkObserve asserts what counts as a resolution for I6: an answer counts only when there is no counted
// answer yet, when it differs from the last counted one, comes from another server, or comes at least that
// answer's TTL later. A counted answer raises the absence of every registered address it lacks by exactly one,
// except an address its server has never returned that appeared less than ServerLag ago, when the answer holds
// no address that appeared after it (a lagging server); an
// answer that does not count raises none. Either way a desired address has no absence left, every address of
// the answer is marked as returned by its server, and Observe leaves its input alone.
func checkObserve(t *testing.T, c fuzzCase) {
	t.Helper()
	last := c.mem.sources[""].counted
	ans := Answer{Addrs: c.desired, At: c.at, TTL: c.ttl, Server: c.server}
	shouldCount := last.At.IsZero() || !slices.Equal(ans.Addrs, last.Addrs) || ans.Server != last.Server ||
		!ans.At.Before(last.At.Add(last.TTL))
	absentBefore := maps.Clone(c.mem.Absent)
	seenBefore := len(c.mem.sources[""].seen)
	next := Observe(c.mem, ans, c.current)
	if !maps.Equal(c.mem.Absent, absentBefore) || len(c.mem.sources[""].seen) != seenBefore {
		t.Fatalf("Observe modified its memory")
	}
	want, reg := toSet(c.desired), registered(c.current)
	for ip := range want {
		if next.Absent[ip] != 0 {
			t.Fatalf("I6: desired %v has absence count %d after Observe", ip, next.Absent[ip])
		}
	}
	for _, ip := range fuzzIPs {
		before, after := c.mem.Absent[ip], next.Absent[ip]
		s, wasSeen := c.mem.sources[""].seen[ip]
		lags := wasSeen && !s.by[c.server] && c.at.Sub(s.first) < ServerLag
		for _, y := range c.desired { // an answer with an address newer than ip is ahead of it, not behind
			firstY := c.at // new to memory, or forgotten: it appears now
			if sy, ok := c.mem.sources[""].seen[y]; ok && (reg[y] || c.at.Sub(sy.last) < ServerLag) {
				firstY = sy.first
			}
			if firstY.After(s.first) {
				lags = false
			}
		}
		if want[ip] && !next.sources[""].seen[ip].by[c.server] {
			t.Fatalf("%v is in the answer of %q, but memory does not say that server returned it", ip, c.server)
		}
		switch {
		case want[ip]:
		case shouldCount && reg[ip] && lags && after != before:
			t.Fatalf("I6: an answer of %q, which never returned %v (appeared %v before), moved its absence %d -> %d: a lagging server must not count",
				c.server, ip, c.at.Sub(s.first), before, after)
		case shouldCount && reg[ip] && !lags && after != before+1:
			t.Fatalf("I6: a counted answer without registered %v moved its absence %d -> %d, want +1", ip, before, after)
		case shouldCount && !reg[ip] && after != 0:
			t.Fatalf("%v is not registered: its absence must be forgotten, got %d", ip, after)
		case !shouldCount && after != before:
			t.Fatalf("I6: an answer %v after the counted one (TTL %v, same addresses) changed the absence of %v: %d -> %d",
				c.at.Sub(last.At), last.TTL, ip, before, after)
		}
	}
	for ip := range c.mem.ZoneAll {
		inGroup := slices.ContainsFunc(c.current, func(h nlb.TargetHealth) bool { return h.IP == ip })
		if kept := next.ZoneAll[ip]; kept != (want[ip] || inGroup) {
			t.Fatalf("learned zone all of %v kept %v after Observe; want kept while it is in the answer (%v) or the group (%v)", ip, kept, want[ip], inGroup)
		}
	}
	for ip := range next.ZoneAll {
		if !c.mem.ZoneAll[ip] {
			t.Fatalf("Observe learned zone all for %v: only a registration AWS answered may teach it", ip)
		}
	}
	wantCounted := last
	if shouldCount {
		wantCounted = ans
	}
	if got := next.sources[""].counted; !got.At.Equal(wantCounted.At) || got.TTL != wantCounted.TTL || got.Server != wantCounted.Server ||
		!slices.Equal(got.Addrs, wantCounted.Addrs) {
		t.Fatalf("last counted answer is %+v, want %+v", got, wantCounted)
	}
}

// checkPlan asserts, for a plan toward the desired set want (from one source or the union of several), I1, I2
// and I4 to I7 against mem (the memory the plan was made with), and that applying it (register first, then
// deregister, I3) never leaves a desired address without a live target.
func checkPlan(t *testing.T, p Plan, want map[netip.Addr]bool, current []nlb.TargetHealth, mem Memory, pol Policy) {
	t.Helper()
	if len(want) == 0 {
		if !p.Empty() || p.InSync {
			t.Fatalf("I1: an unknown desired state must change nothing and not be in sync, got %+v", p)
		}
		return
	}
	live := map[nlb.Target]bool{} // non-draining targets as reported, with their zone
	liveOnPort := map[netip.Addr]bool{}
	for _, h := range current {
		if !h.Draining() {
			live[h.Target] = true
			if h.Port == pol.Port {
				liveOnPort[h.IP] = true
			}
		}
	}
	for _, d := range p.Deregister {
		if want[d.IP] {
			t.Fatalf("I2: deregisters desired address %v", d.IP)
		}
		if !live[d] {
			t.Fatalf("I4/I5: deregisters %+v, which is not a live target exactly as reported", d)
		}
		if mem.Absent[d.IP] < pol.DeregisterAfter {
			t.Fatalf("I6: deregisters %v after %d absences, needs %d", d.IP, mem.Absent[d.IP], pol.DeregisterAfter)
		}
		if !pol.Prune && !mem.Owned[nlb.Target{IP: d.IP, Port: d.Port}] {
			t.Fatalf("I7: deregisters %v, which ipsync did not register, with prune off", d.IP)
		}
	}
	registering := map[netip.Addr]bool{}
	for _, r := range p.Register {
		if !want[r.IP] || r.Port != pol.Port {
			t.Fatalf("registers %+v, which is not a desired address on port %d", r, pol.Port)
		}
		if liveOnPort[r.IP] {
			t.Fatalf("registers %v, which is already live (I9: steady state costs nothing)", r.IP)
		}
		if wantAZ := wantZone(pol, mem, current, r.IP); r.AvailabilityZone != wantAZ {
			t.Fatalf("registers %v with zone %q, want %q (availability_zone %s)", r.IP, r.AvailabilityZone, wantAZ, pol.AZ)
		}
		registering[r.IP] = true
	}
	for ip := range want {
		if !liveOnPort[ip] && !registering[ip] {
			t.Fatalf("I5: desired %v has no live target and is not registered", ip)
		}
	}
	if p.InSync != (p.Empty() && len(p.Waiting) == 0) {
		t.Fatalf("InSync %v disagrees with the plan %+v", p.InSync, p)
	}
}

// wantZone is the zone an address must be registered with: all: always "all"; vpc: never; auto: "all" only
// for an address AWS accepted only with "all" (learned, or listed with zone all by the group), since AWS refuses
// "all" for an address inside the VPC.
func wantZone(pol Policy, mem Memory, current []nlb.TargetHealth, ip netip.Addr) string {
	switch pol.AZ {
	case AZAll:
		return "all"
	case AZVPC:
		return ""
	}
	if mem.ZoneAll[ip] {
		return "all"
	}
	for _, h := range current {
		if h.IP == ip && h.AvailabilityZone == "all" {
			return "all"
		}
	}
	return ""
}

func FuzzMake(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03, 1, 4, 0, 0, 1, 5, 1, 1, 0, 2, 0, 3, 1, 4, 0, 2, 1, 2, 0})
	f.Add([]byte{0x01, 1, 2, 1, 1, 2, 5, 4, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0})
	f.Add([]byte{0x30, 0, 8, 4, 0, 1, 5, 5, 1, 0, 5, 0, 0, 6, 2, 1, 2, 1, 2, 1, 2, 3, 1})
	// availability_zone auto: 192.0.2.5 learned as accepted only with zone all, 198.51.100.6 not (yet).
	f.Add([]byte{0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10})
	// availability_zone auto: 192.0.2.5 draining on another port with zone all counts as learned.
	f.Add([]byte{0x10, 1, 4, 1, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := decodeCase(data)
		memBefore := len(c.mem.Absent)
		p := Make(c.desired, c.current, c.mem, c.pol)
		checkPlan(t, p, toSet(c.desired), c.current, c.mem, c.pol)
		if len(c.mem.Absent) != memBefore {
			t.Fatalf("Make modified its memory")
		}
		checkObserve(t, c)
	})
}

// TestFuzzSeeded runs the fuzz property over many pseudo-random inputs in the normal suite.
func TestFuzzSeeded(t *testing.T) {
	seeded(0x9e3779b97f4a7c15, func(data []byte) {
		c := decodeCase(data)
		checkPlan(t, Make(c.desired, c.current, c.mem, c.pol), toSet(c.desired), c.current, c.mem, c.pol)
		checkObserve(t, c)
	})
}

func toSet(addrs []netip.Addr) map[netip.Addr]bool {
	set := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		set[a] = true
	}
	return set
}
