package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

const (
	endpoint = "orders.c9abc.us-east-1.rds.test"
	port     = 5432
)

var (
	ipA = netip.MustParseAddr("10.0.1.10")
	ipB = netip.MustParseAddr("10.0.2.20")
	ipX = netip.MustParseAddr("172.31.0.10") // private (RFC 1918), outside the VPC
)

// clock is the engine's time, moved by the test, so that resync and readiness can be tested without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder wraps the target-group seam and records every call in order, for any backend.
type recorder struct {
	engine.TargetGroup
	mu    sync.Mutex
	calls []string
}

func (r *recorder) log(s string) { r.mu.Lock(); defer r.mu.Unlock(); r.calls = append(r.calls, s) }

func (r *recorder) Health(ctx context.Context, arn string) ([]nlb.TargetHealth, error) {
	r.log("Health")
	return r.TargetGroup.Health(ctx, arn)
}

func (r *recorder) Register(ctx context.Context, arn string, ts []nlb.Target) error {
	r.log("Register " + fmt.Sprint(ts))
	return r.TargetGroup.Register(ctx, arn, ts)
}

func (r *recorder) Deregister(ctx context.Context, arn string, ts []nlb.Target) error {
	r.log("Deregister " + fmt.Sprint(ts))
	return r.TargetGroup.Deregister(ctx, arn, ts)
}

// Calls returns the recorded calls whose text starts with prefix ("" = all).
func (r *recorder) Calls(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (r *recorder) reset() { r.mu.Lock(); defer r.mu.Unlock(); r.calls = nil }

func (r *recorder) Mutations() []string {
	return append(r.Calls("Register"), r.Calls("Deregister")...)
}

// env is one test's world: a DNS server, an AWS backend, the engine's clock and the recorded seam.
type env struct {
	t      *testing.T
	dns    *dnstest.Server
	res    *resolver.Resolver
	fake   *elbv2fake.Server // nil on moto
	group  awstest.Group
	rec    *recorder
	direct *targets.Client // for seeding and reading the group behind the engine's back
	clock  *clock
	logs   *observer.ObservedLogs // of the engine built last
}

// backends runs fn against moto and against our fake, through the real SDK and AWS_ENDPOINT_URL.
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	awstest.Backends(t, func(t *testing.T, ep awstest.Endpoint) { fn(t, newEnv(t, ep)) })
}

func newFakeEnv(t *testing.T, opts elbv2fake.Options) *env {
	return newEnv(t, awstest.Fake(t, opts))
}

