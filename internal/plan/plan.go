// Package plan decides, without any I/O, which targets one mapping must register and deregister.
//
// It is a pure function of what DNS says (desired), what the target group says (current), what ipsync remembers
// from earlier passes (Memory) and the mapping's policy. Every safety invariant of SPEC §3 that concerns what to
// change (I1, I2, I4-I7) lives here, so it can be table-tested and fuzzed without fakes; the order of the calls
// (I3) and dry-run (I8) belong to the executor.
package plan

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/ipsync/ipsync/internal/targets"
)

// Availability-zone policies of a mapping (config key availability_zone).
const (
	AZAuto = "auto" // "all" for addresses outside the target group's VPC, omitted inside
	AZAll  = "all"  // always "all"
	AZVPC  = "vpc"  // never set: every address is expected inside the VPC
)

// Policy is the part of a mapping's configuration the planner needs.
type Policy struct {
	Port            int32          // port to register desired addresses on
	DeregisterAfter int            // I6: consecutive successful resolutions an address must be absent from
	Prune           bool           // I7: false = only deregister addresses ipsync registered itself
	AZ              string         // AZAuto, AZAll or AZVPC
	VPCCIDRs        []netip.Prefix // the target group's VPC, for AZAuto
}

// Memory is what the planner keeps between passes of one mapping. The zero value is an empty memory.
// Functions here never modify a Memory they are given; they return a new one.
type Memory struct {
	// Absent counts, for each registered address, the consecutive successful resolutions it was missing from.
	Absent map[netip.Addr]int
	// Owned holds the targets (IP and port; the zone does not matter) ipsync registered itself (I7). Keyed by
	// target, not address: the same IP on another port may be someone else's.
	Owned map[targets.Target]bool
}

// Plan is what one pass should change.
type Plan struct {
	Register   []targets.Target // desired addresses not registered (or only draining), on Policy.Port
	Deregister []targets.Target // stale targets, exactly as DescribeTargetHealth reported them (I4)
	Waiting    []netip.Addr     // stale addresses kept for now: absent too few times (I6)
	Kept       []netip.Addr     // stale addresses never removed because ipsync did not register them (I7)
	Unknown    bool             // the desired state is unknown (I1): nothing may change
	InSync     bool             // the target group serves exactly what DNS says, as far as ipsync may act
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Register) == 0 && len(p.Deregister) == 0 }

// registered returns the addresses that count as registered: every target that is not draining (I5).
func registered(current []targets.TargetHealth) map[netip.Addr]bool {
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

// Observe records one successful resolution into memory (I6): every registered address missing from desired has
// its absence count raised by one; an address present again starts from zero; addresses no longer registered are
// forgotten, and so is ipsync's claim on addresses no longer in the target group at all. Call it once per
// successful resolution, never on a failed one (I1), and before Make.
func Observe(mem Memory, desired []netip.Addr, current []targets.TargetHealth) Memory {
	want := toSet(desired)
	next := Memory{Absent: map[netip.Addr]int{}, Owned: map[targets.Target]bool{}}
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

// Reset records an answer that does not count as a new resolution for I6 (it came sooner than the previous
// counted answer's TTL, so a cache may simply have repeated it): an address present again starts from zero, and
// no absence is counted.
func Reset(mem Memory, desired []netip.Addr) Memory {
	next := Memory{Absent: map[netip.Addr]int{}, Owned: copyOwned(mem.Owned)}
	want := toSet(desired)
	for ip, n := range mem.Absent {
		if !want[ip] {
			next.Absent[ip] = n
		}
	}
	return next
}

// Registered returns mem with ts marked as registered by ipsync (I7). Call it after RegisterTargets succeeded.
func Registered(mem Memory, ts []targets.Target) Memory {
	next := Memory{Absent: mem.Absent, Owned: copyOwned(mem.Owned)}
	for _, t := range ts {
		next.Owned[ownKey(t)] = true
	}
	return next
}

// Deregistered returns mem without ts: they are gone, and so is ipsync's claim on them.
// Call it after DeregisterTargets succeeded.
func Deregistered(mem Memory, ts []targets.Target) Memory {
	next := Memory{Absent: map[netip.Addr]int{}, Owned: copyOwned(mem.Owned)}
	for ip, n := range mem.Absent {
		next.Absent[ip] = n
	}
	for _, t := range ts {
		delete(next.Owned, ownKey(t))
		delete(next.Absent, t.IP)
	}
	return next
}

// ownKey is a target as ownership knows it: IP and port.
func ownKey(t targets.Target) targets.Target { return targets.Target{IP: t.IP, Port: t.Port} }

func copyOwned(m map[targets.Target]bool) map[targets.Target]bool {
	c := make(map[targets.Target]bool, len(m))
	for k, v := range m {
		if v {
			c[k] = true
		}
	}
	return c
}

// Make computes the plan. desiredErr is the resolution's error: non-nil, or an empty desired list, means the
// desired state is unknown and the plan changes nothing (I1).
func Make(desired []netip.Addr, desiredErr error, current []targets.TargetHealth, mem Memory, pol Policy) Plan {
	if desiredErr != nil || len(desired) == 0 {
		return Plan{Unknown: true}
	}
	want := toSet(desired)
	var p Plan

	// Register every desired address that has no live target on the policy's port. A draining target does not
	// count (I5): registering it again brings it back.
	live := make(map[targets.Target]bool, len(current))
	for _, t := range current {
		if !t.Draining() {
			live[targets.Target{IP: t.IP, Port: t.Port}] = true
		}
	}
	for ip := range want {
		if !live[targets.Target{IP: ip, Port: pol.Port}] {
			p.Register = append(p.Register, targets.Target{IP: ip, Port: pol.Port, AvailabilityZone: zoneFor(ip, pol)})
		}
	}

	// Deregister stale targets: never a desired address (I2), never a draining one (it is already leaving),
	// only after enough absences (I6), and with prune off only what ipsync registered (I7).
	for _, t := range current {
		if t.Draining() || want[t.IP] {
			continue
		}
		switch {
		case !pol.Prune && !mem.Owned[ownKey(t.Target)]:
			p.Kept = append(p.Kept, t.IP)
		case mem.Absent[t.IP] < max(pol.DeregisterAfter, 1):
			p.Waiting = append(p.Waiting, t.IP)
		default:
			// Echo Port and AvailabilityZone exactly as reported: anything else silently does nothing (I4).
			p.Deregister = append(p.Deregister, t.Target)
		}
	}

	sortTargets(p.Register)
	sortTargets(p.Deregister)
	slices.SortFunc(p.Waiting, netip.Addr.Compare)
	p.Waiting = slices.Compact(p.Waiting)
	slices.SortFunc(p.Kept, netip.Addr.Compare)
	p.Kept = slices.Compact(p.Kept)
	p.InSync = p.Empty() && len(p.Waiting) == 0
	return p
}

// zoneFor is the AvailabilityZone to register ip with: "all" outside the VPC, nothing inside (SPEC §2).
func zoneFor(ip netip.Addr, pol Policy) string {
	switch pol.AZ {
	case AZAll:
		return "all"
	case AZVPC:
		return ""
	}
	for _, c := range pol.VPCCIDRs {
		if c.Contains(ip) {
			return ""
		}
	}
	return "all"
}

func sortTargets(ts []targets.Target) {
	slices.SortFunc(ts, func(a, b targets.Target) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.AvailabilityZone, b.AvailabilityZone))
	})
}
