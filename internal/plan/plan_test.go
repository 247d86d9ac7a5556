package plan

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/nlb"
)

var (
	ipA = netip.MustParseAddr("10.0.1.10")
	ipB = netip.MustParseAddr("10.0.2.20")
	ipC = netip.MustParseAddr("10.0.3.30")
	ipX = netip.MustParseAddr("192.0.2.7") // outside the VPC
)

func th(ip netip.Addr, port int32, az, state string) nlb.TargetHealth {
	return nlb.TargetHealth{Target: nlb.Target{IP: ip, Port: port, AvailabilityZone: az}, State: state}
}

func tg(ip netip.Addr, port int32, az string) nlb.Target {
	return nlb.Target{IP: ip, Port: port, AvailabilityZone: az}
}

func addrs(a ...netip.Addr) []netip.Addr { return a }

// t0 is when the first answer of a test arrives; answers stand for ttl.
var t0 = time.Unix(1_700_000_000, 0)

const ttl = 5 * time.Second

func answer(at time.Time, a ...netip.Addr) Answer { return Answer{Addrs: a, At: at, TTL: ttl} }

func absent(n int, ips ...netip.Addr) Memory {
	m := Memory{Absent: map[netip.Addr]int{}, Owned: map[nlb.Target]bool{}}
	for _, ip := range ips {
		m.Absent[ip] = n
	}
	return m
}

// owned marks ips as registered by ipsync on port 5432.
func owned(m Memory, ips ...netip.Addr) Memory {
	for _, ip := range ips {
		m.Owned[nlb.Target{IP: ip, Port: 5432}] = true
	}
	return m
}

var defaultPolicy = Policy{Port: 5432, DeregisterAfter: 2, Prune: true, AZ: AZAuto}