func newEnv(t *testing.T, ep awstest.Endpoint) *env {
	t.Helper()
	dns := dnstest.Start(t)
	res, err := resolver.New(resolver.Config{Servers: []string{dns.Addr()}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	group := awstest.NewTargetGroup(t, port)
	direct := awstest.Client(t, group.ARN, targets.FactoryOptions{})
	return &env{t: t, dns: dns, res: res, fake: ep.Fake, group: group, rec: &recorder{TargetGroup: direct},
		direct: direct, clock: &clock{t: time.Unix(1_700_000_000, 0)}}
}

// runEngine runs eng as the daemon does until the test ends; the cleanup waits for the passes in flight.
func runEngine(t testing.TB, eng *engine.Engine) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// mapping is the default mapping of these tests.
func (e *env) mapping() config.Sync {
	s := config.DefaultSync()
	s.Name, s.Endpoint, s.TargetGroupARN = "orders", endpoint, e.group.ARN
	return s
}

// engine builds an engine over the given mappings (default: one) sharing the recorder.
func (e *env) engine(opts engine.Options, syncs ...config.Sync) *engine.Engine {
	return e.engineWith(nil, opts, syncs...)
}

// engineWith is engine with a change to the default configuration (nil: none).
func (e *env) engineWith(change func(*config.Config), opts engine.Options, syncs ...config.Sync) *engine.Engine {
	if len(syncs) == 0 {
		syncs = []config.Sync{e.mapping()}
	}
	cfg := config.Defaults()
	cfg.Syncs = syncs
	if change != nil {
		change(cfg)
	}
	cfg.DNS.Servers = []string{e.dns.Addr()}
	core, logs := observer.New(zap.InfoLevel)
	e.logs = logs
	return engine.New(cfg, engine.Deps{
		Resolver: e.res,
		Clients: func(context.Context, string, string) (engine.TargetGroup, error) {
			return e.rec, nil
		},
		Members: e.members(),
		Log:     zap.New(core),
		Now:     e.clock.Now,
	}, opts)
}

// pass runs one RunOnce, then moves the clock by a TTL, as the daemon would between resolutions.
func (e *env) pass(eng *engine.Engine) engine.Report {
	e.t.Helper()
	reps := eng.RunOnce(context.Background())
	e.clock.Advance(5 * time.Second)
	return reps[0]
}

// live returns the group's non-draining targets as the backend reports them.
func (e *env) live() []nlb.Target { return awstest.Live(e.t, e.direct, e.group.ARN) }

// liveIn returns the sorted addresses of the group's non-draining targets.
func (e *env) liveIn(arn string) []netip.Addr { return awstest.LiveAddrs(e.t, e.direct, arn) }

func (e *env) wantLive(ips ...netip.Addr) {
	e.t.Helper()
	if got := e.liveIn(e.group.ARN); !slices.Equal(got, ips) {
		e.t.Fatalf("live targets %v, want %v (calls: %v)", got, ips, e.rec.Calls(""))
	}
}

func mustOK(t *testing.T, r engine.Report) engine.Report {
	t.Helper()
	if r.Err() != nil {
		t.Fatalf("pass failed: %v", r.Err())
	}
	return r
}

func TestFailover(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.dns.SetA(endpoint, 5, ipA.String())
		eng := e.engine(engine.Options{})

		r := mustOK(t, e.pass(eng))
		if r.Result != engine.ResultChanged || len(r.Registered) != 1 || r.Registered[0] != (nlb.Target{IP: ipA, Port: port}) {
			t.Fatalf("empty group must get A on port %d: %+v", port, r)
		}
		e.wantLive(ipA)
		if r := mustOK(t, e.pass(eng)); r.Result != engine.ResultUnchanged || !r.InSync {
			t.Fatalf("second pass must be in sync and change nothing: %+v", r)
		}

		e.dns.SetA(endpoint, 5, ipB.String()) // Multi-AZ failover
		r = mustOK(t, e.pass(eng))
		if len(r.Registered) != 1 || r.Registered[0].IP != ipB || len(r.Deregistered) != 0 || !slices.Equal(r.Waiting, []netip.Addr{ipA}) {
			t.Fatalf("first pass after the change registers B at once and keeps A (I6): %+v", r)
		}
		e.wantLive(ipA, ipB)
		r = mustOK(t, e.pass(eng))
		if len(r.Deregistered) != 1 || r.Deregistered[0].IP != ipA || r.Deregistered[0].Port != port {
			t.Fatalf("second resolution without A deregisters it, naming its port (I4): %+v", r)
		}
		e.wantLive(ipB)

		// I3: B was registered before A was deregistered.
		muts := e.rec.Mutations()
		if len(muts) != 3 || !strings.Contains(muts[1], ipB.String()) || !strings.Contains(muts[2], ipA.String()) {
			t.Fatalf("mutations %v: want register A, register B, then deregister A", muts)
		}
		regB := slices.Index(e.rec.Calls(""), muts[1])
		deregA := slices.Index(e.rec.Calls(""), muts[2])
		if regB > deregA {
			t.Fatalf("I3: deregistered before registering: %v", e.rec.Calls(""))
		}
		if r := mustOK(t, e.pass(eng)); r.Result != engine.ResultUnchanged || !r.InSync {
			t.Fatalf("after the failover: %+v", r)
		}
	})
}

func TestCNAMEFailover(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		// Aurora: cluster endpoint -> writer instance endpoint -> A.
		e.dns.SetA("db-1.c9abc.us-east-1.rds.test", 5, ipA.String())
		e.dns.SetA("db-2.c9abc.us-east-1.rds.test", 5, ipB.String())
		e.dns.SetCNAME(endpoint, 5, "db-1.c9abc.us-east-1.rds.test")
		eng := e.engine(engine.Options{})
		r := mustOK(t, e.pass(eng))
		if len(r.Chain) != 2 {
			t.Fatalf("chain %v: want the cluster endpoint then the instance", r.Chain)
		}
		e.wantLive(ipA)

		e.dns.SetCNAME(endpoint, 5, "db-2.c9abc.us-east-1.rds.test")
		mustOK(t, e.pass(eng))
		e.wantLive(ipA, ipB)
		mustOK(t, e.pass(eng))
		e.wantLive(ipB)
	})
}

