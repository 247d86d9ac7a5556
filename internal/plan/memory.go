package plan

import (
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
	// counted is the last answer that counted as a resolution (zero At: none yet).
	counted Answer
}

// Answer is one successful resolution of the endpoint.
type Answer struct {
	Addrs []netip.Addr  // sorted, as the resolver returns them
	At    time.Time     // when it arrived
	TTL   time.Duration // how long it stands: the record's TTL, within poll.min and poll.max
}

// Observe records one successful answer (never a failed one, I1) and returns the new memory; call it before
// Make. An address present again starts from zero, whatever the answer.
//
// The answer counts as a resolution for deregister_after (I6) only when it differs from the last counted answer
// or comes at least that answer's TTL after it. The same answer sooner than that (a watch that resolves every
// second, the check right before deregistering) may be a cache repeating itself, and must not remove an old
// address faster than deregister_after answers a TTL apart. When it counts, every registered address missing
// from it has its absence count raised by one; addresses no longer registered are forgotten, and so is
// ipsync's claim on targets no longer in the target group at all.
func Observe(mem Memory, ans Answer, current []nlb.TargetHealth) Memory {
	if !counts(mem.counted, ans) {
		return reset(mem, ans.Addrs)
	}
	want := toSet(ans.Addrs)
	next := Memory{Absent: map[netip.Addr]int{}, Owned: map[nlb.Target]bool{}, counted: ans}
	for _, t := range current {
		if mem.Owned[ownKey(t.Target)] {
			next.Owned[ownKey(t.Target)] = true
		}
	}
	for ip := range registered(current) {
		if !want[ip] {
			next.Absent[ip] = mem.Absent[ip] + 1
		}
	}
	return next
}

// counts reports whether ans counts as a new resolution after the last counted answer (see Observe).
func counts(last, ans Answer) bool {
	return last.At.IsZero() || !slices.Equal(ans.Addrs, last.Addrs) || ans.At.Sub(last.At) >= last.TTL
}

// reset records an answer that does not count: an address present again starts from zero, no absence is counted.
func reset(mem Memory, desired []netip.Addr) Memory {
	next := Memory{Absent: map[netip.Addr]int{}, Owned: copyOwned(mem.Owned), counted: mem.counted}
	want := toSet(desired)
	for ip, n := range mem.Absent {
		if !want[ip] {
			next.Absent[ip] = n
		}
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
	next.Absent, next.Owned = make(map[netip.Addr]int, len(mem.Absent)), copyOwned(mem.Owned)
	for ip, n := range mem.Absent {
		next.Absent[ip] = n
	}
	for _, t := range ts {
		delete(next.Owned, ownKey(t))
		delete(next.Absent, t.IP)
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

func toSet(addrs []netip.Addr) map[netip.Addr]bool {
	set := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		set[a] = true
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
