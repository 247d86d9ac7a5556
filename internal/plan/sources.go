package plan

import (
	"net/netip"
	"slices"

	"github.com/ipsync/ipsync/internal/nlb"
)

// A mapping's desired state may come from several sources: each name of endpoints:, or each member of an rds:
// source, resolved through its own instance endpoint. Each source answers or fails on its own, so in one pass
// part of the desired state may be unknown. The rule (I1 per source): the desired set is the union of the
// addresses of the sources that answered; an address last attributed to a source that did not answer is never
// deregistered; the addresses of the sources that answered may be registered. I2 and I4 to I7 apply to the union,
// and I6 counts the resolutions of the source an address was last attributed to.

// Source is one source of a mapping's desired state as one pass saw it.
type Source struct {
	// Name is unique within the mapping and stable between passes: the memory follows each source by name.
	Name string
	// Known: the source answered, and Answer is what it said. Otherwise its state is unknown (I1): a DNS failure,
	// an RDS API failure, a membership of zero.
	Known  bool
	Answer Answer
	// Hold: the source's addresses are kept but never added, e.g. an RDS member that is not available
	// (rebooting, modifying, being deleted): it may serve again soon, and draining it would cut its connections
	// for nothing, but it must not receive new ones. Known or not, it never stops other deregistrations.
	Hold bool
}

// sourceMemory is what the memory keeps of one source.
type sourceMemory struct {
	counted Answer       // its last answer that counted as a resolution for deregister_after (I6)
	last    []netip.Addr // its last answer: what an unknown source is assumed to still stand for (I1)
	// seen holds, for each address the source returned that is registered or was returned within ServerLag,
	// when it appeared and which servers have returned it since (see Observe on lagging servers).
	seen map[netip.Addr]sighting
}

// ObserveSources records one pass's sources in the memory and returns the new memory; call it before
// MakeSources with the same sources. Each source's answer counts as a resolution under Observe's rule, on its
// own, lagging servers included. An address in any known answer starts from zero. A registered address missing
// from every known answer is absent once more when the source it was last attributed to has a counted answer
// (that does not come from a server lagging behind the address); when that source is unknown, its count stays
// (it is not deregistered anyway); when it is no longer a source at all (an RDS member that left the cluster),
// or was never attributed (a target from before a restart), any counted answer of the mapping counts. A source
// missing from srcs is forgotten.
func ObserveSources(mem Memory, srcs []Source, current []nlb.TargetHealth) Memory {
	reg := registered(current)
	next := Memory{
		Absent:  map[netip.Addr]int{},
		Owned:   copyOwned(mem.Owned),
		sources: make(map[string]sourceMemory, len(srcs)),
		owner:   map[netip.Addr]string{},
	}
	present := map[netip.Addr]bool{}
	counted, known, unknown := map[string]bool{}, map[string]Answer{}, map[string]bool{}
	for _, s := range srcs {
		last, seen := mem.sources[s.Name]
		if !s.Known {
			unknown[s.Name] = true
			if seen {
				next.sources[s.Name] = last
			}
			continue
		}
		known[s.Name] = s.Answer
		sm := sourceMemory{counted: last.counted, last: s.Answer.Addrs, seen: see(last.seen, s.Answer, reg)}
		if counts(last.counted, s.Answer) {
			sm.counted, counted[s.Name] = s.Answer, true
		}
		next.sources[s.Name] = sm
		for _, a := range s.Answer.Addrs {
			if !present[a] {
				next.owner[a] = s.Name // the first source in order holding it
			}
			present[a] = true
		}
	}
	// absentFrom reports whether the counted answer of source name counts as an absence of x: not from a server
	// that may not have x yet.
	absentFrom := func(name string, x netip.Addr) bool {
		return counted[name] && !lagging(next.sources[name].seen, x, known[name])
	}

	if len(counted) > 0 {
		// As Observe: a counted answer forgets ipsync's claim on targets no longer in the target group.
		next.Owned = map[nlb.Target]bool{}
		for _, t := range current {
			if mem.Owned[ownKey(t.Target)] {
				next.Owned[ownKey(t.Target)] = true
			}
		}
	}
	for a, n := range mem.Absent {
		if !present[a] && !reg[a] && len(counted) == 0 {
			next.Absent[a] = n // not registered now; forgotten at the next counted answer
		}
	}
	for a := range reg {
		if present[a] {
			continue
		}
		owner, attributed := mem.owner[a]
		n := mem.Absent[a]
		switch _, ownerKnown := known[owner]; {
		case attributed && unknown[owner]:
			// Held for its unknown source: counting it would make it go the moment the source answers again.
		case attributed && ownerKnown:
			if absentFrom(owner, a) {
				n++
			}
		default:
			for name := range counted {
				if absentFrom(name, a) {
					n++
					break
				}
			}
		}
		if n > 0 {
			next.Absent[a] = n
		}
		if attributed {
			next.owner[a] = owner
		}
	}
	next.ZoneAll = keepZones(mem.ZoneAll, present, current)
	return next
}

// MakeSources computes the plan from one pass's sources (as given to ObserveSources), the target group as read
// (current) and the memory ObserveSources returned. Desired is the union of the addresses of the known sources
// that are not held. Never deregistered: a desired address (I2), an address of a held source, and an address an
// unknown source last answered with (I1). An unknown source that never answered (since ipsync started) may
// stand for any registered address: while there is one, nothing is deregistered at all. With no desired address
// the plan changes nothing (I1).
func MakeSources(srcs []Source, current []nlb.TargetHealth, mem Memory, pol Policy) Plan {
	want, held := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	holdAll := false
	for _, s := range srcs {
		switch last, seen := mem.sources[s.Name]; {
		case s.Known && s.Hold:
			addTo(held, s.Answer.Addrs)
		case s.Known:
			addTo(want, s.Answer.Addrs)
		case seen:
			addTo(held, last.last)
		case !s.Hold:
			holdAll = true
		}
	}
	if len(want) == 0 {
		return Plan{}
	}
	return makePlan(want, func(ip netip.Addr) bool { return holdAll || held[ip] }, current, mem, pol)
}

// keepZones returns the learned zones of the addresses still in an answer (present) or in the target group.
func keepZones(zoneAll, present map[netip.Addr]bool, current []nlb.TargetHealth) map[netip.Addr]bool {
	if len(zoneAll) == 0 {
		return nil
	}
	keep := make(map[netip.Addr]bool, len(zoneAll))
	for a := range zoneAll {
		if present[a] || slices.ContainsFunc(current, func(h nlb.TargetHealth) bool { return h.IP == a }) {
			keep[a] = true
		}
	}
	return keep
}

func addTo(set map[netip.Addr]bool, addrs []netip.Addr) {
	for _, a := range addrs {
		set[a] = true
	}
}
