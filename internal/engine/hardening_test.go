package engine_test

// Tests of issue 9 (hardening): each shows an edge that a slow, odd or hostile world found, and what ipsync does.

import (
	"net/url"
	"slices"
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