// TestDNSFailureChangesNothing is I1: whatever goes wrong with DNS, no Register or Deregister call is made.
func TestDNSFailureChangesNothing(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.dns.SetA(endpoint, 5, ipA.String())
		eng := e.engine(engine.Options{})
		mustOK(t, e.pass(eng))
		before := len(e.rec.Mutations())

		faults := []struct {
			fault dnstest.Fault
			kind  resolver.Kind
		}{
			{dnstest.FaultDrop, resolver.KindTimeout},
			{dnstest.FaultServFail, resolver.KindSERVFAIL},
			{dnstest.FaultRefused, resolver.KindREFUSED},
			{dnstest.FaultNXDomain, resolver.KindNXDOMAIN},
			{dnstest.FaultNoAnswer, resolver.KindNoAddress},
		}
		for _, f := range faults {
			e.dns.SetFault(f.fault)
			for range 3 {
				r := e.pass(eng)
				if r.Result != engine.ResultError || resolver.KindOf(r.Err()) != f.kind {
					t.Fatalf("%v: report %+v, want an error of kind %s", f.fault, r, f.kind)
				}
			}
		}
		// The wrong family: only an AAAA record for an ipv4 group.
		e.dns.SetFault(dnstest.FaultNone)
		e.dns.Remove(endpoint)
		e.dns.SetAAAA(endpoint, 5, "2001:db8::1")
		if r := e.pass(eng); resolver.KindOf(r.Err()) != resolver.KindNoAddress {
			t.Fatalf("AAAA only: %+v", r)
		}
		// A CNAME loop.
		e.dns.SetCNAME(endpoint, 5, "loop.rds.test")
		e.dns.SetCNAME("loop.rds.test", 5, endpoint)
		if r := e.pass(eng); resolver.KindOf(r.Err()) != resolver.KindLoop {
			t.Fatalf("loop: %+v", r)
		}
		if muts := e.rec.Mutations(); len(muts) != before {
			t.Fatalf("I1: mutating calls during DNS failures: %v", muts[before:])
		}
		e.wantLive(ipA)

		// Once DNS answers again with a new address, ipsync converges by itself.
		e.dns.SetA(endpoint, 5, ipB.String())
		mustOK(t, e.pass(eng))
		mustOK(t, e.pass(eng))
		e.wantLive(ipB)
	})
}

// TestSteadyStateCostsNothing is I9: with DNS unchanged, no mutating call and at most one
// DescribeTargetHealth per mapping per resync_interval.
func TestSteadyStateCostsNothing(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.dns.SetA(endpoint, 5, ipA.String())
		eng := e.engine(engine.Options{})
		mustOK(t, e.pass(eng))
		mustOK(t, e.pass(eng))
		muts, health := len(e.rec.Mutations()), len(e.rec.Calls("Health"))

		const passes = 120 // 10 minutes of 5 s TTLs
		for range passes {
			mustOK(t, e.pass(eng))
		}
		if got := len(e.rec.Mutations()) - muts; got != 0 {
			t.Fatalf("steady state made %d mutating calls", got)
		}
		maxHealth := int(passes*5*time.Second/config.DefaultResyncInterval) + 1
		if got := len(e.rec.Calls("Health")) - health; got > maxHealth || got == 0 {
			t.Fatalf("steady state read the group %d times in 10 minutes, want 1..%d (once per resync_interval)", got, maxHealth)
		}
	})
}

