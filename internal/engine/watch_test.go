package engine_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

// twoMappings is the default mapping, resolving to A, plus "reports" on its own endpoint, resolving to B, and
// target group; ttl is the records' TTL.
func twoMappings(e *env, ttl uint32) (config.Sync, config.Sync) {
	reports := e.mapping()
	reports.Name, reports.Endpoint, reports.TargetGroupARN = "reports", "reports.c9abc.us-east-1.rds.test", awstest.NewTargetGroup(e.t, port).ARN
	e.dns.SetA(endpoint, ttl, ipA.String())
	e.dns.SetA(reports.Endpoint, ttl, ipB.String())
	return e.mapping(), reports
}

// syncedOnA is the fake with the default mapping resolving to A (TTL 1), and an engine (on the real clock, or on
// the test's) after its first pass, which registered A.
func syncedOnA(t *testing.T, realClock bool) (*env, *engine.Engine) {
	t.Helper()
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 1, ipA.String())
	var eng *engine.Engine
	if realClock {
		eng = engineWithRealClock(e, e.mapping())
	} else {
		eng = e.engine(engine.Options{})
	}
	mustOK(t, eng.RunOnce(context.Background())[0])
	return e, eng
}

func TestNamesAndRunOnceFor(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	orders, reports := twoMappings(e, 5)
	eng := e.engine(engine.Options{}, orders, reports)
	if got := eng.Names(); !slices.Equal(got, []string{"orders", "reports"}) {
		t.Fatalf("Names() = %q", got)
	}
	reps := eng.RunOnceFor(context.Background(), []string{"reports", "no-such-mapping"})
	if len(reps) != 1 || reps[0].Sync != "reports" || reps[0].Result != engine.ResultChanged {
		t.Fatalf("RunOnceFor(reports) = %+v: want one changed report for reports", reps)
	}
	if n := len(e.fake.Targets(orders.TargetGroupARN)); n != 0 {
		t.Fatalf("RunOnceFor(reports) touched orders' group: %d targets", n)
	}
	if reps := eng.RunOnceFor(context.Background(), nil); len(reps) != 0 {
		t.Fatalf("RunOnceFor(nil) = %+v, want nothing", reps)
	}
}

// TestWatchFollowsLateDNSChange is the Lambda's failover event in the engine: the event comes first, DNS
// changes a second later, and the watch keeps resolving until it has registered the new address and
// deregistered the old one (I3, I6), then ends without waiting for the window.
func TestWatchFollowsLateDNSChange(t *testing.T) {
	e, eng := syncedOnA(t, true)
	callsBefore := len(e.rec.Calls(""))

	const interval = 100 * time.Millisecond
	changeAfter := time.Second
	queriesBefore := e.dns.Queries()
	var queriesAtChange atomic.Int64
	timer := time.AfterFunc(changeAfter, func() {
		queriesAtChange.Store(e.dns.Queries())
		e.dns.SetA(endpoint, 1, ipB.String())
	})
	defer timer.Stop()
	start := time.Now()
	reps := eng.Watch(context.Background(), []string{"orders"}, 20*time.Second, interval)
	took := time.Since(start)

	if len(reps) != 1 {
		t.Fatalf("Watch returned %d reports, want 1", len(reps))
	}
	w := reps[0]
	if !w.Settled || !w.AddressChanged || w.Result != engine.ResultChanged || w.Err() != nil {
		t.Fatalf("watch did not settle on the change: %+v", w)
	}
	if took < changeAfter || took > changeAfter+2*time.Second {
		t.Fatalf("watch took %v: want it to end soon after the DNS change at %v, not with the 20 s window", took, changeAfter)
	}
	if n := queriesAtChange.Load() - queriesBefore; n < int64(changeAfter/interval)-3 {
		t.Fatalf("%d DNS queries before the change: the watch must resolve every %v", n, interval)
	}
	if !slices.Equal(w.Registered, []nlb.Target{{IP: ipB, Port: port}}) || !slices.Equal(w.Deregistered, []nlb.Target{{IP: ipA, Port: port}}) {
		t.Fatalf("registered %v, deregistered %v: want B in and A out", w.Registered, w.Deregistered)
	}
	e.wantLive(ipB)
	var muts []string // in call order
	for _, c := range e.rec.Calls("")[callsBefore:] {
		if strings.HasPrefix(c, "Register") || strings.HasPrefix(c, "Deregister") {
			muts = append(muts, c)
		}
	}
	if len(muts) != 2 || muts[0] != "Register [10.0.2.20:5432]" || muts[1] != "Deregister [10.0.1.10:5432]" {
		t.Fatalf("mutations %v: want register B, then deregister A (I3)", muts)
	}
}