func TestMake(t *testing.T) {
	noPrune := defaultPolicy
	noPrune.Prune = false
	azAll := defaultPolicy
	azAll.AZ = AZAll
	azVPC := defaultPolicy
	azVPC.AZ = AZVPC

	tests := []struct {
		name    string
		desired []netip.Addr
		current []nlb.TargetHealth
		mem     Memory
		pol     Policy
		want    Plan
	}{
		{
			name:    "empty target group gets the address",
			desired: addrs(ipA),
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipA, 5432, "")}},
		},
		{
			name:    "steady state changes nothing (I9)",
			desired: addrs(ipA),
			current: []nlb.TargetHealth{th(ipA, 5432, "us-east-1a", "healthy")},
			pol:     defaultPolicy,
			want:    Plan{InSync: true},
		},
		{
			name:    "unhealthy, initial, unused and unavailable targets count as registered",
			desired: addrs(ipA, ipB, ipC, ipX),
			current: []nlb.TargetHealth{
				th(ipA, 5432, "", "unhealthy"), th(ipB, 5432, "", "initial"),
				th(ipC, 5432, "", "unused"), th(ipX, 5432, "all", "unavailable"),
			},
			pol:  defaultPolicy,
			want: Plan{InSync: true},
		},
		{
			name:    "I1: an empty answer is unknown, not 'deregister everything'",
			desired: nil,
			current: []nlb.TargetHealth{th(ipA, 5432, "", "healthy")},
			mem:     absent(5, ipA),
			pol:     defaultPolicy,
			want:    Plan{},
		},
		{
			name:    "I6: failover registers the new address at once and waits before removing the old",
			desired: addrs(ipB),
			current: []nlb.TargetHealth{th(ipA, 5432, "us-east-1a", "healthy")},
			mem:     absent(1, ipA),
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipB, 5432, "")}, Waiting: addrs(ipA)},
		},
		{
			name:    "I6+I4: stale after enough absences, deregistered with the reported port and zone",
			desired: addrs(ipB),
			current: []nlb.TargetHealth{th(ipA, 5432, "us-east-1a", "healthy"), th(ipB, 5432, "us-east-1b", "initial")},
			mem:     absent(2, ipA),
			pol:     defaultPolicy,
			want:    Plan{Deregister: []nlb.Target{tg(ipA, 5432, "us-east-1a")}},
		},
		{
			name:    "I4: a stale target on another port is deregistered on that port",
			desired: addrs(ipB),
			current: []nlb.TargetHealth{th(ipB, 5432, "", "healthy"), th(ipA, 3306, "all", "healthy")},
			mem:     absent(3, ipA),
			pol:     defaultPolicy,
			want:    Plan{Deregister: []nlb.Target{tg(ipA, 3306, "all")}},
		},
		{
			name:    "I2: a desired address on another port is never deregistered",
			desired: addrs(ipA),
			current: []nlb.TargetHealth{th(ipA, 3306, "", "healthy")},
			mem:     absent(9, ipA),
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipA, 5432, "")}},
		},
		{
			name:    "I5: a draining desired address is registered again",
			desired: addrs(ipA),
			current: []nlb.TargetHealth{th(ipA, 5432, "us-east-1a", "draining")},
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipA, 5432, "")}},
		},
		{
			name:    "I5: unhealthy.draining does not count either",
			desired: addrs(ipA),
			current: []nlb.TargetHealth{th(ipA, 5432, "", "unhealthy.draining")},
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipA, 5432, "")}},
		},
		{
			name:    "I5: a draining stale target is not deregistered again",
			desired: addrs(ipB),
			current: []nlb.TargetHealth{th(ipB, 5432, "", "healthy"), th(ipA, 5432, "", "draining")},
			mem:     absent(4, ipA),
			pol:     defaultPolicy,
			want:    Plan{InSync: true},
		},
		{
			name:    "I7: with prune off a target ipsync did not register is kept",
			desired: addrs(ipB),
			current: []nlb.TargetHealth{th(ipB, 5432, "", "healthy"), th(ipC, 5432, "", "healthy")},
			mem:     absent(5, ipC),
			pol:     noPrune,
			want:    Plan{Kept: addrs(ipC), InSync: true},
		},
		{
			name:    "I7: with prune off a target ipsync registered is deregistered",
			desired: addrs(ipB),
			current: []nlb.TargetHealth{th(ipB, 5432, "", "healthy"), th(ipA, 5432, "", "healthy")},
			mem:     owned(absent(2, ipA), ipA),
			pol:     noPrune,
			want:    Plan{Deregister: []nlb.Target{tg(ipA, 5432, "")}},
		},
		{
			name:    "I7: ownership is per target: the same IP on another port is not ipsync's",
			desired: addrs(ipB),
			current: []nlb.TargetHealth{th(ipB, 5432, "", "healthy"), th(ipA, 5432, "", "healthy"), th(ipA, 9999, "", "healthy")},
			mem:     owned(absent(2, ipA), ipA),
			pol:     noPrune,
			want:    Plan{Deregister: []nlb.Target{tg(ipA, 5432, "")}, Kept: addrs(ipA)},
		},
		{
			name:    "AZ auto: nothing learned, no zone: AWS's answer decides at registration",
			desired: addrs(ipA, ipX),
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipA, 5432, ""), tg(ipX, 5432, "")}},
		},
		{
			name:    "AZ auto: all for an address AWS accepted only with all",
			desired: addrs(ipA, ipX),
			mem:     LearnZone(Memory{}, ipX, true),
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipA, 5432, ""), tg(ipX, 5432, "all")}},
		},
		{
			name:    "AZ auto: all for an address the group lists with zone all (draining, on another port)",
			desired: addrs(ipA, ipX),
			current: []nlb.TargetHealth{th(ipX, 3306, "all", "draining")},
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipA, 5432, ""), tg(ipX, 5432, "all")}},
		},
		{
			name:    "AZ auto: learned without a zone again (a new VPC CIDR) forgets all",
			desired: addrs(ipX),
			mem:     LearnZone(LearnZone(Memory{}, ipX, true), ipX, false),
			pol:     defaultPolicy,
			want:    Plan{Register: []nlb.Target{tg(ipX, 5432, "")}},
		},
		{
			name:    "AZ all: always all",
			desired: addrs(ipA),
			pol:     azAll,
			want:    Plan{Register: []nlb.Target{tg(ipA, 5432, "all")}},
		},
		{
			name:    "AZ vpc: never set, even when learned",
			desired: addrs(ipX),
			mem:     LearnZone(Memory{}, ipX, true),
			pol:     azVPC,
			want:    Plan{Register: []nlb.Target{tg(ipX, 5432, "")}},
		},
		{
			name:    "several addresses (reader-style answer) and a mix of everything",
			desired: addrs(ipC, ipA),
			current: []nlb.TargetHealth{
				th(ipA, 5432, "", "healthy"), th(ipB, 5432, "", "healthy"), th(ipX, 5432, "all", "healthy"),
			},
			mem:  absent(2, ipB),
			pol:  defaultPolicy,
			want: Plan{Register: []nlb.Target{tg(ipC, 5432, "")}, Deregister: []nlb.Target{tg(ipB, 5432, "")}, Waiting: addrs(ipX)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Make(tt.desired, tt.current, tt.mem, tt.pol)
			if !reflect.DeepEqual(normalize(got), normalize(tt.want)) {
				t.Errorf("Make() =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

// normalize makes nil and empty slices compare equal.
func normalize(p Plan) Plan {
	if len(p.Register) == 0 {
		p.Register = nil
	}
	if len(p.Deregister) == 0 {
		p.Deregister = nil
	}
	if len(p.Waiting) == 0 {
		p.Waiting = nil
	}
	if len(p.Kept) == 0 {
		p.Kept = nil
	}
	return p
}

// TestFailoverSequence walks one Multi-AZ failover through successive passes: I6 with deregister_after 2 means
// the old address goes on the second resolution without it, and not before.
func TestFailoverSequence(t *testing.T) {
	pol := defaultPolicy
	var mem Memory
	current := []nlb.TargetHealth{th(ipA, 5432, "us-east-1a", "healthy")}

	at := t0
	pass := func(desired ...netip.Addr) Plan {
		at = at.Add(ttl) // one resolution per TTL, as the daemon makes them
		mem = Observe(mem, answer(at, desired...), current)
		p := Make(desired, current, mem, pol)
		// Apply the plan the way AWS would: new targets start initial, deregistered ones drain.
		for _, r := range p.Register {
			current = append(current, nlb.TargetHealth{Target: r, State: "initial"})
		}
		mem = Registered(mem, p.Register)
		for i := range current {
			for _, d := range p.Deregister {
				if current[i].Target == d {
					current[i].State = "draining"
				}
			}
		}
		mem = Deregistered(mem, p.Deregister)
		return p
	}

	if p := pass(ipA); !p.Empty() || !p.InSync {
		t.Fatalf("steady state: %+v", p)
	}
	p := pass(ipB)
	if len(p.Register) != 1 || p.Register[0].IP != ipB || len(p.Deregister) != 0 {
		t.Fatalf("first pass after failover must register B only: %+v", p)
	}
	if p := pass(ipB); len(p.Deregister) != 1 || p.Deregister[0] != tg(ipA, 5432, "us-east-1a") {
		t.Fatalf("second pass must deregister A with its zone: %+v", p)
	}
	if p := pass(ipB); !p.Empty() || !p.InSync {
		t.Fatalf("after failover: %+v", p)
	}
	// Fail back: A is draining, so it must be registered again at once (I5).
	if p := pass(ipA); len(p.Register) != 1 || p.Register[0].IP != ipA {
		t.Fatalf("fail back must re-register draining A: %+v", p)
	}
}

// TestFlappingAnswerNeverDeregisters: a stale cache answering old, new, old, new resets the absence count each
// time, so with deregister_after 2 neither address is ever removed while the answers flap.
func TestFlappingAnswerNeverDeregisters(t *testing.T) {
	current := []nlb.TargetHealth{th(ipA, 5432, "", "healthy"), th(ipB, 5432, "", "healthy")}
	var mem Memory
	for i := range 10 {
		desired := addrs(ipA)
		if i%2 == 1 {
			desired = addrs(ipB)
		}
		mem = Observe(mem, answer(t0.Add(time.Duration(i)*ttl), desired...), current)
		if p := Make(desired, current, mem, defaultPolicy); len(p.Deregister) != 0 {
			t.Fatalf("pass %d deregistered %v while answers flap", i, p.Deregister)
		}
	}
}

func TestObserve(t *testing.T) {
	current := []nlb.TargetHealth{th(ipA, 5432, "", "healthy"), th(ipB, 5432, "", "draining")}
	mem := owned(absent(1, ipA, ipC), ipA, ipC)

	next := Observe(mem, answer(t0, ipB), current)
	if next.Absent[ipA] != 2 {
		t.Errorf("A absent again: count %d, want 2", next.Absent[ipA])
	}
	if _, ok := next.Absent[ipB]; ok {
		t.Errorf("B is desired: must have no absence count")
	}
	if _, ok := next.Absent[ipC]; ok {
		t.Errorf("C is no longer registered: must be forgotten")
	}
	if !next.Owned[nlb.Target{IP: ipA, Port: 5432}] || next.Owned[nlb.Target{IP: ipC, Port: 5432}] {
		t.Errorf("ownership: got %v, want A kept and C (gone from the group) dropped", next.Owned)
	}
	if mem.Absent[ipA] != 1 {
		t.Errorf("Observe modified its input")
	}
	if next = Observe(next, answer(t0.Add(time.Second), ipA), current); len(next.Absent) != 0 {
		t.Errorf("A present again, however soon: absence must reset, got %v", next.Absent)
	}
}

// TestObserveCounting: an answer counts for I6 only when it differs from the last counted one or comes at least
// that answer's TTL later. Each case starts from A registered and absent once, after a counted answer [B] at t0
// with a TTL of 5 s, and observes the answers in turn.
func TestObserveCounting(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	current := []nlb.TargetHealth{th(ipA, 5432, "", "healthy"), th(ipB, 5432, "", "healthy")}
	for _, tc := range []struct {
		name    string
		answers []Answer
		want    int // A's absence count after them
	}{
		{"the same answer sooner than the TTL does not count", []Answer{answer(at(1), ipB), answer(at(4), ipB)}, 1},
		{"the same answer a TTL later counts", []Answer{answer(at(5), ipB)}, 2},
		{"the gap runs from the last counted answer, not the last seen", []Answer{answer(at(3), ipB), answer(at(5), ipB)}, 2},
		{"a different answer counts however soon", []Answer{answer(at(1), ipB, ipC)}, 2},
		{"the same answer from another server counts however soon", []Answer{from("ns2:53", answer(at(1), ipB))}, 2},
		{"the same server again sooner than the TTL does not count", []Answer{from("ns2:53", answer(at(1), ipB)), from("ns2:53", answer(at(2), ipB))}, 2},
		{"an answer that differs again counts again", []Answer{answer(at(1), ipB, ipC), answer(at(2), ipB)}, 3},
		{"A back resets its count at once", []Answer{answer(at(5), ipB), answer(at(6), ipA, ipB), answer(at(7), ipB)}, 1},
		{"the counted answer's TTL sets the gap, not the new one's", []Answer{{Addrs: addrs(ipB), At: at(4), TTL: time.Second}}, 1},
		{"a Lambda watch resolving every second counts once per TTL", []Answer{
			answer(at(1), ipB), answer(at(2), ipB), answer(at(3), ipB), answer(at(4), ipB), answer(at(5), ipB),
			answer(at(6), ipB), answer(at(7), ipB), answer(at(8), ipB), answer(at(9), ipB), answer(at(10), ipB),
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := Observe(Memory{}, answer(t0, ipB), current) // the first answer counts: A absent once
			for _, a := range tc.answers {
				mem = Observe(mem, a, current)
			}
			if got := mem.Absent[ipA]; got != tc.want {
				t.Errorf("A absent %d times, want %d", got, tc.want)
			}
		})
	}
}

func from(server string, a Answer) Answer { a.Server = server; return a }

// TestLaggingServerNeverRemovesTheNewAddress walks a failover in authoritative mode with three name servers, of
// which two publish the change 3 s late, asked in turn once a second. Their old answers, twice in a row, must not
// deregister the new address B (it is absent from them, but they never returned it); the old address A stays
// while a server still returns it, and goes once the servers agree.
func TestLaggingServerNeverRemovesTheNewAddress(t *testing.T) {
	current := []nlb.TargetHealth{th(ipA, 5432, "", "healthy")}
	servers := []string{"ns1:53", "ns2:53", "ns3:53"}
	var mem Memory
	at := t0
	pass := func(i int, desired ...netip.Addr) Plan {
		at = at.Add(time.Second)
		mem = Observe(mem, Answer{Addrs: desired, At: at, TTL: time.Second, Server: servers[i%3]}, current)
		p := Make(desired, current, mem, defaultPolicy)
		for _, r := range p.Register {
			current = append(current, nlb.TargetHealth{Target: r, State: "initial"})
		}
		for i := range current {
			if slices.Contains(p.Deregister, current[i].Target) {
				current[i].State = "draining"
			}
		}
		mem = Deregistered(Registered(mem, p.Register), p.Deregister)
		return p
	}
	for i := range 3 { // before the failover every server returns A
		if p := pass(i, ipA); !p.Empty() {
			t.Fatalf("steady state: %+v", p)
		}
	}
	if p := pass(0, ipB); len(p.Register) != 1 || p.Register[0].IP != ipB {
		t.Fatalf("ns1 publishes B first: B must be registered at once, got %+v", p)
	}
	for i := 1; i <= 5; i++ { // ns2, ns3 lag: A, A; then ns1 B; ns2, ns3 A again
		desired := addrs(ipA)
		if i%3 == 0 {
			desired = addrs(ipB)
		}
		if p := pass(i, desired...); len(p.Deregister) > 0 {
			t.Fatalf("pass %d (%s answers %v): deregistered %v while servers disagree", i, servers[i%3], desired, p.Deregister)
		}
	}
	var gone bool
	for i := 6; i < 9 && !gone; i++ { // the servers agree on B now
		p := pass(i, ipB)
		if slices.ContainsFunc(p.Deregister, func(d nlb.Target) bool { return d.IP == ipB }) {
			t.Fatalf("deregistered the new address: %+v", p)
		}
		gone = len(p.Deregister) == 1 && p.Deregister[0].IP == ipA
	}
	if !gone {
		t.Fatalf("A not deregistered after the servers agreed on B for three answers; memory %+v", mem.Absent)
	}
}

// TestLaggingServerCountsAfterServerLag: a server that still has not returned the new address ServerLag after
// it appeared is not lagging any more, but saying something else; its answers count again. So does an answer
// with an address newer than the new one.
func TestLaggingServerCountsAfterServerLag(t *testing.T) {
	current := []nlb.TargetHealth{th(ipA, 5432, "", "healthy"), th(ipB, 5432, "", "healthy")}
	mem := Observe(Memory{}, Answer{Addrs: addrs(ipA), At: t0.Add(-time.Second), TTL: time.Second, Server: "ns1:53"}, current)
	mem = Observe(mem, Answer{Addrs: addrs(ipB), At: t0, TTL: time.Second, Server: "ns1:53"}, current)
	mem = Observe(mem, Answer{Addrs: addrs(ipA), At: t0.Add(time.Second), TTL: time.Second, Server: "ns2:53"}, current)
	mem = Observe(mem, Answer{Addrs: addrs(ipA), At: t0.Add(2 * time.Second), TTL: time.Second, Server: "ns2:53"}, current)
	if n := mem.Absent[ipB]; n != 0 {
		t.Fatalf("B absent %d times from a server that never returned it, within ServerLag; want 0", n)
	}
	// An answer with an address newer than B is ahead of B, not behind: it counts, whichever server gives it.
	if ahead := Observe(mem, Answer{Addrs: addrs(ipC), At: t0.Add(3 * time.Second), TTL: time.Second, Server: "ns3:53"}, current); ahead.Absent[ipB] != 1 {
		t.Fatalf("B absent %d times after ns3, which never returned B, answered the newer C; want 1", ahead.Absent[ipB])
	}
	late := t0.Add(ServerLag)
	mem = Observe(mem, Answer{Addrs: addrs(ipA), At: late, TTL: time.Second, Server: "ns2:53"}, current)
	mem = Observe(mem, Answer{Addrs: addrs(ipA), At: late.Add(time.Second), TTL: time.Second, Server: "ns2:53"}, current)
	if n := mem.Absent[ipB]; n != 2 {
		t.Fatalf("B absent %d times from ns2's answers after ServerLag; want 2", n)
	}
	// A server that has returned B and now leaves it out counts at once: it has moved on.
	mem = Observe(Memory{}, Answer{Addrs: addrs(ipB), At: t0, TTL: time.Second, Server: "ns1:53"}, current)
	mem = Observe(mem, Answer{Addrs: addrs(ipA), At: t0.Add(time.Second), TTL: time.Second, Server: "ns1:53"}, current)
	if n := mem.Absent[ipB]; n != 1 {
		t.Fatalf("B absent %d times from a server that returned it before; want 1", n)
	}
}