// TestOutsideVPC: availability_zone auto learns from AWS that an address is outside the group's VPC: AWS refuses
// it without a zone, ipsync registers it again with AvailabilityZone all in the same pass, and deregisters it
// naming that zone (I4). Moto does not enforce AWS's rule: there it goes in without a zone at the first try.
func TestOutsideVPC(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.dns.SetA(endpoint, 5, ipX.String())
		eng := e.engine(engine.Options{})
		r := mustOK(t, e.pass(eng))
		live := e.live()
		if len(live) != 1 || live[0].IP != ipX || (e.fake != nil && live[0].AvailabilityZone != "all") {
			t.Fatalf("live %v: want %v with AZ all (moto does not store AZs)", live, ipX)
		}
		wantRegs := []string{"Register [172.31.0.10:5432]", "Register [172.31.0.10:5432/all]"}
		if e.fake == nil {
			wantRegs = wantRegs[:1]
		}
		if regs := e.rec.Calls("Register"); !slices.Equal(regs, wantRegs) {
			t.Fatalf("registrations %v, want %v", regs, wantRegs)
		}
		if e.fake != nil && (len(r.Registered) != 1 || r.Registered[0].AvailabilityZone != "all") {
			t.Fatalf("report registered %v, want %v with the zone AWS took it with (all)", r.Registered, ipX)
		}
		e.dns.SetA(endpoint, 5, ipA.String())
		mustOK(t, e.pass(eng))
		r = mustOK(t, e.pass(eng))
		want := nlb.Target{IP: ipX, Port: port, AvailabilityZone: "all"}
		if e.fake == nil {
			want.AvailabilityZone = "" // I4 echoes what was reported, and moto reports no zone
		}
		if len(r.Deregistered) != 1 || r.Deregistered[0] != want {
			t.Fatalf("deregistered %v: want %v", r.Deregistered, want)
		}
		e.wantLive(ipA)
		if e.fake != nil {
			var saw bool
			for _, c := range e.fake.MutatingCalls() {
				if c.Action == "DeregisterTargets" {
					saw = c.Params.Get("Targets.member.1.AvailabilityZone") == "all" && c.Params.Get("Targets.member.1.Port") == "5432"
				}
			}
			if !saw {
				t.Fatalf("DeregisterTargets on the wire did not name AvailabilityZone all and Port 5432: %v", e.fake.MutatingCalls())
			}
		}
	})
}

// TestPruneFalse is I7: a target ipsync did not register stays, one it registered goes.
func TestPruneFalse(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		foreign := netip.MustParseAddr("10.0.9.9")
		if err := e.direct.Register(context.Background(), e.group.ARN, []nlb.Target{{IP: foreign, Port: port}}); err != nil {
			t.Fatal(err)
		}
		e.dns.SetA(endpoint, 5, ipA.String())
		s := e.mapping()
		s.Prune = false
		eng := e.engine(engine.Options{}, s)
		mustOK(t, e.pass(eng))
		e.dns.SetA(endpoint, 5, ipB.String())
		for range 4 {
			mustOK(t, e.pass(eng))
		}
		e.wantLive(ipB, foreign)
		for _, m := range e.rec.Calls("Deregister") {
			if strings.Contains(m, foreign.String()) {
				t.Fatalf("I7: deregistered a foreign target: %v", m)
			}
		}
	})
}

// TestDryRun is I8, checked on the fake's wire log: no RegisterTargets or DeregisterTargets call at all.
func TestDryRun(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	mustOK(t, e.pass(e.engine(engine.Options{})))
	e.dns.SetA(endpoint, 5, ipB.String())
	e.fake.ResetCalls()

	dry := e.engine(engine.Options{DryRun: true})
	for range 3 {
		r := mustOK(t, e.pass(dry))
		if !r.DryRun || !r.Changed() || r.Registered[0].IP != ipB {
			t.Fatalf("dry run must report what it would register: %+v", r)
		}
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: dry run made mutating calls: %v", muts)
	}
	if len(e.fake.Calls()) == 0 {
		t.Fatal("dry run read nothing: the test proves nothing")
	}
	e.wantLive(ipA)
}