// TestWatchWindowWithoutChange: unchanged DNS means no AWS call at all during the watch (I9), and the window
// ends it.
func TestWatchWindowWithoutChange(t *testing.T) {
	e, eng := syncedOnA(t, false)
	e.fake.ResetCalls()

	start := time.Now()
	w := eng.Watch(context.Background(), []string{"orders"}, 500*time.Millisecond, 50*time.Millisecond)[0]
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("watch took %v with a 500ms window", took)
	}
	if w.Settled || w.AddressChanged || w.Result != engine.ResultUnchanged || w.Passes < 5 {
		t.Fatalf("watch without a change: %+v", w)
	}
	if calls := e.fake.Calls(); len(calls) != 0 {
		t.Fatalf("I9: unchanged DNS during a watch made AWS calls: %v", calls)
	}
}

// TestWatchDNSDown: failed resolutions change nothing (I1), are counted, and do not end the watch early; a
// cancelled context does.
func TestWatchDNSDown(t *testing.T) {
	e, eng := syncedOnA(t, false)
	e.fake.ResetCalls()
	e.dns.SetFault(dnstest.FaultServFail)

	w := eng.Watch(context.Background(), []string{"orders"}, 400*time.Millisecond, 50*time.Millisecond)[0]
	if w.Err() == nil || w.Result != engine.ResultError || w.FailedPasses != w.Passes || w.Passes < 3 || w.Settled {
		t.Fatalf("watch with DNS down: %+v", w)
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I1: mutating calls while DNS was down: %v", muts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	eng.Watch(ctx, []string{"orders"}, time.Minute, 50*time.Millisecond)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a watch whose context ended after 200ms took %v", took)
	}
}

// TestWatchOnlyNamed: a watch over one mapping leaves the others alone; a watch over none returns at once.
func TestWatchOnlyNamed(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	orders, reports := twoMappings(e, 1)
	eng := e.engine(engine.Options{}, orders, reports)
	// reports' group is empty, so the first pass registers: a change the watch settles on at once.
	reps := eng.Watch(context.Background(), []string{"reports"}, 10*time.Second, 50*time.Millisecond)
	if len(reps) != 1 || reps[0].Sync != "reports" || !reps[0].Settled || reps[0].Passes != 1 {
		t.Fatalf("watch(reports) = %+v", reps)
	}
	if n := len(e.fake.Targets(orders.TargetGroupARN)); n != 0 {
		t.Fatalf("the watch of reports touched orders' group")
	}
	if reps := eng.Watch(context.Background(), nil, time.Minute, time.Second); len(reps) != 0 {
		t.Fatalf("watch of no mapping: %+v", reps)
	}
}

// TestConcurrentWatches is issue 9 item 8: Lambda can run several invocations of one execution environment at
// once (AWS_LAMBDA_MAX_CONCURRENCY), so two failover watches, and a scheduled pass beside them, may work on the
// same mapping together. Under -race this must report no data race, and their passes must still be serialized:
// B is registered once, A deregistered once, in that order (I3).
func TestConcurrentWatches(t *testing.T) {
	e, eng := syncedOnA(t, true)
	callsBefore := len(e.rec.Calls(""))

	timer := time.AfterFunc(300*time.Millisecond, func() { e.dns.SetA(endpoint, 1, ipB.String()) })
	defer timer.Stop()
	var wg sync.WaitGroup
	watches := make([][]engine.WatchReport, 2)
	for i := range watches {
		wg.Go(func() {
			watches[i] = eng.Watch(context.Background(), []string{"orders"}, 10*time.Second, 50*time.Millisecond)
		})
	}
	wg.Go(func() {
		for range 5 {
			eng.RunOnceFor(context.Background(), []string{"orders"})
			time.Sleep(50 * time.Millisecond)
		}
	})
	wg.Wait()

	for i, reps := range watches {
		if len(reps) != 1 || reps[0].Err() != nil || !reps[0].AddressChanged {
			t.Fatalf("watch %d: %+v: want one report that saw the change", i, reps)
		}
	}
	e.wantLive(ipB)
	var muts []string
	for _, c := range e.rec.Calls("")[callsBefore:] {
		if strings.HasPrefix(c, "Register") || strings.HasPrefix(c, "Deregister") {
			muts = append(muts, c)
		}
	}
	if len(muts) != 2 || muts[0] != "Register [10.0.2.20:5432]" || muts[1] != "Deregister [10.0.1.10:5432]" {
		t.Fatalf("mutations %v: want B registered once, then A deregistered once (I3)", muts)
	}
}
