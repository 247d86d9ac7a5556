package plan

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipsync/ipsync/internal/nlb"
)

// Memory is what the planner keeps between passes of one mapping. The zero value is an empty memory.
// Functions here never modify a Memory they are given; they return a new one.
type Memory struct {
	// Absent counts, for each registered address, the resolutions it was missing from (I6), as Observe counts
	// them.
	Absent map[netip.Addr]int
	// Owned holds the targets (IP and port; the zone does not matter) ipsync registered itself (I7). Keyed by
	// target, not address: the same IP on another port may be someone else's.
	Owned map[nlb.Target]bool
	// ZoneAll holds the addresses AWS accepted only with AvailabilityZone "all" (outside the target group's VPC),
	// as the engine learned them when registering (availability_zone auto, see LearnZone). Kept while the
	// address is in an answer or in the target group.
	ZoneAll map[netip.Addr]bool
	// sources is what each source last said, by name (ObserveSources); Observe's one source is "".
	sources map[string]sourceMemory
	// owner is, for each registered address, the source whose answer last held it: the address is "last
	// attributed" to it (ObserveSources).
	owner map[netip.Addr]string
	// lastAbsence is, for each address in Absent, the answer that counted its last absence (ObserveSources).
	lastAbsence map[netip.Addr]absence
}

// absence is an answer that counted an address absent: its source, and when it runs out (At + TTL). An address
// whose source is gone is not counted absent again by another source's answer before then (ObserveSources).
type absence struct {
	source string
	until  time.Time
}

// sighting is what memory knows about an address DNS returned: when it first appeared (since memory last
// forgot it), when it was last returned, and which servers have returned it since it appeared.
type sighting struct {
	first, last time.Time
	by          map[string]bool
}

// ServerLag is how long a server that has not yet returned a new address may lag behind the servers that have:
// for that long, its answers without the address do not count as absences of it. Route 53, which serves the
// RDS zones, says a change reaches all its name servers within 60 seconds.
const ServerLag = 60 * time.Second

// Answer is one successful resolution of the endpoint.
type Answer struct {
	Addrs []netip.Addr  // sorted, as the resolver returns them
	At    time.Time     // when it arrived
	TTL   time.Duration // how long it stands: the record's TTL within poll.min and poll.max, or poll.min in authoritative mode
	// Server is who gave the answer, as host:port: a configured resolver in recursive mode, one of the zone's
	// name servers in authoritative mode. "" stands for one unnamed server.
	Server string
}

// Observe records one successful answer (never a failed one, I1) and returns the new memory; call it before
// Make. An address present again starts from zero, whatever the answer.
//
// The answer counts as a resolution for deregister_after (I6) only when it differs from the last counted answer,
// comes from another server, or comes at least that answer's TTL after it. The same answer from the same server
// sooner than that (a watch that resolves every second, the check right before deregistering, an answer
// several mappings share) may be a cache repeating itself, and must not remove an old address faster than
// deregister_after answers a TTL apart. When it counts, every registered address missing from it has its
// absence count raised by one; addresses no longer registered are forgotten, and so is ipsync's claim on
// targets no longer in the target group at all.
//
// Lagging servers. A zone's name servers publish a change a few seconds apart, so while a change propagates
// some answer with the new address and some with the old. A server's answer without an address X does not count
// as an absence of X when it may come from a server that does not have X yet: X appeared less than ServerLag
// ago, that server has not returned X since, and the answer holds no address that appeared after X (an answer
// with newer news than X is ahead of X, not behind). So a lagging server's old answer never moves the new
// address toward deregistration, however many times in a row it is asked, while its old address, present in
// that answer, starts from zero again and goes only once the servers agree. With a single server (recursive
// mode, as a rule) nothing changes: a server that answers has returned what it returned.
func Observe(mem Memory, ans Answer, current []nlb.TargetHealth) Memory {
	return ObserveSources(mem, []Source{{Known: true, Answer: ans}}, current)
}

// singleSource is the one source of a mapping that Make serves: no addresses means unknown.
func singleSource(addrs []netip.Addr) Source {
	return Source{Known: len(addrs) > 0, Answer: Answer{Addrs: addrs}}
}

