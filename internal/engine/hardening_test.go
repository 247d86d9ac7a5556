package engine_test

// Tests of issue 9 (hardening): each shows an edge that a slow, odd or hostile world found, and what ipsync does.

import (
	"context"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
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
		{name: "public address", answer: []string{"10.0.2.20", "8.8.8.8"}, want: "8.8.8.8, outside allowed_cidrs (default: RFC 1918, RFC 6598 and IPv6 ULA)"},
		// An answer whose other addresses would need AWS to decide their zone (in and outside the VPC): nothing
		// of it is registered, not even to learn a zone.
		{name: "public address with addresses in and outside the VPC", answer: []string{"10.0.2.20", "172.31.0.10", "8.8.8.8"}, want: "8.8.8.8, outside allowed_cidrs"},
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

// failoverWhileRegistering is the fake with A registered by a mapping whose deregister_after is 1, and the
// endpoint moved to B: the next pass registers B, then would deregister A. Each RegisterTargets call from then on
// runs onRegister and fails with the fault it returns (nil: none).
func failoverWhileRegistering(t *testing.T, onRegister func(*env) *elbv2fake.Fault) (*env, *engine.Engine) {
	t.Helper()
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	s := e.mapping()
	s.DeregisterAfter = 1
	eng := e.engine(engine.Options{}, s)
	mustOK(t, e.pass(eng))
	e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action == "RegisterTargets" {
			return onRegister(e)
		}
		return nil
	})
	e.dns.SetA(endpoint, 5, ipB.String())
	return e, eng
}

// TestPoisonedAnswerBeforeDeregistering: the resolution made right before deregistering (the freshest answer,
// see TestStaleAnswerDuringSlowPass) carries a loopback address. That answer is refused as the pass's own would
// be (I10), and nothing is deregistered.
func TestPoisonedAnswerBeforeDeregistering(t *testing.T) {
	e, eng := failoverWhileRegistering(t, func(e *env) *elbv2fake.Fault {
		e.dns.SetA(endpoint, 5, ipB.String(), "127.0.0.1") // while B's registration is in flight
		return nil
	})
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
	e, eng := failoverWhileRegistering(t, func(*env) *elbv2fake.Fault {
		f := elbv2fake.AcceptedNotApplied()
		return &f
	})
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

// gatedGroup holds every RegisterTargets call, once armed, until release is closed (or, when release is nil,
// until the call's context ends), and says on entered when one arrives.
type gatedGroup struct {
	engine.TargetGroup
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *gatedGroup) Register(ctx context.Context, arn string, ts []nlb.Target) error {
	if g.armed.Load() {
		g.entered <- struct{}{}
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.TargetGroup.Register(ctx, arn, ts)
}

// stopMidRegistration runs the daemon on a failover from A to B (A stale at once: deregister_after 1), stops it
// while B's registration is held by g, calls whileStopping, and returns the logs once Run has returned.
func stopMidRegistration(t *testing.T, e *env, g *gatedGroup, grace time.Duration, whileStopping func()) *observer.ObservedLogs {
	t.Helper()
	e.dns.SetA(endpoint, 1, ipA.String())
	s := e.mapping()
	s.DeregisterAfter = 1
	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{s}
	core, logs := observer.New(zap.InfoLevel)
	eng := engine.New(cfg, engine.Deps{
		Resolver: e.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return g, nil },
		Log:      zap.New(core),
	}, engine.Options{StopGrace: grace})
	mustOK(t, eng.RunOnce(context.Background())[0]) // A registered
	g.entered = make(chan struct{}, 1)
	g.armed.Store(true)

	stop, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); eng.Run(stop) }()
	e.dns.SetA(endpoint, 1, ipB.String())
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("B's registration did not start within 10 s of the failover")
	}
	cancel() // SIGTERM mid-pass
	whileStopping()
	select {
	case <-ran:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20 s of the stop")
	}
	return logs
}

// TestStopStartsNoDeregistration (issue 9 item 12): the daemon is stopped while registering B in the pass that
// would then deregister A. The registration finishes, A is not deregistered, and the log says A was left.
func TestStopStartsNoDeregistration(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	g := &gatedGroup{TargetGroup: e.rec, release: make(chan struct{})}
	logs := stopMidRegistration(t, e, g, time.Minute, func() {
		time.Sleep(100 * time.Millisecond) // Run has seen the stop
		close(g.release)
	})
	if d := e.rec.Calls("Deregister"); len(d) != 0 {
		t.Fatalf("deregistered after the stop: %v", d)
	}
	e.wantLive(ipA, ipB)
	if logs.FilterMessageSnippet("not deregistering stale targets").FilterFieldKey("targets").Len() != 1 {
		t.Fatalf("no log line says A was left registered: %v", logs.All())
	}
}

