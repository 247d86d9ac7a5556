package plan

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/nlb"
)

var ipD = netip.MustParseAddr("10.0.4.40")

func known(name string, at time.Time, a ...netip.Addr) Source {
	return Source{Name: name, Known: true, Answer: answer(at, a...)}
}

func unknownSource(name string) Source { return Source{Name: name} }

// sourcesRun plays passes of one mapping against a target group that applies every plan at once.
type sourcesRun struct {
	t       *testing.T
	mem     Memory
	current []nlb.TargetHealth
	dereg   []netip.Addr // everything deregistered so far
}

func (r *sourcesRun) pass(srcs ...Source) Plan {
	r.mem = ObserveSources(r.mem, srcs, r.current)
	p := MakeSources(srcs, r.current, r.mem, defaultPolicy)
	for _, t := range p.Register {
		r.current = append(r.current, nlb.TargetHealth{Target: t, State: "healthy"})
	}
	r.mem = Registered(r.mem, p.Register)
	for _, d := range p.Deregister {
		r.current = slices.DeleteFunc(r.current, func(h nlb.TargetHealth) bool { return h.Target == d })
		r.dereg = append(r.dereg, d.IP)
	}
	r.mem = Deregistered(r.mem, p.Deregister)
	return p
}

func (r *sourcesRun) registered() []netip.Addr {
	var out []netip.Addr
	for _, h := range r.current {
		out = append(out, h.IP)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// TestSourcesUnknownKeepsItsAddresses: of three names, b stops answering while a moves to a new address. a's
// old address goes after deregister_after resolutions; b's stays as long as b is unknown, and its absence is
// not counted meanwhile, so that it still needs deregister_after answers without it once b answers again.
func TestSourcesUnknownKeepsItsAddresses(t *testing.T) {
	r := &sourcesRun{t: t}
	r.pass(known("a", at(0), ipA), known("b", at(0), ipB), known("c", at(0), ipC))
	if got := r.registered(); !slices.Equal(got, addrs(ipA, ipB, ipC)) {
		t.Fatalf("registered %v, want A B C", got)
	}
	for i := 1; i <= 6; i++ {
		p := r.pass(known("a", at(5*i), ipD), unknownSource("b"), known("c", at(5*i), ipC))
		if !slices.Contains(p.Held, ipB) && slices.Contains(r.registered(), ipB) {
			t.Errorf("pass %d: B is not reported as held: %+v", i, p)
		}
	}
	if got := r.registered(); !slices.Equal(got, addrs(ipB, ipC, ipD)) {
		t.Fatalf("after b failed for 6 passes: registered %v, want B C D (A gone, B held)", got)
	}
	if !slices.Equal(r.dereg, addrs(ipA)) {
		t.Fatalf("deregistered %v, want only A", r.dereg)
	}
	// b answers again, elsewhere: B is absent from b's answers from now on, and waits deregister_after.
	r.pass(known("a", at(40), ipD), known("b", at(40), ipA), known("c", at(40), ipC))
	if !slices.Contains(r.registered(), ipB) {
		t.Fatalf("B deregistered at b's first answer without it: its absences while b was unknown were counted")
	}
	r.pass(known("a", at(45), ipD), known("b", at(45), ipA), known("c", at(45), ipC))
	if slices.Contains(r.registered(), ipB) {
		t.Fatalf("B still registered after 2 answers of b without it")
	}
}

// TestSourcesNeverAnsweredHoldsAll: a source that has not answered since start may stand for any registered
// address, so nothing is deregistered; the others' addresses are registered all the same.
func TestSourcesNeverAnsweredHoldsAll(t *testing.T) {
	r := &sourcesRun{t: t, current: []nlb.TargetHealth{th(ipA, 5432, "", "healthy"), th(ipB, 5432, "", "healthy")}}
	for i := range 5 {
		p := r.pass(known("a", at(5*i), ipC), unknownSource("b"))
		if len(p.Deregister) > 0 || !slices.Equal(p.Held, addrs(ipA, ipB)) {
			t.Fatalf("pass %d: %+v; want A and B held", i, p)
		}
	}
	if got := r.registered(); !slices.Equal(got, addrs(ipA, ipB, ipC)) {
		t.Fatalf("registered %v, want A B C", got)
	}
	// A pending source (a member still being created, with no name to resolve yet) holds nothing.
	for i := range 2 {
		r.pass(known("a", at(30+5*i), ipC), Source{Name: "b", Hold: true, Pending: true})
	}
	if got := r.registered(); !slices.Equal(got, addrs(ipC)) {
		t.Fatalf("with b only pending: registered %v, want C", got)
	}
}

// TestSourcesHeldUnknownAfterRestart: after a restart (empty memory), a member that is not available and whose
// name does not resolve is an unknown source that never answered: it may stand for any registered address (its
// own among them), so nothing is deregistered, however many counted answers the other members give.
func TestSourcesHeldUnknownAfterRestart(t *testing.T) {
	r := &sourcesRun{t: t, current: []nlb.TargetHealth{th(ipA, 5432, "", "healthy"), th(ipB, 5432, "", "healthy")}}
	for i := range 4 {
		p := r.pass(known("r1", at(5*i), ipA), Source{Name: "r2", Hold: true})
		if len(p.Deregister) > 0 || !slices.Equal(p.Held, addrs(ipB)) {
			t.Fatalf("pass %d: %+v; want B held for r2, which has not answered since start", i, p)
		}
	}
	// r2 answers (still rebooting, held): its address is known to be its own and stays; nothing else is stale.
	p := r.pass(known("r1", at(20), ipA), Source{Name: "r2", Known: true, Hold: true, Answer: answer(at(20), ipB)})
	if len(p.Deregister) > 0 || !slices.Equal(r.registered(), addrs(ipA, ipB)) {
		t.Fatalf("r2 answered while held: %+v, registered %v; want A B", p, r.registered())
	}
}

// TestSourcesDepartedCountedTTLApart: an address whose source left (a member dropped by one membership read) is
// absent from the other members' answers, which count at different times as their TTLs run out. Its absences are
// counted a TTL apart all the same, as with one name: not twice within a second because r1's and r2's answers
// happen to count one after the other.
func TestSourcesDepartedCountedTTLApart(t *testing.T) {
	r := &sourcesRun{t: t}
	src := func(name string, sec int, ttl time.Duration, a netip.Addr) Source {
		s := known(name, at(sec), a)
		s.Answer.TTL = ttl
		return s
	}
	r.pass(src("r1", 0, 5*time.Second, ipA), src("r2", 0, 2*time.Second, ipB), src("r3", 0, 5*time.Second, ipC))
	// t=4: the membership no longer lists r3. r2's answer counts (its 2 s ran out), r1's does not yet.
	r.pass(src("r1", 4, 5*time.Second, ipA), src("r2", 4, 5*time.Second, ipB))
	if n := r.mem.Absent[ipC]; n != 1 {
		t.Fatalf("t=4: C absent %d times, want 1", n)
	}
	// t=5: r1's answer counts, 1 s after r2's: not a TTL after the absence r2's answer counted.
	r.pass(src("r1", 5, 5*time.Second, ipA), src("r2", 5, 5*time.Second, ipB))
	if slices.Contains(r.dereg, ipC) {
		t.Fatalf("C deregistered at t=5, 1 s after its first absence (TTL 5 s, deregister_after 2)")
	}
	// t=9: r2's answer of t=4 ran out: a TTL after the first absence, the second one counts.
	r.pass(src("r1", 9, 5*time.Second, ipA), src("r2", 9, 5*time.Second, ipB))
	if !slices.Equal(r.registered(), addrs(ipA, ipB)) {
		t.Fatalf("t=9: registered %v, want A B: C absent from two answers a TTL apart", r.registered())
	}
}

// TestSourcesAllUnknownChangesNothing: zero known sources, or only held ones, is an unknown desired state (I1).
func TestSourcesAllUnknownChangesNothing(t *testing.T) {
	cur := []nlb.TargetHealth{th(ipA, 5432, "", "healthy")}
	for _, srcs := range [][]Source{
		nil,
		{unknownSource("a"), unknownSource("b")},
		{{Name: "a", Known: true, Hold: true, Answer: answer(t0, ipB)}},
	} {
		mem := ObserveSources(absent(5, ipA), srcs, cur)
		if p := MakeSources(srcs, cur, mem, defaultPolicy); !p.Empty() || p.InSync {
			t.Errorf("sources %+v: plan %+v, want no change and not in sync", srcs, p)
		}
	}
}

// TestSourcesHeldMember: a member that is not available keeps its address but is not added; once it leaves
// the source list (the instance left the cluster), its address goes after deregister_after resolutions.
func TestSourcesHeldMember(t *testing.T) {
	r := &sourcesRun{t: t}
	r.pass(known("r1", at(0), ipA), known("r2", at(0), ipB))
	held := func(s int, a ...netip.Addr) Source {
		return Source{Name: "r2", Known: true, Hold: true, Answer: answer(at(s), a...)}
	}
	for i := 1; i <= 4; i++ {
		r.pass(known("r1", at(5*i), ipA), held(5*i, ipB), Source{Name: "r3", Known: true, Hold: true, Answer: answer(at(5*i), ipC)})
	}
	if got := r.registered(); !slices.Equal(got, addrs(ipA, ipB)) {
		t.Fatalf("registered %v, want A B: the rebooting r2 kept, the creating r3 not added", got)
	}
	r.pass(known("r1", at(25), ipA))
	if got := r.registered(); !slices.Equal(got, addrs(ipA, ipB)) {
		t.Fatalf("r2 gone from the list: deregistered at once, registered %v", got)
	}
	r.pass(known("r1", at(30), ipA))
	if got := r.registered(); !slices.Equal(got, addrs(ipA)) {
		t.Fatalf("r2 gone from the list for 2 resolutions: registered %v, want A", got)
	}
}

// TestSourcesCountPerSource: a stale address is counted by the resolutions of the source it was last
// attributed to: another source whose answer changes every second does not make it go faster.
func TestSourcesCountPerSource(t *testing.T) {
	r := &sourcesRun{t: t}
	r.pass(known("a", at(0), ipA), known("b", at(0), ipB))
	// a moves to C; b flaps between B and D every second (each of its answers counts).
	for s := 1; s <= 4; s++ {
		flap := ipB
		if s%2 == 1 {
			flap = ipD
		}
		r.pass(known("a", at(s), ipC), known("b", at(s), flap))
	}
	if !slices.Contains(r.registered(), ipA) {
		t.Fatalf("A deregistered within 4 s: counted by b's answers, not a's (a's answer counted at 1 s stands 5 s)")
	}
	r.pass(known("a", at(6), ipC), known("b", at(6), ipB))
	if slices.Contains(r.registered(), ipA) {
		t.Fatalf("A still registered after two counted answers of a without it")
	}
}

// TestSourcesSilentSourceHoldsCounts: after a restart, B is registered and no source claims it; r2 has not answered
// since. B may be r2's, so r1's answers do not count it absent meanwhile: r2's first answer without B is then one
// absence, not the last of deregister_after (I1, I6).
func TestSourcesSilentSourceHoldsCounts(t *testing.T) {
	r := &sourcesRun{t: t}
	r.current = []nlb.TargetHealth{th(ipA, 5432, "", "healthy"), th(ipB, 5432, "", "healthy")}
	for i := range 4 {
		r.pass(known("r1", at(5*i), ipA), unknownSource("r2"))
	}
	if n := r.mem.Absent[ipB]; n != 0 {
		t.Fatalf("B counted absent %d times while r2, which may stand for it, has not answered", n)
	}
	r.pass(known("r1", at(20), ipA), known("r2", at(20), ipD))
	if slices.Contains(r.dereg, ipB) {
		t.Fatalf("B deregistered on r2's first answer without it (absent %v)", r.mem.Absent)
	}
	for s := 25; s <= 40 && !slices.Contains(r.dereg, ipB); s += 5 {
		r.pass(known("r1", at(s), ipA), known("r2", at(s), ipD))
	}
	if !slices.Contains(r.dereg, ipB) {
		t.Fatalf("B never deregistered once both sources answered without it (absent %v)", r.mem.Absent)
	}
}