// TestDryRunCostsNoMoreThanSteadyState is I9 in shadow mode: a difference a dry run never applies is read from
// the target group, and logged, once per resync_interval, not every TTL; the report still says what would change
// on every pass, and a new address is read and logged at once.
func TestDryRunCostsNoMoreThanSteadyState(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	dry := e.engine(engine.Options{DryRun: true})
	const passes = 120 // 10 minutes of 5 s TTLs
	for range passes {
		if r := mustOK(t, e.pass(dry)); !r.Changed() || r.Registered[0].IP != ipA {
			t.Fatalf("dry run must report what it would register on every pass: %+v", r)
		}
	}
	most := int(passes*5*time.Second/config.DefaultResyncInterval) + 1
	if n := len(e.rec.Calls("Health")); n == 0 || n > most {
		t.Errorf("a dry run read the group %d times in 10 minutes, want 1..%d (once per resync_interval)", n, most)
	}
	if n := e.logs.FilterMessage("target group out of sync").Len(); n == 0 || n > most {
		t.Errorf("a dry run logged \"target group out of sync\" %d times in 10 minutes, want 1..%d (once per resync_interval)", n, most)
	}

	// A new address is news: read the group and log at once.
	health, logged := len(e.rec.Calls("Health")), e.logs.FilterMessage("target group out of sync").Len()
	e.dns.SetA(endpoint, 5, ipB.String())
	if r := mustOK(t, e.pass(dry)); r.Registered[0].IP != ipB {
		t.Fatalf("dry run after the change: %+v, want B planned", r)
	}
	if len(e.rec.Calls("Health")) == health || e.logs.FilterMessage("target group out of sync").Len() == logged {
		t.Errorf("a dry run did not read the group and log after the address changed")
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: dry run made mutating calls: %v", muts)
	}
}

// TestDrainingDesiredAgain is I5: a fail-back to an address still draining registers it again.
func TestDrainingDesiredAgain(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{DrainFor: time.Hour})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.engine(engine.Options{})
	mustOK(t, e.pass(eng))
	e.dns.SetA(endpoint, 5, ipB.String())
	mustOK(t, e.pass(eng))
	if r := mustOK(t, e.pass(eng)); len(r.Deregistered) != 1 {
		t.Fatalf("A must be deregistered: %+v", r)
	}
	if st := stateOf(e.fake.Targets(e.group.ARN), ipA); st != "draining" {
		t.Fatalf("A is %q, want draining", st)
	}
	e.dns.SetA(endpoint, 5, ipA.String()) // fail back while A drains
	r := mustOK(t, e.pass(eng))
	if len(r.Registered) != 1 || r.Registered[0].IP != ipA {
		t.Fatalf("draining A desired again must be registered again: %+v", r)
	}
	if st := stateOf(e.fake.Targets(e.group.ARN), ipA); st != "initial" && st != "healthy" {
		t.Fatalf("A is %q after re-registration", st)
	}
}

func stateOf(ts []elbv2fake.TargetState, ip netip.Addr) string {
	for _, t := range ts {
		if t.IP == ip {
			return t.State
		}
	}
	return ""
}

// TestRegisterFailureBlocksDeregister is I3: when registering the new address fails, the old one stays.
func TestRegisterFailureBlocksDeregister(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.engine(engine.Options{})
	mustOK(t, e.pass(eng))
	e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action == "RegisterTargets" {
			return &elbv2fake.Fault{Status: 400, Code: "InvalidTarget", Message: "The following targets are not in a running state"}
		}
		return nil
	})
	e.dns.SetA(endpoint, 5, ipB.String())
	for range 4 {
		r := e.pass(eng)
		if r.Err() == nil || !strings.Contains(r.Error, "InvalidTarget") {
			t.Fatalf("pass must fail with the registration error: %+v", r)
		}
	}
	if d := e.rec.Calls("Deregister"); len(d) != 0 {
		t.Fatalf("I3: deregistered while registration fails: %v", d)
	}
	e.wantLive(ipA)

	e.fake.SetFault(nil) // the fault clears: converge without help
	mustOK(t, e.pass(eng))
	e.wantLive(ipB)
}

// TestTooManyTargets: when the group is full, stale targets go first, and the log says so.
func TestTooManyTargets(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{MaxTargets: 1})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.engine(engine.Options{})
	mustOK(t, e.pass(eng))
	e.dns.SetA(endpoint, 5, ipB.String())
	if r := e.pass(eng); !strings.Contains(r.Error, "TooManyTargets") {
		t.Fatalf("first pass: A is not stale yet (I6), so registering B must fail with TooManyTargets: %+v", r)
	}
	r := mustOK(t, e.pass(eng))
	if len(r.Registered) != 1 || len(r.Deregistered) != 1 {
		t.Fatalf("second pass must deregister A then register B: %+v", r)
	}
	calls := e.rec.Calls("")
	tail := calls[len(calls)-2:]
	if !strings.HasPrefix(tail[0], "Deregister") || !strings.HasPrefix(tail[1], "Register") {
		t.Fatalf("with TooManyTargets, stale targets must go first, then the registration is retried: %v", calls)
	}
	if e.logs.FilterMessageSnippet("TooManyTargets").Len() == 0 {
		t.Fatalf("the log must say why register-first was broken")
	}
	e.wantLive(ipB)
}