// TestStopGraceCutsThePass (issue 9 item 12): a pass in flight that outlasts the grace after the stop is cut
// short: its held call is cancelled, Run returns, nothing is deregistered, and the log names the mapping.
func TestStopGraceCutsThePass(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	g := &gatedGroup{TargetGroup: e.rec} // nil release: held until the call is cancelled
	logs := stopMidRegistration(t, e, g, 200*time.Millisecond, func() {})
	if d := e.rec.Calls("Deregister"); len(d) != 0 {
		t.Fatalf("deregistered after the stop: %v", d)
	}
	e.wantLive(ipA)
	cut := logs.FilterMessageSnippet("cut short").All()
	if len(cut) != 1 || !slices.Equal(cut[0].ContextMap()["syncs"].([]any), []any{"orders"}) {
		t.Fatalf("want one line naming orders as cut short: %v", logs.All())
	}
}

// TestReloadKeepsUnchangedMappings (issue 9 item 6): a reload keeps an unchanged mapping as it is, memory included,
// stops a removed one without touching its group, and starts a new one.
func TestReloadKeepsUnchangedMappings(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	orders, reports := twoMappings(e, 5)
	billing := e.mapping()
	billing.Name, billing.Endpoint, billing.TargetGroupARN = "billing", "billing.c9abc.us-east-1.rds.test", awstest.NewTargetGroup(t, port).ARN
	e.dns.SetA(billing.Endpoint, 5, ipC.String())
	eng := e.engine(engine.Options{}, orders, reports)
	e.pass(eng)
	e.dns.SetA(orders.Endpoint, 5, ipC.String())
	if r := mustOK(t, e.pass(eng)); !slices.Equal(r.Waiting, []netip.Addr{ipA}) {
		t.Fatalf("after the change A waits for a second absence (I6): %+v", r)
	}

	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{orders, billing}
	cfg.DNS.Servers = []string{e.dns.Addr()}
	cfg.Poll.Max = time.Minute
	rep := eng.Reload(cfg)
	want := engine.ReloadReport{Kept: []string{"orders"}, Added: []string{"billing"}, Removed: []string{"reports"}, Restart: []string{"poll"}}
	if !reflect.DeepEqual(rep, want) {
		t.Fatalf("Reload = %+v, want %+v", rep, want)
	}
	if got := eng.Names(); !slices.Equal(got, []string{"orders", "billing"}) {
		t.Fatalf("Names() after the reload = %v", got)
	}
	e.dns.SetA(reports.Endpoint, 5, ipC.String())
	reps := eng.RunOnce(context.Background())
	if len(reps) != 2 || reps[0].Sync != "orders" || reps[1].Sync != "billing" {
		t.Fatalf("after the reload RunOnce reports %+v, want orders and billing", reps)
	}
	// orders kept its memory: this is A's second absence, so A goes now.
	if r := mustOK(t, reps[0]); !slices.Equal(r.Deregistered, []nlb.Target{{IP: ipA, Port: port}}) {
		t.Fatalf("orders after the reload: %+v, want A deregistered on its second absence", r)
	}
	if r := mustOK(t, reps[1]); len(r.Registered) != 1 {
		t.Fatalf("billing after the reload: %+v, want C registered", r)
	}
	if got := e.fake.Targets(reports.TargetGroupARN); len(got) != 1 || got[0].IP != ipB {
		t.Fatalf("the removed mapping's group holds %v, want B untouched", got)
	}

	// A changed mapping starts again with an empty memory.
	orders.DeregisterAfter = 3
	cfg.Syncs = []config.Sync{orders, billing}
	if rep := eng.Reload(cfg); !slices.Equal(rep.Changed, []string{"orders"}) || !slices.Equal(rep.Kept, []string{"billing"}) {
		t.Fatalf("Reload = %+v, want orders changed and billing kept", rep)
	}
}

// TestReloadWhileRunning (issue 9 item 6): Reload is safe while Run runs (-race): the new mapping is scheduled at
// once, and the removed one makes no call after the reload.
func TestReloadWhileRunning(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	orders, reports := twoMappings(e, 1)
	eng := engineWithRealClock(e, orders)
	runEngine(t, eng)
	testutil.Eventually(t, 10*time.Second, "orders registers A", func() bool { return len(e.fake.Targets(orders.TargetGroupARN)) == 1 })

	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{reports}
	eng.Reload(cfg)
	testutil.Eventually(t, 10*time.Second, "reports, added by the reload, registers B", func() bool {
		return len(e.fake.Targets(reports.TargetGroupARN)) == 1
	})
	e.fake.ResetCalls()
	e.dns.SetA(orders.Endpoint, 1, ipC.String())
	e.dns.SetA(reports.Endpoint, 1, ipC.String())
	testutil.Eventually(t, 10*time.Second, "reports follows its change", func() bool {
		return slices.ContainsFunc(e.fake.Targets(reports.TargetGroupARN), func(s elbv2fake.TargetState) bool { return s.IP == ipC })
	})
	time.Sleep(1500 * time.Millisecond) // more than a TTL: orders would have registered C by now
	for _, c := range e.fake.Calls() {
		if c.Params.Get("TargetGroupArn") == orders.TargetGroupARN {
			t.Fatalf("the removed mapping called %s after the reload", c.Action)
		}
	}
}
