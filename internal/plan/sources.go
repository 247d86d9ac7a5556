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
// deregistered, and while a source has not answered once since start (held or not), nothing is, since any
// registered address may be its own, and an address no other source claims is not counted absent meanwhile; only
// a pending source (nothing to resolve yet) stands for no address. The
// addresses of the sources that answered may be registered. I2 and I4 to I7 apply to the union, and I6 counts
// the resolutions of the source an address was last attributed to; the absences of an address whose source is
// gone, or was never known, are counted a TTL apart, whichever sources' answers they come from.

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
	// for nothing, but it must not receive new ones. A held source that answered stops no other deregistration;
	// one that did not answer is unknown like any other (I1).
	Hold bool
	// Pending: the source has nothing to resolve yet (an RDS member RDS gives no endpoint while it is being
	// created), so nothing of it can have been registered since it appeared. It is unknown, but one that never
	// answered stands for no address, and does not stop the other deregistrations.
	Pending bool
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
// or was never attributed (a target from before a restart), a counted answer of any source counts, but only
// once the answer that counted the address's last absence has run out (its TTL has passed), unless it comes
// from the same source (whose own answers count under Observe's rule). The sources' answers count at different
// times, as their TTLs run out, so that without this two of them could count the address absent twice within
// a second: its deregister_after absences span at least deregister_after-1 TTLs, as with one name. A source
// missing from srcs is forgotten.
func ObserveSources(mem Memory, srcs []Source, current []nlb.TargetHealth) Memory {
	reg := registered(current)
	said := recordAnswers(mem, srcs, reg)
	owned := copyOwned(mem.Owned)
	if len(said.counted) > 0 { // as in Observe, a counted answer forgets the claim on targets gone
		owned = ownedStillThere(mem.Owned, current)
	}
	absent, lastAbsence := said.countAbsences(mem, reg)
	return Memory{
		Absent:      absent,
		Owned:       owned,
		sources:     said.sources,
		owner:       said.owner,
		lastAbsence: lastAbsence,
		ZoneAll:     keepZones(mem.ZoneAll, said.present, current),
	}
}

// answers is what one pass's sources said, as ObserveSources records it.
type answers struct {
	known   map[string]Answer   // the answer of each source that answered
	unknown map[string]bool     // the sources that did not answer
	counted map[string]bool     // the known sources whose answer counts as a resolution (I6)
	order   []string            // the counted sources, in the order of srcs
	present map[netip.Addr]bool // every address in a known answer
	// silent: a source that is not pending has not answered once since start; it may stand for any registered
	// address, so no address that is not another source's is counted absent meanwhile.
	silent  bool
	sources map[string]sourceMemory
	owner   map[netip.Addr]string
}

// recordAnswers records each source's answer: an unknown source keeps what the memory had of it, a known one
// keeps its answer, its sightings, and its answer as counted when it counts. Each address is attributed to the
// first source in order whose answer holds it; a registered address in no known answer stays attributed to the
// source it was last attributed to.
func recordAnswers(mem Memory, srcs []Source, reg map[netip.Addr]bool) answers {
	said := answers{
		known: map[string]Answer{}, unknown: map[string]bool{}, counted: map[string]bool{}, present: map[netip.Addr]bool{},
		sources: make(map[string]sourceMemory, len(srcs)), owner: map[netip.Addr]string{},
	}
	for _, s := range srcs {
		last, seen := mem.sources[s.Name]
		if !s.Known {
			said.unknown[s.Name] = true
			said.silent = said.silent || (!seen && !s.Pending)
			if seen {
				said.sources[s.Name] = last
			}
			continue
		}
		said.known[s.Name] = s.Answer
		sm := sourceMemory{counted: last.counted, last: s.Answer.Addrs, seen: see(last.seen, s.Answer, reg)}
		if counts(last.counted, s.Answer) {
			sm.counted, said.counted[s.Name] = s.Answer, true
			said.order = append(said.order, s.Name)
		}
		said.sources[s.Name] = sm
		for _, a := range s.Answer.Addrs {
			if !said.present[a] {
				said.owner[a] = s.Name
			}
			said.present[a] = true
		}
	}
	for a := range reg {
		if owner, attributed := mem.owner[a]; attributed && !said.present[a] {
			said.owner[a] = owner
		}
	}
	return said
}