// TestMappingsIndependent: in the daemon, a mapping whose DNS never answers does not delay another.
func TestMappingsIndependent(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	second := awstest.NewTargetGroup(t, port)
	e.dns.SetA(endpoint, 1, ipA.String())
	e.dns.SetA("stuck.rds.test", 1, ipB.String())
	e.dns.SetNameFault("stuck.rds.test", dnstest.FaultDrop)
	stuck := e.mapping()
	stuck.Name, stuck.Endpoint, stuck.TargetGroupARN = "stuck", "stuck.rds.test", second.ARN
	eng := engineWithRealClock(e, e.mapping(), stuck)

	runEngine(t, eng)

	testutil.Eventually(t, 10*time.Second, "the healthy mapping converges while the other one's DNS is down", func() bool {
		return len(e.fake.Targets(e.group.ARN)) != 0
	})
	if n := len(e.fake.Targets(second.ARN)); n != 0 {
		t.Fatalf("I1: the stuck mapping changed its group: %d targets", n)
	}
	if err := eng.Ready(); err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Fatalf("Ready() = %v, want an error naming the stuck mapping", err)
	}
}

// engineWithRealClock builds a daemon engine on wall time (Run sleeps for real).
func engineWithRealClock(e *env, syncs ...config.Sync) *engine.Engine {
	cfg := config.Defaults()
	cfg.Syncs = syncs
	return engine.New(cfg, engine.Deps{
		Resolver: e.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil },
	}, engine.Options{})
}

func TestReady(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.engine(engine.Options{})
	if err := eng.Ready(); err == nil {
		t.Fatal("ready before any pass")
	}
	mustOK(t, e.pass(eng))
	if err := eng.Ready(); err != nil {
		t.Fatalf("not ready after a successful pass: %v", err)
	}
	e.dns.SetFault(dnstest.FaultServFail)
	e.pass(eng)
	if err := eng.Ready(); err != nil {
		t.Fatalf("one failed pass right after a success must not make the daemon unready: %v", err)
	}
	e.clock.Advance(3 * config.DefaultResyncInterval)
	e.pass(eng)
	err := eng.Ready()
	if err == nil || !strings.Contains(err.Error(), "orders") || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Fatalf("Ready() = %v: want not ready, naming the mapping and the DNS error", err)
	}
}

// TestTargetGroupNotIP: a group of another type is refused with a message saying what to do, and nothing changes.
func TestTargetGroupNotIP(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	arn := e.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "inst", Port: port, Protocol: "TCP", VPCID: e.group.VPCID, TargetType: "instance"})
	e.dns.SetA(endpoint, 5, ipA.String())
	s := e.mapping()
	s.TargetGroupARN = arn
	r := e.pass(e.engine(engine.Options{}, s))
	if r.Err() == nil || !strings.Contains(r.Error, "type ip") {
		t.Fatalf("want a clear refusal, got %+v", r)
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("mutating calls: %v", muts)
	}
}

