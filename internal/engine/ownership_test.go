package engine_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/ownership"
)

// ownedMapping is the default mapping with prune: false, which keeps its ownership on the group's tags.
func (e *env) ownedMapping() config.Sync {
	s := e.mapping()
	s.Prune = false
	return s
}

// record returns the ownership record on the group, as another process would read it.
func (e *env) record() []netip.AddrPort {
	e.t.Helper()
	tags, err := e.direct.Tags(context.Background(), e.group.ARN)
	if err != nil {
		e.t.Fatal(err)
	}
	owned, err := ownership.Decode(tags)
	if err != nil {
		e.t.Fatalf("the record ipsync wrote does not parse: %v (tags %v)", err, tags)
	}
	return owned
}

func (e *env) wantRecord(ips ...netip.Addr) {
	e.t.Helper()
	var want []netip.AddrPort
	for _, ip := range ips {
		want = append(want, netip.AddrPortFrom(ip, port))
	}
	if got := e.record(); !slices.Equal(got, want) {
		e.t.Fatalf("ownership record %v, want %v", got, want)
	}
}

// TestOwnershipSurvivesRestart is I7 across a restart: the target ipsync registered before it is removed after a
// failover seen only by the new process; the foreign one stays.
func TestOwnershipSurvivesRestart(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		foreign := netip.MustParseAddr("10.0.9.9")
		if err := e.direct.Register(context.Background(), e.group.ARN, []nlb.Target{{IP: foreign, Port: port}}); err != nil {
			t.Fatal(err)
		}
		e.dns.SetA(endpoint, 5, ipA.String())
		mustOK(t, e.pass(e.engine(engine.Options{}, e.ownedMapping())))
		e.wantRecord(ipA) // recorded after the registration

		// A restart: a new engine, no memory but the group's tags. DNS moved while it was down.
		e.dns.SetA(endpoint, 5, ipB.String())
		restarted := e.engine(engine.Options{}, e.ownedMapping())
		for range 3 {
			mustOK(t, e.pass(restarted))
		}
		e.wantLive(ipB, foreign)
		e.wantRecord(ipB) // A un-recorded after its deregistration
		if !slices.ContainsFunc(e.rec.Calls("Deregister"), func(c string) bool { return strings.Contains(c, ipA.String()) }) {
			t.Fatalf("the target registered before the restart was not deregistered: %v", e.rec.Calls(""))
		}
	})
}

// TestOwnershipBadRecord: a record edited by hand owns nothing (the target it names stays) and is logged; the
// next registration writes a good record in its place.
func TestOwnershipBadRecord(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if err := e.direct.Register(ctx, e.group.ARN, []nlb.Target{{IP: ipA, Port: port}}); err != nil {
			t.Fatal(err)
		}
		if err := e.direct.AddTags(ctx, e.group.ARN, map[string]string{ownership.Key: "5432=10.0.1.10,10.0.9.9", "team": "db"}); err != nil {
			t.Fatal(err)
		}
		e.dns.SetA(endpoint, 5, ipB.String())
		eng := e.engine(engine.Options{}, e.ownedMapping())
		for range 3 {
			mustOK(t, e.pass(eng))
		}
		e.wantLive(ipA, ipB)
		if n := e.logs.FilterMessageSnippet("ownership record unreadable").FilterFieldKey("error").Len(); n != 1 {
			t.Fatalf("%d log lines about the unreadable record, want 1: %v", n, e.logs.All())
		}
		e.wantRecord(ipB)
		tags, err := e.direct.Tags(ctx, e.group.ARN)
		if err != nil || tags["team"] != "db" {
			t.Fatalf("other tags must stay: %v, %v", tags, err)
		}
	})
}

// TestOwnershipTagWrites: prune: false writes the record only when ownership changed (no call in steady state, I9),
// never in a dry run (I8); a failed write is retried after the next pass and leaves the target unpruned by a
// restarted process; prune: true never reads or writes tags.
func TestOwnershipTagWrites(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())

	dry := e.engine(engine.Options{DryRun: true}, e.ownedMapping())
	for range 2 {
		mustOK(t, e.pass(dry))
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: dry run made mutating calls: %v", muts)
	}

	e.fake.FailNext("AddTags", 1, elbv2fake.AccessDenied("AddTags"))
	eng := e.engine(engine.Options{}, e.ownedMapping())
	mustOK(t, e.pass(eng))
	if e.logs.FilterMessageSnippet("recording ownership failed").Len() != 1 {
		t.Fatalf("a failed AddTags must be logged: %v", e.logs.All())
	}
	if len(e.record()) != 0 {
		t.Fatal("the failed AddTags recorded something")
	}
	// A restart now would find A unowned; A is not in DNS any more: the restarted process leaves it.
	e.dns.SetA(endpoint, 5, ipB.String())
	restarted := e.engine(engine.Options{}, e.ownedMapping())
	for range 3 {
		mustOK(t, e.pass(restarted))
	}
	e.wantLive(ipA, ipB)
	e.wantRecord(ipB)

	// The first engine retries its write after its next pass; then nothing more is written while nothing changes.
	e.dns.SetA(endpoint, 5, ipA.String())
	e.fake.ResetCalls()
	mustOK(t, e.pass(eng))
	if n := len(calls(e.fake, "AddTags")); n != 1 {
		t.Fatalf("%d AddTags after the failed one, want 1 retry: %v", n, e.fake.Calls())
	}
	e.fake.ResetCalls()
	for range 3 {
		mustOK(t, e.pass(eng))
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("steady state wrote: %v", muts)
	}

	e.fake.ResetCalls()
	pruning := e.engine(engine.Options{}, e.mapping())
	mustOK(t, e.pass(pruning))
	for _, action := range []string{"DescribeTags", "AddTags", "RemoveTags"} {
		if c := calls(e.fake, action); len(c) != 0 {
			t.Errorf("prune: true called %s: %v", action, c)
		}
	}
}

func calls(f *elbv2fake.Server, action string) []elbv2fake.Call {
	var out []elbv2fake.Call
	for _, c := range f.Calls() {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}