// ownedStillThere drops ipsync's claim on targets no longer in the target group, as a counted answer does in
// Observe.
func ownedStillThere(owned map[nlb.Target]bool, current []nlb.TargetHealth) map[nlb.Target]bool {
	still := map[nlb.Target]bool{}
	for _, t := range current {
		if owned[ownKey(t.Target)] {
			still[ownKey(t.Target)] = true
		}
	}
	return still
}

// countAbsences returns the absence counts after this pass, and the answer that counted each one's last
// absence. A registered address missing from every known answer is absent once more when missedBy says so; one
// in a known answer starts from zero. An address no longer registered keeps its count until the next counted
// answer forgets it.
func (said answers) countAbsences(mem Memory, reg map[netip.Addr]bool) (map[netip.Addr]int, map[netip.Addr]absence) {
	absent, last := map[netip.Addr]int{}, map[netip.Addr]absence{}
	keep := func(a netip.Addr, n int, by absence, ok bool) {
		if n > 0 {
			absent[a] = n
			if ok {
				last[a] = by
			}
		}
	}
	if len(said.counted) == 0 {
		for a, n := range mem.Absent {
			if !said.present[a] && !reg[a] {
				by, ok := mem.lastAbsence[a]
				keep(a, n, by, ok)
			}
		}
	}
	for a := range reg {
		if said.present[a] {
			continue
		}
		n := mem.Absent[a]
		by, ok := mem.lastAbsence[a]
		if next, missed := said.missedBy(mem, a); missed {
			n, by, ok = n+1, next, true
		}
		keep(a, n, by, ok)
	}
	return absent, last
}

// missedBy reports whether this pass counts as one more absence of registered address a, which no known answer
// holds, and the answer that counts it. The source a was last attributed to decides (the memory's attribution
// before this pass): an unknown one holds its count, a known one counts when its answer counted. An address of a
// source that is gone, or never attributed, is absent when a counted answer is that comes from the source that
// counted its last absence, or after the answer that did has run out.
func (said answers) missedBy(mem Memory, a netip.Addr) (absence, bool) {
	name, attributed := mem.owner[a]
	if attributed && said.unknown[name] {
		return absence{}, false // held for its unknown source: counting it would make it go the moment the source answers again
	}
	if _, known := said.known[name]; attributed && known {
		return said.absence(name), said.absentFrom(name, a)
	}
	if said.silent {
		// The count waits: once the silent source answers, one answer without a would otherwise complete it,
		// and a may be that source's own.
		return absence{}, false
	}
	prev, before := mem.lastAbsence[a]
	for _, name := range said.order {
		if said.absentFrom(name, a) && (!before || name == prev.source || !said.known[name].At.Before(prev.until)) {
			return said.absence(name), true
		}
	}
	return absence{}, false
}

// absence is the absence that the answer of source name counts.
func (said answers) absence(name string) absence {
	ans := said.known[name]
	return absence{source: name, until: ans.At.Add(ans.TTL)}
}

// absentFrom reports whether the counted answer of source name counts as an absence of a: not from a server that
// may not have a yet.
func (said answers) absentFrom(name string, a netip.Addr) bool {
	return said.counted[name] && !lagging(said.sources[name].seen, a, said.known[name])
}

// MakeSources computes the plan from one pass's sources (as given to ObserveSources), the target group as read
// (current) and the memory ObserveSources returned. Desired is the union of the addresses of the known sources
// that are not held. Never deregistered: a desired address (I2), an address of a held source, and an address an
// unknown source last answered with (I1). An unknown source that never answered (since ipsync started), held
// or not, may stand for any registered address: while there is one, nothing is deregistered at all; only a
// pending source (nothing to resolve yet) stands for none. With no desired address the plan changes nothing (I1).
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
		case !s.Pending:
			holdAll = true // a failed lookup since start, held or not: it may stand for any registered address
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