// TestSettleOneShot: a one-shot run (sync, Lambda) keeps no memory, so with Settle it resolves again after the
// TTL and removes the old address in the same run, still only after deregister_after resolutions without it.
func TestSettleOneShot(t *testing.T) {
	for _, dry := range []bool{false, true} {
		t.Run(fmt.Sprintf("dry=%v", dry), func(t *testing.T) {
			e := newFakeEnv(t, elbv2fake.Options{})
			if err := e.direct.Register(context.Background(), e.group.ARN, []nlb.Target{{IP: ipA, Port: port}}); err != nil {
				t.Fatal(err)
			}
			e.dns.SetA(endpoint, 1, ipB.String())
			cfg := config.Defaults()
			cfg.Syncs = []config.Sync{e.mapping()}
			eng := engine.New(cfg, engine.Deps{
				Resolver: e.res,
				Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil },
			}, engine.Options{Settle: true, DryRun: dry})
			r := mustOK(t, eng.RunOnce(context.Background())[0])
			if len(r.Registered) != 1 || r.Registered[0].IP != ipB || len(r.Deregistered) != 1 || r.Deregistered[0].IP != ipA {
				t.Fatalf("one settled run must register B and deregister A: %+v", r)
			}
			if r.Result != engine.ResultChanged {
				t.Fatalf("result %q, want changed", r.Result)
			}
			// Resolutions: the first pass (B, A absent once), the settle pass (A absent twice) and, in a real run,
			// the one right before deregistering. Deregistering after one absence makes at most two.
			if resolves, want := e.dns.Queries(), int64(map[bool]int{false: 3, true: 2}[dry]); resolves < want {
				t.Fatalf("I6: A was removed after %d resolutions, want at least %d", resolves, want)
			}
			if dry {
				e.wantLive(ipA)
				if muts := e.fake.MutatingCalls(); len(muts) != 1 { // the seeding registration only
					t.Fatalf("I8: %v", muts)
				}
			} else {
				e.wantLive(ipB)
			}
		})
	}
}

// TestFollowEndsWhenTargetGoes: a new target that is deregistered before it became healthy (DNS flipped back)
// is no longer followed, so the daemon returns to reading the group once per resync_interval (I9).
func TestFollowEndsWhenTargetGoes(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{HealthyAfter: time.Hour})
	if err := e.direct.Register(context.Background(), e.group.ARN, []nlb.Target{{IP: ipA, Port: port}}); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.SetHealth(e.group.ARN, ipA, port, "healthy"); err != nil {
		t.Fatal(err)
	}
	e.dns.SetA(endpoint, 1, ipA.String())
	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{e.mapping()} // deregister_after 2: A stays while B comes and goes
	eng := engine.New(cfg, engine.Deps{
		Resolver: e.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil },
	}, engine.Options{FollowInterval: 100 * time.Millisecond})
	runEngine(t, eng)

	waitFor := func(what string, cond func([]elbv2fake.TargetState) bool) {
		t.Helper()
		if !testutil.Wait(10*time.Second, func() bool { return cond(e.fake.Targets(e.group.ARN)) }) {
			t.Fatalf("timed out waiting for %s: %v", what, e.fake.Targets(e.group.ARN))
		}
	}
	e.dns.SetA(endpoint, 1, ipB.String())
	waitFor("B registered", func(ts []elbv2fake.TargetState) bool { return stateOf(ts, ipB) == "initial" })
	e.dns.SetA(endpoint, 1, ipA.String()) // flips back before B is healthy
	waitFor("B gone", func(ts []elbv2fake.TargetState) bool { return stateOf(ts, ipB) != "initial" })

	time.Sleep(300 * time.Millisecond) // let the pass that deregistered B finish
	before := len(e.rec.Calls("Health"))
	time.Sleep(1500 * time.Millisecond)
	if n := len(e.rec.Calls("Health")) - before; n > 1 {
		t.Fatalf("%d DescribeTargetHealth calls in 1.5 s after B was removed: still following a target that is gone", n)
	}
}

// TestConcurrentPassesAreSerialized: passes of one mapping started at once (concurrent Lambda invocations, a
// watch beside a scheduled pass) run one after another on the same memory: one registration, no data race.
func TestConcurrentPassesAreSerialized(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.engine(engine.Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustOK(t, eng.RunOnce(context.Background())[0])
		}()
	}
	wg.Wait()
	e.wantLive(ipA)
	if regs := e.rec.Calls("Register"); len(regs) != 1 {
		t.Fatalf("8 concurrent passes made %d registrations, want 1: %v", len(regs), regs)
	}
}