// counts reports whether ans counts as a new resolution after the last counted answer (see Observe).
func counts(last, ans Answer) bool {
	return last.At.IsZero() || !slices.Equal(ans.Addrs, last.Addrs) || ans.Server != last.Server ||
		ans.At.Sub(last.At) >= last.TTL
}

// lagging reports whether ans, which lacks address x, may come from a server that does not have x yet (see
// Observe). seen are the sightings after ans.
func lagging(seen map[netip.Addr]sighting, x netip.Addr, ans Answer) bool {
	sx, ok := seen[x]
	if !ok || sx.by[ans.Server] || ans.At.Sub(sx.first) >= ServerLag {
		return false
	}
	for _, ip := range ans.Addrs {
		if seen[ip].first.After(sx.first) {
			return false
		}
	}
	return true
}

// see returns the sightings after ans: its addresses are marked as returned by its server now, addresses new to
// memory appear now, and addresses neither registered nor returned within ServerLag are forgotten. old is not
// modified.
func see(old map[netip.Addr]sighting, ans Answer, reg map[netip.Addr]bool) map[netip.Addr]sighting {
	next := make(map[netip.Addr]sighting, len(old)+len(ans.Addrs))
	for ip, s := range old {
		if reg[ip] || ans.At.Sub(s.last) < ServerLag {
			next[ip] = s
		}
	}
	for _, ip := range ans.Addrs {
		s, ok := next[ip]
		if !ok {
			s = sighting{first: ans.At}
		}
		by := make(map[string]bool, len(s.by)+1)
		for srv := range s.by {
			by[srv] = true
		}
		by[ans.Server] = true
		next[ip] = sighting{first: s.first, last: ans.At, by: by}
	}
	return next
}

// Registered returns mem with ts marked as registered by ipsync (I7). Call it after RegisterTargets succeeded.
func Registered(mem Memory, ts []nlb.Target) Memory {
	next := mem
	next.Owned = copyOwned(mem.Owned)
	for _, t := range ts {
		next.Owned[ownKey(t)] = true
	}
	return next
}

// Deregistered returns mem without ts: they are gone, and so is ipsync's claim on them.
// Call it after DeregisterTargets succeeded.
func Deregistered(mem Memory, ts []nlb.Target) Memory {
	next := mem
	next.Absent, next.Owned = maps.Clone(mem.Absent), copyOwned(mem.Owned)
	next.lastAbsence = maps.Clone(mem.lastAbsence)
	for _, t := range ts {
		delete(next.Owned, ownKey(t))
		delete(next.Absent, t.IP)
		delete(next.lastAbsence, t.IP)
	}
	return next
}

// LearnZone returns mem knowing that AWS accepted ip only with AvailabilityZone "all" (all) or without a zone
// (!all). Call it after a registration AWS accepted with that zone and refused with the other.
func LearnZone(mem Memory, ip netip.Addr, all bool) Memory {
	if mem.ZoneAll[ip] == all {
		return mem
	}
	next := mem
	next.ZoneAll = make(map[netip.Addr]bool, len(mem.ZoneAll)+1)
	for a := range mem.ZoneAll {
		next.ZoneAll[a] = true
	}
	if all {
		next.ZoneAll[ip] = true
	} else {
		delete(next.ZoneAll, ip)
	}
	return next
}

// registered returns the addresses that count as registered: every target that is not draining (I5).
func registered(current []nlb.TargetHealth) map[netip.Addr]bool {
	set := make(map[netip.Addr]bool, len(current))
	for _, t := range current {
		if !t.Draining() {
			set[t.IP] = true
		}
	}
	return set
}

// ownKey is a target as ownership knows it: IP and port.
func ownKey(t nlb.Target) nlb.Target { return nlb.Target{IP: t.IP, Port: t.Port} }

func copyOwned(m map[nlb.Target]bool) map[nlb.Target]bool {
	c := make(map[nlb.Target]bool, len(m))
	for k, v := range m {
		if v {
			c[k] = true
		}
	}
	return c
}
