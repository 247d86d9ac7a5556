package engine_test

// Tests of issue 9 (hardening): each shows an edge that a slow, odd or hostile world found, and what ipsync does.

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
)

// TestDuplicateHealthRows (issue 9 item 13): DescribeTargetHealth lists every target twice. The engine plans on
// one row per target: A is deregistered once, in one call naming it once, and the report lists each target once.
func TestDuplicateHealthRows(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action == "DescribeTargetHealth" {
			f := elbv2fake.DuplicateRows()
			return &f
		}
		return nil
	})
	e.dns.SetA(endpoint, 5, ipA.String())
	s := e.mapping()
	s.DeregisterAfter = 1
	eng := e.engine(engine.Options{}, s)
	mustOK(t, e.pass(eng))
	e.dns.SetA(endpoint, 5, ipB.String())
	r := mustOK(t, e.pass(eng))
	if want := []nlb.Target{{IP: ipA, Port: port}}; !slices.Equal(r.Deregistered, want) {
		t.Fatalf("deregistered %v, want A once", r.Deregistered)
	}
	if d := e.rec.Calls("Deregister"); len(d) != 1 || d[0] != "Deregister [10.0.1.10:5432]" {
		t.Fatalf("deregistrations %v: want one call naming A once", d)
	}
	mustOK(t, e.pass(eng))
	r = mustOK(t, e.pass(eng))
	var seen []nlb.Target
	for _, h := range r.Targets {
		if slices.Contains(seen, h.Target) {
			t.Fatalf("the report lists %v twice: %v", h.Target, r.Targets)
		}
		seen = append(seen, h.Target)
	}
	if !r.InSync || r.Result != engine.ResultUnchanged {
		t.Fatalf("after the failover: %+v", r)
	}
}

// TestOnlyDatabaseAddresses is I10 (issue 9 item 9): an answer with any address that cannot be a database's is a
// hard error for the mapping and changes nothing (I1), even when the answer also carries the real new address:
// AWS would refuse the whole batch, and a poisoned answer must not move database traffic. A is registered and
// stale after one resolution (deregister_after 1), so any pass that went ahead would deregister it.
func TestOnlyDatabaseAddresses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  []string
		allowed []string // allowed_cidrs
		az      string
		want    string
	}{
		{name: "new address with loopback", answer: []string{"10.0.2.20", "127.0.0.1"}, want: "127.0.0.1 is a loopback address"},
		{name: "unspecified", answer: []string{"0.0.0.0"}, want: "0.0.0.0 is an unspecified address"},
		{name: "instance metadata (link-local)", answer: []string{"169.254.169.254"}, want: "169.254.169.254 is a link-local address"},
		{name: "multicast", answer: []string{"224.0.0.251"}, want: "224.0.0.251 is a multicast address"},
		{name: "broadcast", answer: []string{"255.255.255.255"}, want: "255.255.255.255 is a broadcast address"},
		{name: "loopback even when allowed_cidrs allows everything", answer: []string{"127.0.0.2"}, allowed: []string{"0.0.0.0/0"}, want: "loopback"},
		{name: "public address", answer: []string{"10.0.2.20", "8.8.8.8"}, want: "8.8.8.8, outside allowed_cidrs (default: RFC 1918, RFC 6598, IPv6 ULA and the target group's VPC"},
		{name: "public address with availability_zone all", answer: []string{"8.8.8.8"}, az: "all", want: "8.8.8.8, outside allowed_cidrs"},
		{name: "private address outside the configured allowed_cidrs", answer: []string{"10.0.2.20", "172.31.0.10"}, allowed: []string{"10.0.0.0/16"}, want: "172.31.0.10, outside allowed_cidrs [10.0.0.0/16]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFakeEnv(t, elbv2fake.Options{})
			start, fixed := ipA, ipB
			if tc.az == "all" { // AWS takes only addresses outside the VPC with AvailabilityZone all
				start, fixed = ipX, netip.MustParseAddr("172.31.0.11")
			}
			e.dns.SetA(endpoint, 5, start.String())
			s := e.mapping()
			s.DeregisterAfter, s.AllowedCIDRs = 1, tc.allowed
			if tc.az != "" {
				s.AvailabilityZone = tc.az
			}
			eng := e.engine(engine.Options{}, s)
			mustOK(t, e.pass(eng))
			e.fake.ResetCalls()

			e.dns.SetA(endpoint, 5, tc.answer...)
			for range 2 {
				r := e.pass(eng)
				if !engine.IsHard(r.Err()) || !strings.Contains(r.Error, tc.want) || !strings.Contains(r.Error, "no target changed") {
					t.Fatalf("pass: %q, want a hard error saying %q and that no target changed", r.Error, tc.want)
				}
			}
			if muts := e.fake.MutatingCalls(); len(muts) != 0 {
				t.Fatalf("I10: mutating calls for the answer %v: %v", tc.answer, muts)
			}
			e.wantLive(start)
			e.dns.SetA(endpoint, 5, fixed.String()) // the answer is fixed: the mapping goes on
			mustOK(t, e.pass(eng))
			e.wantLive(fixed)
		})
	}
}

