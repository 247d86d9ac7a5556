// Package plan decides, without any I/O, which targets one mapping must register and deregister.
//
// It is a pure function of what DNS says (desired: one answer, or the answers of several sources, some of which
// may be unknown, held or pending, see sources.go), what the target group says (current), what ipsync remembers
// from earlier passes (Memory: absence counts, and which source each address belongs to) and the mapping's
// policy. Every safety invariant that concerns what to change
// (I1, I2, I4-I7) lives here, including what counts as a resolution for deregister_after (Observe), so it can be
// table-tested and fuzzed without fakes; the order of the calls (I3) and dry-run (I8) belong to the engine.
package plan

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/ipsync/ipsync/internal/nlb"
)

// Availability-zone policies of a mapping (config key availability_zone).
const (
	AZAuto = "auto" // "all" for addresses AWS accepts only with "all" (outside the VPC), omitted otherwise
	AZAll  = "all"  // always "all"
	AZVPC  = "vpc"  // never set: every address is expected inside the VPC
)

// Policy is the part of a mapping's configuration the planner needs.
type Policy struct {
	Port            int32  // port to register desired addresses on
	DeregisterAfter int    // I6: resolutions an address must be absent from, as Observe counts them
	Prune           bool   // I7: false = only deregister addresses ipsync registered itself
	AZ              string // AZAuto, AZAll or AZVPC
}

// Plan is what one pass should change.
type Plan struct {
	Register   []nlb.Target // desired addresses not registered (or only draining), on Policy.Port
	Deregister []nlb.Target // stale targets, exactly as DescribeTargetHealth reported them (I4)
	Waiting    []netip.Addr // stale addresses kept for now: absent too few times (I6)
	Kept       []netip.Addr // stale addresses never removed because ipsync did not register them (I7)
	Held       []netip.Addr // stale addresses kept for a source that is unknown or held (MakeSources)
	InSync     bool         // the target group serves exactly what DNS says, as far as ipsync may act
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Register) == 0 && len(p.Deregister) == 0 }

// Make computes the plan for a mapping with one source, from a successful answer's addresses (desired), the
// target group as read (current) and the memory Observe returned for that answer. An empty desired list means
// the desired state is unknown, and the plan changes nothing (I1); a failed resolution must not reach Make at all.
func Make(desired []netip.Addr, current []nlb.TargetHealth, mem Memory, pol Policy) Plan {
	return MakeSources([]Source{singleSource(desired)}, current, mem, pol)
}

// makePlan is the plan for the desired addresses want; held reports the stale addresses a source that is
// unknown or held still stands for (MakeSources).
func makePlan(want map[netip.Addr]bool, held func(netip.Addr) bool, current []nlb.TargetHealth, mem Memory, pol Policy) Plan {
	var p Plan

	// Register every desired address that has no live target on the policy's port. A draining target does not
	// count (I5): registering it again brings it back.
	live := make(map[nlb.Target]bool, len(current))
	for _, t := range current {
		if !t.Draining() {
			live[nlb.Target{IP: t.IP, Port: t.Port}] = true
		}
	}
	for ip := range want {
		if !live[nlb.Target{IP: ip, Port: pol.Port}] {
			p.Register = append(p.Register, nlb.Target{IP: ip, Port: pol.Port, AvailabilityZone: zoneFor(ip, pol, mem, current)})
		}
	}

	// Deregister stale targets: never a desired address (I2), never a draining one (it is already leaving),
	// never one an unknown or held source stands for (I1), only after enough absences (I6), and with prune off
	// only what ipsync registered (I7).
	for _, t := range current {
		if t.Draining() || want[t.IP] {
			continue
		}
		switch {
		case !pol.Prune && !mem.Owned[ownKey(t.Target)]:
			p.Kept = append(p.Kept, t.IP)
		case held(t.IP):
			p.Held = append(p.Held, t.IP)
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
	slices.SortFunc(p.Held, netip.Addr.Compare)
	p.Held = slices.Compact(p.Held)
	p.InSync = p.Empty() && len(p.Waiting) == 0
	return p
}

// zoneFor is the AvailabilityZone to register ip with. AWS accepts an address inside the target group's VPC only
// without a zone, and one outside it (a peered VPC, on premises) only with "all". With availability_zone auto,
// ipsync does not read the VPC's CIDRs: it learns from AWS which addresses are outside. "all" for an address AWS
// accepted only with "all" (mem.ZoneAll) or that the group lists with zone "all"; nothing otherwise, and the
// engine registers an address AWS refuses without a zone again with "all".
func zoneFor(ip netip.Addr, pol Policy, mem Memory, current []nlb.TargetHealth) string {
	switch pol.AZ {
	case AZAll:
		return "all"
	case AZVPC:
		return ""
	}
	if mem.ZoneAll[ip] || slices.ContainsFunc(current, func(h nlb.TargetHealth) bool { return h.IP == ip && h.AvailabilityZone == "all" }) {
		return "all"
	}
	return ""
}

func sortTargets(ts []nlb.Target) {
	slices.SortFunc(ts, func(a, b nlb.Target) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.AvailabilityZone, b.AvailabilityZone))
	})
}