// TestNewVPCCIDRAfterStart: a secondary CIDR added to the VPC while ipsync runs takes in an address ipsync
// learned as outside the VPC. Registered again (someone removed it), it goes out with AvailabilityZone all, which
// AWS now refuses; ipsync registers it without a zone in the same pass and remembers that.
func TestNewVPCCIDRAfterStart(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	moved := netip.MustParseAddr("10.1.0.5")
	e.dns.SetA(endpoint, 5, moved.String())
	eng := e.engine(engine.Options{})
	if r := mustOK(t, e.pass(eng)); len(r.Registered) != 1 || r.Registered[0].AvailabilityZone != "all" {
		t.Fatalf("outside the VPC the address must be registered with zone all: %+v", r)
	}

	if err := e.fake.AddVPC(e.group.VPCID, awstest.VPCCIDR, "10.1.0.0/16"); err != nil {
		t.Fatal(err)
	}
	if err := e.fake.SetTargets(e.group.ARN); err != nil { // removed behind ipsync's back
		t.Fatal(err)
	}
	e.clock.Advance(config.DefaultResyncInterval)
	e.rec.reset()
	r := mustOK(t, e.pass(eng))
	if len(r.Registered) != 1 || r.Registered[0] != (nlb.Target{IP: moved, Port: port}) {
		t.Fatalf("inside the VPC now, the address must be registered without a zone: %+v", r)
	}
	if regs := e.rec.Calls("Register"); !slices.Equal(regs, []string{"Register [10.1.0.5:5432/all]", "Register [10.1.0.5:5432]"}) {
		t.Fatalf("registrations %v: want the learned zone all first, then none", regs)
	}
	if err := e.fake.SetTargets(e.group.ARN); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(config.DefaultResyncInterval)
	e.rec.reset()
	mustOK(t, e.pass(eng))
	if regs := e.rec.Calls("Register"); !slices.Equal(regs, []string{"Register [10.1.0.5:5432]"}) {
		t.Fatalf("registrations %v: the zone learned last (none) must be sent at once", regs)
	}
}

// TestDaemonSteadyStateCostsNothing is I9 for the daemon's scheduler: with DNS unchanged, no mutating call and
// at most one DescribeTargetHealth per resync_interval.
func TestDaemonSteadyStateCostsNothing(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 1, ipA.String())
	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{e.mapping()}
	cfg.ResyncInterval = time.Second
	eng := engine.New(cfg, engine.Deps{
		Resolver: e.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil },
	}, engine.Options{})
	runEngine(t, eng)

	testutil.Eventually(t, 10*time.Second, "converged", func() bool { return len(e.fake.Targets(e.group.ARN)) != 0 })
	time.Sleep(1500 * time.Millisecond) // the new target's health is followed until healthy (the fake: at once)
	muts, health := len(e.rec.Mutations()), len(e.rec.Calls("Health"))
	const window = 4 * time.Second
	time.Sleep(window)
	if n := len(e.rec.Mutations()) - muts; n != 0 {
		t.Fatalf("steady state made %d mutating calls", n)
	}
	if n := len(e.rec.Calls("Health")) - health; n == 0 || n > int(window/cfg.ResyncInterval)+1 {
		t.Fatalf("%d DescribeTargetHealth calls in %s with resync_interval %s: want 1..%d", n, window, cfg.ResyncInterval, int(window/cfg.ResyncInterval)+1)
	}
	if q := e.dns.Queries(); q < 3 {
		t.Fatalf("only %d DNS queries: the daemon is not resolving on the TTL", q)
	}
}

// TestQuickAnswersDoNotCountTwice is I6 against answers sooner than a TTL (the Lambda watch resolves every
// interval): the old address goes only after deregister_after answers a TTL apart, not two answers 200 ms apart
// that a cache may simply have repeated.
func TestQuickAnswersDoNotCountTwice(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	if err := e.direct.Register(context.Background(), e.group.ARN, []nlb.Target{{IP: ipA, Port: port}}); err != nil {
		t.Fatal(err)
	}
	const ttl = 2 * time.Second
	e.dns.SetA(endpoint, uint32(ttl/time.Second), ipB.String())
	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{e.mapping()}
	eng := engine.New(cfg, engine.Deps{
		Resolver: e.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil },
	}, engine.Options{})
	start := time.Now()
	w := eng.Watch(context.Background(), []string{"orders"}, 10*time.Second, 200*time.Millisecond)[0]
	if !w.Settled || len(w.Deregistered) != 1 || w.Deregistered[0].IP != ipA {
		t.Fatalf("the watch must register B and then deregister A: %+v", w)
	}
	if took := time.Since(start); took < ttl {
		t.Fatalf("A was deregistered %v after the first answer without it: want at least one TTL (%v)", took, ttl)
	}
}