// TestPoisonedAnswerBeforeDeregistering: the resolution made right before deregistering (the freshest answer,
// see TestStaleAnswerDuringSlowPass) carries a loopback address. That answer is refused as the pass's own would
// be (I10), and nothing is deregistered.
func TestPoisonedAnswerBeforeDeregistering(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	s := e.mapping()
	s.DeregisterAfter = 1
	eng := e.engine(engine.Options{}, s)
	mustOK(t, e.pass(eng))
	e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action == "RegisterTargets" {
			e.dns.SetA(endpoint, 5, ipB.String(), "127.0.0.1") // while B's registration is in flight
		}
		return nil
	})
	e.dns.SetA(endpoint, 5, ipB.String())
	r := e.pass(eng)
	if !engine.IsHard(r.Err()) || !strings.Contains(r.Error, "127.0.0.1 is a loopback address") || !strings.Contains(r.Error, "nothing deregistered") {
		t.Fatalf("pass: %+v, want a hard error for the poisoned answer and nothing deregistered", r)
	}
	if d := e.rec.Calls("Deregister"); len(d) != 0 {
		t.Fatalf("deregistered on a poisoned answer: %v", d)
	}
	e.wantLive(ipA, ipB)
}

// TestRegisteredButNeverSeen is I3 (issue 9 item 10): AWS answers RegisterTargets with success but never carries it
// out. A stale target is deregistered only once the new one is seen in DescribeTargetHealth, so A stays, the pass
// fails saying why (logged once, soft: the next pass registers again), and nothing is deregistered. Once AWS
// carries registrations out again, the group converges by itself.
func TestRegisteredButNeverSeen(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	s := e.mapping()
	s.DeregisterAfter = 1
	eng := e.engine(engine.Options{}, s)
	mustOK(t, e.pass(eng))
	e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action == "RegisterTargets" {
			f := elbv2fake.AcceptedNotApplied()
			return &f
		}
		return nil
	})
	e.dns.SetA(endpoint, 5, ipB.String())
	for range 2 {
		r := e.pass(eng)
		if r.Err() == nil || engine.IsHard(r.Err()) || !strings.Contains(r.Error, "not in DescribeTargetHealth") || !strings.Contains(r.Error, "nothing deregistered") {
			t.Fatalf("pass: %+v, want a soft error saying B never appeared and nothing was deregistered", r)
		}
	}
	if d := e.rec.Calls("Deregister"); len(d) != 0 {
		t.Fatalf("I3: deregistered although B never appeared: %v", d)
	}
	e.wantLive(ipA)
	if n := e.logs.FilterMessage("sync pass failed").FilterFieldKey("error").Len(); n != 2 {
		t.Fatalf("%d failure lines, want one per pass", n)
	}

	e.fake.SetFault(nil)
	mustOK(t, e.pass(eng))
	e.wantLive(ipB)
}
