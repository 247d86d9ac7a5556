package engine_test

// Fault tests (issue 3): for every DNS and AWS fault, the safety invariants hold on the wire, the mapping keeps
// going, the error is logged with the mapping, endpoint and target group and counted in a metric, readiness says
// what the soft/hard rule (HardError) says, and once the fault clears the target group converges with no help.
// TestDNSFailureChangesNothing, TestRegisterFailureBlocksDeregister and TestTooManyTargets (engine_test.go) cover
// I1, I3 and the TooManyTargets exception on their own; these tests add the rest of each row.

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
	"github.com/ipsync/ipsync/internal/testutil/promtest"
)

var ipC = netip.MustParseAddr("10.0.3.30")

// faultEnv is env with what a daemon has around the engine: a metrics registry, the SDK middleware counting
// every attempt, observed logs, and a checker of the invariants on the fake's wire log after every pass.
type faultEnv struct {
	*env
	reg *prometheus.Registry
	met *metrics.Metrics

	desired  []netip.Addr // what DNS serves: never deregistered (I2)
	previous []netip.Addr // what it served before the last change: may stay registered until the new one is
	dnsDown  bool         // DNS fails: no mutating call at all (I1)
	// allowEmpty: the row expects the group to hold none of desired and previous for a while (TooManyTargets).
	allowEmpty bool
	seen       int  // fake calls already checked
	covered    bool // the group has held a desired address since the start
}

type faultOpts struct {
	fake        elbv2fake.Options
	callTimeout time.Duration // per AWS call, retries included; default 3 s
}

func newFaultEnv(t *testing.T, o faultOpts) *faultEnv {
	t.Helper()
	e := newFakeEnv(t, o.fake)
	reg := prometheus.NewRegistry()
	met := metrics.New(reg, metrics.BuildInfo{})
	e.rec = &recorder{TargetGroup: awstest.Client(t, e.group.ARN, targets.FactoryOptions{
		APIOptions:  []func(*middleware.Stack) error{met.AWSMiddleware()},
		CallTimeout: cmp.Or(o.callTimeout, 3*time.Second),
	})}
	return &faultEnv{env: e, reg: reg, met: met}
}

// engine builds an engine over syncs (default: the one mapping) with metrics and observed logs.
func (f *faultEnv) engine(mutate func(*config.Config), syncs ...config.Sync) *engine.Engine {
	if len(syncs) == 0 {
		syncs = []config.Sync{f.mapping()}
	}
	cfg := config.Defaults()
	cfg.Syncs = syncs
	cfg.DNS.Servers = []string{f.dns.Addr()}
	if mutate != nil {
		mutate(cfg)
	}
	core, logs := observer.New(zap.InfoLevel)
	f.logs = logs
	return engine.New(cfg, engine.Deps{
		Resolver: f.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return f.rec, nil },
		Metrics:  f.met,
		Log:      zap.New(core),
		Now:      f.clock.Now,
	}, engine.Options{})
}

// wallClockEngine builds an engine over syncs with metrics that polls within poll on wall time, for tests that
// run it as the daemon does.
func (f *faultEnv) wallClockEngine(poll config.Poll, syncs ...config.Sync) *engine.Engine {
	cfg := config.Defaults()
	cfg.Syncs = syncs
	cfg.Poll = poll
	return engine.New(cfg, engine.Deps{
		Resolver: f.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return f.rec, nil },
		Metrics:  f.met,
	}, engine.Options{})
}

// serve makes DNS answer addrs for the endpoint (TTL 5 s) and records them as desired.
func (f *faultEnv) serve(addrs ...netip.Addr) {
	if !slices.Equal(addrs, f.desired) {
		f.previous = f.desired
	}
	f.desired = addrs
	ips := make([]string, len(addrs))
	for i, a := range addrs {
		ips[i] = a.String()
	}
	f.dns.SetA(endpoint, 5, ips...)
}

// pass runs one pass and checks the invariants on what reached the fake meanwhile.
func (f *faultEnv) pass(eng *engine.Engine) engine.Report {
	f.t.Helper()
	r := f.env.pass(eng)
	f.check()
	return r
}

// check reads the calls since the last check from the fake's wire log and fails the test on a broken invariant.
func (f *faultEnv) check() {
	f.t.Helper()
	calls := f.fake.Calls()
	fresh := calls[f.seen:]
	f.seen = len(calls)
	var lastReg *elbv2fake.Call
	for i, c := range fresh {
		switch c.Action {
		case "RegisterTargets":
			if f.dnsDown {
				f.t.Fatalf("I1: RegisterTargets %v while DNS was failing", c.TargetIPs())
			}
			lastReg = &fresh[i]
		case "DeregisterTargets":
			if f.dnsDown {
				f.t.Fatalf("I1: DeregisterTargets %v while DNS was failing", c.TargetIPs())
			}
			if lastReg != nil && lastReg.Code != "" && lastReg.Code != "TooManyTargets" {
				f.t.Fatalf("I3: DeregisterTargets %v after RegisterTargets failed with %s", c.TargetIPs(), lastReg.Code)
			}
			if c.Code != "" {
				continue // not applied
			}
			for _, ip := range c.TargetIPs() {
				if slices.Contains(f.desired, ip) {
					f.t.Fatalf("I2: deregistered %s while DNS served %v", ip, f.desired)
				}
			}
		}
	}
	live := f.liveAddrs()
	switch {
	case slices.ContainsFunc(live, func(a netip.Addr) bool { return slices.Contains(f.desired, a) || slices.Contains(f.previous, a) }):
		f.covered = true
	case f.covered && !f.allowEmpty:
		f.t.Fatalf("the group holds %v: no address DNS serves (%v) or served before the change (%v)", live, f.desired, f.previous)
	}
}

// liveAddrs reads the group's non-draining targets from the fake directly, so faults on the wire do not hit it.
func (f *faultEnv) liveAddrs() []netip.Addr {
	var out []netip.Addr
	for _, t := range f.fake.Targets(f.group.ARN) {
		if t.State != elbv2fake.StateDraining && t.State != elbv2fake.StateUnhealthyDraining {
			out = append(out, t.IP)
		}
	}
	return out
}

func (f *faultEnv) wantLiveAddrs(want ...netip.Addr) {
	f.t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, netip.Addr.Compare)
	if got := f.liveAddrs(); !slices.Equal(got, want) {
		f.t.Fatalf("the group holds %v, want %v", got, want)
	}
}

// converge runs passes until the group holds exactly f.desired with nothing left to do, at most n passes.
func (f *faultEnv) converge(eng *engine.Engine, n int) {
	f.t.Helper()
	var r engine.Report
	for range n {
		if r = f.pass(eng); r.Err() == nil && r.InSync && slices.Equal(f.liveAddrs(), f.desired) {
			return
		}
	}
	f.t.Fatalf("not converged to %v after %d passes: the group holds %v; last pass %+v", f.desired, n, f.liveAddrs(), r)
}

// value is the sum of the samples of a metric whose labels include every "name=value" given.
func (f *faultEnv) value(name string, labels ...string) float64 {
	f.t.Helper()
	return promtest.Sum(f.t, f.reg, name, labels...)
}

// wantFailureLogged checks that a "sync pass failed" line at level names the mapping, the endpoint and the target
// group, says whether the fault is hard or soft, and that its error contains every string of want.
func (f *faultEnv) wantFailureLogged(level zapcore.Level, want ...string) {
	f.t.Helper()
	var seen []string
	for _, e := range f.logs.FilterMessage("sync pass failed").All() {
		ctx := e.ContextMap()
		msg := fmt.Sprint(ctx["error"])
		seen = append(seen, e.Level.String()+": "+msg)
		fault := "soft"
		if level == zapcore.ErrorLevel {
			fault = "hard"
		}
		if e.Level != level || ctx["sync"] != "orders" || ctx["endpoint"] != endpoint || ctx["target_group"] != f.group.ARN || ctx["fault"] != fault {
			continue
		}
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(msg, w) }) {
			return
		}
	}
	f.t.Fatalf("no %s %q line with sync, endpoint, target_group and an error containing %q; saw %q", level, "sync pass failed", want, seen)
}

// wantNotReady checks that Ready fails naming the mapping and containing every string of want.
func wantNotReady(t *testing.T, eng *engine.Engine, want ...string) {
	t.Helper()
	err := eng.Ready()
	if err == nil {
		t.Fatalf("Ready() = nil, want not ready with %q", want)
	}
	for _, w := range append([]string{"orders"}, want...) {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("Ready() = %q, want it to contain %q", err, w)
		}
	}
}

// readinessWindow is how long a soft error may last before /readyz fails, with the default configuration.
const readinessWindow = 2 * config.DefaultResyncInterval

// TestDNSFaults: every DNS failure changes nothing (I1) (checked on the wire), keeps the mapping
// retrying, is logged and counted by kind, is soft for readiness, and a DNS change made during the outage is
// followed as soon as DNS answers again.
func TestDNSFaults(t *testing.T) {
	chain := func(d *dnstest.Server, n int) {
		name := endpoint
		for i := range n {
			next := fmt.Sprintf("hop%d.rds.test", i)
			d.SetCNAME(name, 5, next)
			name = next
		}
		d.SetA(name, 5, ipB.String())
	}
	for _, tc := range []struct {
		name  string
		fault func(f *faultEnv) // makes DNS fail after the group holds A; f.desired is B once DNS answers again
		kind  resolver.Kind
		want  string // what the error tells the user
	}{
		{"timeout", func(f *faultEnv) { f.dns.SetNameFault(endpoint, dnstest.FaultDrop) }, resolver.KindTimeout, "check dns.servers and network access"},
		{"SERVFAIL", func(f *faultEnv) { f.dns.SetNameFault(endpoint, dnstest.FaultServFail) }, resolver.KindSERVFAIL, "answered SERVFAIL"},
		{"REFUSED", func(f *faultEnv) { f.dns.SetNameFault(endpoint, dnstest.FaultRefused) }, resolver.KindREFUSED, "answered REFUSED"},
		{"NXDOMAIN", func(f *faultEnv) { f.dns.SetNameFault(endpoint, dnstest.FaultNXDomain) }, resolver.KindNXDOMAIN, "check the endpoint name"},
		{"NOERROR without an address", func(f *faultEnv) { f.dns.SetNameFault(endpoint, dnstest.FaultNoAnswer) }, resolver.KindNoAddress, "no A record"},
		{"wrong family", func(f *faultEnv) { f.dns.Remove(endpoint); f.dns.SetAAAA(endpoint, 5, "2001:db8::10") }, resolver.KindNoAddress, "IP address type"},
		{"CNAME loop", func(f *faultEnv) {
			f.dns.SetCNAME(endpoint, 5, "loop.rds.test")
			f.dns.SetCNAME("loop.rds.test", 5, endpoint)
		}, resolver.KindLoop, "fix the endpoint's CNAME records"},
		{"CNAME chain too long", func(f *faultEnv) { chain(f.dns, resolver.MaxChain) }, resolver.KindChainTooLong, "longer than 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultEnv(t, faultOpts{})
			f.serve(ipA)
			eng := f.engine(nil)
			f.converge(eng, 2)

			f.serve(ipB) // the failover happens during the outage, hidden by the fault
			tc.fault(f)
			f.dnsDown = true
			const passes = 3
			var reps []engine.Report
			for range passes {
				reps = append(reps, f.pass(eng)) // the invariants first: a breach fails in f.pass
			}
			for _, r := range reps {
				if resolver.KindOf(r.Err()) != tc.kind || !strings.Contains(r.Error, tc.want) || !strings.Contains(r.Error, "no target changed") {
					t.Fatalf("pass: %q (kind %q), want kind %s saying %q", r.Error, resolver.KindOf(r.Err()), tc.kind, tc.want)
				}
				if engine.IsHard(r.Err()) {
					t.Fatalf("a DNS error must be soft: %v", r.Err())
				}
			}
			f.wantLiveAddrs(ipA)
			if got := f.value("ipsync_dns_queries_total", "sync=orders", "result="+string(tc.kind)); got != passes {
				t.Errorf("ipsync_dns_queries_total{result=%q} = %v, want %d", tc.kind, got, passes)
			}
			if got := f.value("ipsync_sync_runs_total", "sync=orders", "result=error"); got != passes {
				t.Errorf("ipsync_sync_runs_total{result=error} = %v, want %d", got, passes)
			}
			f.wantFailureLogged(zapcore.WarnLevel, tc.want)
			if err := eng.Ready(); err != nil {
				t.Fatalf("soft: a DNS outage shorter than the readiness window must not make the daemon unready: %v", err)
			}
			f.clock.Advance(readinessWindow)
			f.pass(eng)
			wantNotReady(t, eng, "no successful pass", tc.want)

			// The fault clears: DNS answers B, and the group follows with no help.
			f.dnsDown = false
			f.dns.SetNameFault(endpoint, dnstest.FaultNone)
			f.dns.Remove(endpoint)
			f.dns.Remove("loop.rds.test")
			f.serve(ipB)
			f.converge(eng, 3)
			if err := eng.Ready(); err != nil {
				t.Fatalf("after the fault: %v", err)
			}
		})
	}
}

// TestDNSAnswersThatStillWork: truncated answers, one of two servers down, a huge answer: the resolution
// succeeds, no error is reported, and a failover is followed as usual.
func TestDNSAnswersThatStillWork(t *testing.T) {
	t.Run("truncated", func(t *testing.T) {
		f := newFaultEnv(t, faultOpts{})
		f.dns.SetNameFault(endpoint, dnstest.FaultTruncate) // TC over UDP, the answer over TCP
		f.serve(ipA)
		eng := f.engine(nil)
		f.converge(eng, 2)
		f.serve(ipB)
		f.converge(eng, 3)
		if f.dns.QueriesTCP() == 0 {
			t.Fatal("no query over TCP: the test proves nothing")
		}
		if got := f.value("ipsync_dns_queries_total", "sync=orders", "result=success"); got < 4 {
			t.Errorf("ipsync_dns_queries_total{result=success} = %v", got)
		}
		if n := f.logs.FilterMessage("sync pass failed").Len(); n != 0 {
			t.Errorf("%d failed passes with truncated answers", n)
		}
	})

	// The first server never answers, or its port is closed; the second answers.
	for _, down := range []string{"no answer", "port closed"} {
		t.Run("one of two servers down: "+down, func(t *testing.T) {
			f := newFaultEnv(t, faultOpts{})
			dead := deadServer(t, down)
			res, err := resolver.New(resolver.Config{Servers: []string{dead, f.dns.Addr()}, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			f.res = res
			f.serve(ipA)
			eng := f.engine(nil)
			f.converge(eng, 2)
			f.serve(ipB)
			f.converge(eng, 3)
			if n := f.logs.FilterMessage("sync pass failed").Len(); n != 0 {
				t.Errorf("%d failed passes with one server of two down", n)
			}
		})
	}

	t.Run("huge answer", func(t *testing.T) {
		f := newFaultEnv(t, faultOpts{})
		many := func(third byte) []netip.Addr {
			out := make([]netip.Addr, 250) // ~4 KB: truncated over UDP, whole over TCP; > 2 registration chunks
			for i := range out {
				out[i] = netip.AddrFrom4([4]byte{10, 0, third + byte(i/200), byte(1 + i%200)})
			}
			return out
		}
		f.serve(many(10)...)
		eng := f.engine(nil)
		f.converge(eng, 2)
		f.serve(many(20)...)
		f.converge(eng, 3)
		for _, c := range f.fake.MutatingCalls() {
			if n := len(c.TargetIPs()); n > targets.MaxTargetsPerCall {
				t.Fatalf("%s with %d targets: more than %d per call", c.Action, n, targets.MaxTargetsPerCall)
			}
		}
		if f.dns.QueriesTCP() == 0 {
			t.Fatal("the answer was not truncated over UDP: the test proves nothing")
		}
	})
}

// deadServer returns a DNS server address that fails as described: "no answer" (queries time out) or
// "port closed" (nothing listens: the query fails at once).
func deadServer(t *testing.T, how string) string {
	t.Helper()
	if how == "no answer" {
		d := dnstest.Start(t)
		d.SetFault(dnstest.FaultDrop)
		return d.Addr()
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_ = pc.Close()
	return addr
}

// TestFlappingAnswers: after a failover, resolver caches disagree and answers alternate between the new and the
// old address. The new one is registered at once, nothing is deregistered while the old one keeps coming back
// (I6), the mapping reports that it is not in sync yet, and once the answers settle the old one goes.
func TestFlappingAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pattern [][]string
		vetoes  bool // the old address is due for deregistration but back in the answer right before the call
	}{
		{"new, old", [][]string{{ipB.String()}, {ipA.String()}}, false},
		// Two new answers in a row, then the old one: the old address is due for deregistration, and comes back
		// in the answer just before the call. Only resolving again right before deregistering catches that.
		{"new, new, old", [][]string{{ipB.String()}, {ipB.String()}, {ipA.String()}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultEnv(t, faultOpts{})
			f.serve(ipA)
			eng := f.engine(nil)
			f.converge(eng, 2)

			f.dns.SetAFlapping(endpoint, 5, tc.pattern...)
			f.previous, f.desired = []netip.Addr{ipA}, []netip.Addr{ipA, ipB} // both are served: neither may go
			for range 8 {
				if r := f.pass(eng); r.Err() != nil {
					t.Fatalf("flapping answers are answers: %v", r.Err())
				}
			}
			f.wantLiveAddrs(ipA, ipB)
			if got := f.value("ipsync_in_sync", "sync=orders"); got != 0 {
				t.Errorf("ipsync_in_sync = %v while the old address waits, want 0", got)
			}
			if got := f.value("ipsync_deregistrations_total", "sync=orders"); got != 0 {
				t.Errorf("ipsync_deregistrations_total = %v while the old address is still served", got)
			}
			if vetoed := f.logs.FilterMessage("not deregistering targets DNS returns again").Len() > 0; vetoed != tc.vetoes {
				t.Errorf("kept by the last-moment resolution: %v, want %v", vetoed, tc.vetoes)
			}

			f.serve(ipB) // the caches agree again
			f.converge(eng, 3)
			if got := f.value("ipsync_in_sync", "sync=orders"); got != 1 {
				t.Errorf("ipsync_in_sync = %v after settling, want 1", got)
			}
		})
	}
}

// TestTTLExtremes: TTL 0 is polled at poll.min, not in a hot loop; a TTL of a day is polled at poll.max, so a
// failover is still seen.
func TestTTLExtremes(t *testing.T) {
	for _, tc := range []struct {
		name            string
		ttl             uint32
		minPolls, polls int64 // DNS queries expected in the 2 s window
	}{
		{"TTL 0", 0, 8, 25},        // poll.min 100 ms: about 20
		{"TTL 1 day", 86400, 2, 6}, // poll.max 500 ms: about 4
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultEnv(t, faultOpts{})
			f.dns.SetA(endpoint, tc.ttl, ipA.String())
			eng := f.wallClockEngine(config.Poll{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond}, f.mapping())
			runEngine(t, eng)

			testutil.Eventually(t, 5*time.Second, "A registered", func() bool { return slices.Equal(f.liveAddrs(), []netip.Addr{ipA}) })
			q0 := f.dns.Queries()
			time.Sleep(2 * time.Second)
			if q := f.dns.Queries() - q0; q < tc.minPolls || q > tc.polls {
				t.Errorf("%d DNS queries in 2 s, want %d-%d", q, tc.minPolls, tc.polls)
			}
			f.dns.SetA(endpoint, tc.ttl, ipB.String())
			testutil.Eventually(t, 5*time.Second, "the failover followed", func() bool { return slices.Equal(f.liveAddrs(), []netip.Addr{ipB}) })
		})
	}
}

// awsCase is one AWS fault: it starts after the group holds A, together with a failover to B.
type awsCase struct {
	name  string
	opts  faultOpts
	fault func(action string) *elbv2fake.Fault // the fault for a call of action while it lasts (nil: none)
	burst func(s *elbv2fake.Server)            // instead of fault: FailNext bursts that end by themselves
	op    string                               // ipsync_aws_api_calls_total{operation} that must count code
	code  string
	want  string // in the error of the last pass with the fault (of some pass, for a burst)
	hard  bool
	live  []netip.Addr // the group after the passes with the fault
	empty bool         // the group may hold neither A nor B for a while (TooManyTargets, see the row)
	// settles: the fault bites once, then ipsync finds out what happened and converges while it lasts.
	settles bool
}

func onActions(f elbv2fake.Fault, actions ...string) func(string) *elbv2fake.Fault {
	return func(action string) *elbv2fake.Fault {
		if len(actions) == 0 || slices.Contains(actions, action) {
			return &f
		}
		return nil
	}
}

// TestAWSFaults: for every AWS fault of issue 3, the invariants hold on the wire, the error is logged and counted,
// readiness follows the soft/hard rule, and after the fault clears the group converges with no help.
func TestAWSFaults(t *testing.T) {
	const reg, dereg, describe = "RegisterTargets", "DeregisterTargets", "DescribeTargetHealth"
	notFound := elbv2fake.Fault{Status: 400, Code: "TargetGroupNotFound", Message: "One or more target groups not found"}
	cases := []awsCase{
		{name: "Throttling burst", burst: func(s *elbv2fake.Server) { s.FailNext("", 3, elbv2fake.Throttled()) },
			op: describe, code: "Throttling", want: "Throttling", live: []netip.Addr{ipB}},
		{name: "Throttling sustained", fault: onActions(elbv2fake.Throttled()),
			op: describe, code: "Throttling", want: "Rate exceeded", live: []netip.Addr{ipA}},
		{name: "500 on mutating calls", fault: onActions(elbv2fake.InternalFailure(), reg, dereg),
			op: reg, code: "InternalFailure", want: "InternalFailure", live: []netip.Addr{ipA}},
		{name: "503 on every call", fault: onActions(elbv2fake.ServiceUnavailable()),
			op: describe, code: "ServiceUnavailable", want: "ServiceUnavailable", live: []netip.Addr{ipA}},
		{name: "connection reset", fault: onActions(elbv2fake.ConnectionReset()),
			op: describe, code: awserr.CodeNetworkError, want: "connection reset", live: []netip.Addr{ipA}},
		// The registration is made but its answer is lost: ipsync must not take it for a success and deregister.
		{name: "connection reset after the change", fault: onActions(elbv2fake.Fault{CloseConn: true, Applied: true}, reg),
			op: reg, code: awserr.CodeNetworkError, want: "connection reset", live: []netip.Addr{ipB}, settles: true},
		{name: "latency beyond the call deadline", opts: faultOpts{callTimeout: 300 * time.Millisecond},
			fault: onActions(elbv2fake.Fault{Delay: time.Second}),
			op:    describe, code: awserr.CodeTimeout, want: "deadline exceeded", live: []netip.Addr{ipA}},
		{name: "TargetGroupNotFound", fault: onActions(notFound),
			op: describe, code: "TargetGroupNotFound", want: "not found; check target_group_arn", hard: true, live: []netip.Addr{ipA}},
		{name: "InvalidTarget", fault: onActions(elbv2fake.InvalidTarget(), reg),
			op: reg, code: "InvalidTarget", want: "must be a private address", hard: true, live: []netip.Addr{ipA}},
		// Full, with nothing stale to remove on the first pass; on the next one A is stale and goes first (the I3
		// exception), and the registration fails again: the group holds neither address until the fault clears.
		{name: "TooManyTargets", fault: onActions(elbv2fake.TooManyTargets(), reg),
			op: reg, code: "TooManyTargets", want: "TooManyTargets", live: nil, empty: true},
		{name: "AccessDenied (403)", fault: onActions(elbv2fake.AccessDenied("DescribeTargetHealth")),
			op: describe, code: "AccessDenied", want: "access denied; grant", hard: true, live: []netip.Addr{ipA}},
		{name: "expired credentials", fault: onActions(elbv2fake.ExpiredToken()),
			op: describe, code: "ExpiredToken", want: "credentials have expired", hard: true, live: []netip.Addr{ipA}},
		{name: "request expired (clock skew)", fault: onActions(elbv2fake.RequestExpired()),
			op: describe, code: "RequestExpired", want: "clock", hard: true, live: []netip.Addr{ipA}},
		{name: "Register succeeds, Deregister fails (500)", fault: onActions(elbv2fake.InternalFailure(), dereg),
			op: dereg, code: "InternalFailure", want: "deregistering", live: []netip.Addr{ipA, ipB}},
		{name: "Register succeeds, Deregister denied (403)", fault: onActions(elbv2fake.AccessDenied(dereg), dereg),
			op: dereg, code: "AccessDenied", want: "access denied; grant", hard: true, live: []netip.Addr{ipA, ipB}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runAWSCase(t, tc) })
	}
}

func runAWSCase(t *testing.T, tc awsCase) {
	f := newFaultEnv(t, tc.opts)
	f.serve(ipA)
	eng := f.engine(nil)
	f.converge(eng, 2)

	var on atomic.Bool
	on.Store(true)
	if tc.fault != nil {
		f.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
			if !on.Load() {
				return nil
			}
			return tc.fault(action)
		})
	} else {
		tc.burst(f.fake)
	}
	f.allowEmpty = tc.empty
	f.serve(ipB)

	persistent := tc.fault != nil && !tc.settles // every pass fails while the fault lasts
	var last engine.Report
	var failed []string
	for range 4 {
		last = f.pass(eng)
		if last.Err() != nil {
			failed = append(failed, last.Error)
		}
	}
	switch {
	case len(failed) == 0:
		t.Fatalf("no pass failed: the fault did not bite (last pass %+v)", last)
	case persistent && (last.Err() == nil || !strings.Contains(last.Error, tc.want)):
		t.Fatalf("last pass with the fault: %q, want an error saying %q", last.Error, tc.want)
	case !slices.ContainsFunc(failed, func(e string) bool { return strings.Contains(e, tc.want) }):
		t.Fatalf("failed passes %q: none says %q", failed, tc.want)
	}
	f.wantLiveAddrs(tc.live...)
	if got := f.value("ipsync_aws_api_calls_total", "operation="+tc.op, "code="+tc.code); got < 1 {
		t.Errorf("ipsync_aws_api_calls_total{operation=%q,code=%q} = %v, want > 0", tc.op, tc.code, got)
	}
	if got := f.value("ipsync_sync_runs_total", "sync=orders", "result=error"); got != float64(len(failed)) {
		t.Errorf("ipsync_sync_runs_total{result=error} = %v, want %d", got, len(failed))
	}
	level := zapcore.WarnLevel
	if tc.hard {
		level = zapcore.ErrorLevel
	}
	f.wantFailureLogged(level, tc.want)

	switch {
	case tc.hard:
		if !engine.IsHard(last.Err()) {
			t.Fatalf("%s must be hard: %v", tc.code, last.Err())
		}
		wantNotReady(t, eng, "needs a change", tc.want)
	case persistent:
		if engine.IsHard(last.Err()) {
			t.Fatalf("%s must be soft: %v", tc.code, last.Err())
		}
		if err := eng.Ready(); err != nil {
			t.Fatalf("soft: ready until the window passes: %v", err)
		}
		f.clock.Advance(readinessWindow)
		f.pass(eng)
		wantNotReady(t, eng, "no successful pass", tc.want)
	}

	on.Store(false) // the fault clears
	f.converge(eng, 4)
	if err := eng.Ready(); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

// TestStaleAnswerDuringSlowPass: DNS changes back to the old address while a slow registration is in flight in
// the pass that is about to deregister it. The deregistration must not act on the pass's stale answer.
func TestStaleAnswerDuringSlowPass(t *testing.T) {
	f := newFaultEnv(t, faultOpts{})
	f.serve(ipA)
	eng := f.engine(nil)
	f.converge(eng, 2)

	// Registering C fails once, so that in the next pass A is due for deregistration in the same pass as C's
	// registration; during that registration DNS fails back to A.
	var regs atomic.Int32
	f.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action != "RegisterTargets" {
			return nil
		}
		switch regs.Add(1) {
		case 1, 2: // both attempts of the first pass
			return &elbv2fake.Fault{Status: 500}
		case 3:
			f.dns.SetA(endpoint, 5, ipA.String()) // fail back while the call is in flight
			return &elbv2fake.Fault{Delay: 200 * time.Millisecond}
		}
		return nil
	})
	f.serve(ipC)
	if r := f.pass(eng); r.Err() == nil {
		t.Fatalf("first pass: want the registration failure, got %+v", r)
	}
	r := f.env.pass(eng) // registers C; A is stale for this pass's answer, but DNS serves A again
	f.serve(ipA)         // what DNS served when the pass ended
	f.check()
	if r.Err() != nil || len(r.Deregistered) != 0 {
		t.Fatalf("second pass: %+v, want C registered and A kept", r)
	}
	if f.logs.FilterMessage("not deregistering targets DNS returns again").Len() != 1 {
		t.Error("the log does not say why A stayed")
	}
	f.converge(eng, 3)
}

// TestRefusals: a target group ipsync cannot serve, or an address ipsync must not register (I10), is refused
// before any change, as a hard error that says what to change, with the message validate --remote gives.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spec  elbv2fake.TargetGroupSpec // "" VPCID: the env's VPC
		az    string
		addr  netip.Addr
		want  string
		fixed netip.Addr // DNS moving here clears the refusal (the zero Addr: only a configuration change does)
	}{
		{name: "not type ip", spec: elbv2fake.TargetGroupSpec{Name: "inst", Port: port, Protocol: "TCP", TargetType: "instance"},
			addr: ipA, want: "needs a target group of type ip"},
		{name: "not an NLB protocol", spec: elbv2fake.TargetGroupSpec{Name: "alb", Port: port, Protocol: "HTTP", TargetType: "ip"},
			addr: ipA, want: "not a Network Load Balancer protocol"},
		// I10 (issue 9 item 9): never a loopback address, nor a public one outside allowed_cidrs.
		{name: "loopback", addr: netip.MustParseAddr("127.0.0.1"), want: "127.0.0.1 is a loopback address", fixed: ipA},
		{name: "outside allowed_cidrs", addr: netip.MustParseAddr("192.0.2.10"), want: "outside allowed_cidrs", fixed: ipA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFaultEnv(t, faultOpts{})
			s := f.mapping()
			if tc.spec.Name != "" {
				tc.spec.VPCID = f.group.VPCID
				s.TargetGroupARN = f.fake.CreateTargetGroup(tc.spec)
			}
			if tc.az != "" {
				s.AvailabilityZone = tc.az
			}
			f.dns.SetA(endpoint, 5, tc.addr.String())
			eng := f.engine(nil, s)
			for range 2 {
				r := f.pass(eng)
				if !engine.IsHard(r.Err()) || !strings.Contains(r.Error, tc.want) {
					t.Fatalf("pass: %q, want a hard error saying %q", r.Error, tc.want)
				}
			}
			if muts := f.fake.MutatingCalls(); len(muts) != 0 {
				t.Fatalf("refused, yet mutating calls: %v", muts)
			}
			wantNotReady(t, eng, "needs a change", tc.want)
			if n := f.logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessage("sync pass failed").Len(); n != 2 {
				t.Errorf("%d error lines, want one per pass", n)
			}
			cfg := config.Defaults()
			cfg.Syncs = []config.Sync{s}
			res := engine.CheckRemote(context.Background(), cfg, f.res, func(context.Context, string, string) (engine.TargetGroup, error) { return f.rec, nil }, nil)
			if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), tc.want) {
				t.Errorf("validate --remote: %v, want %q", res[0].Err, tc.want)
			}
			if tc.fixed.IsValid() {
				f.dns.SetA(endpoint, 5, tc.fixed.String())
				if r := f.pass(eng); r.Err() != nil || len(r.Registered) != 1 {
					t.Fatalf("an address inside the VPC must be registered: %+v", r)
				}
				if err := eng.Ready(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestHardErrorKeepsTheLoop: in the daemon, a hard error does not stop the mapping: it is retried every
// poll.max (not every TTL), other mappings go on, and a fix made in AWS is picked up without a restart.
func TestHardErrorKeepsTheLoop(t *testing.T) {
	f := newFaultEnv(t, faultOpts{})
	other := newGroup(t, f)
	f.dns.SetA(endpoint, 0, ipA.String())
	f.dns.SetA("other.rds.test", 0, ipB.String())
	second := f.mapping()
	second.Name, second.Endpoint, second.TargetGroupARN = "other", "other.rds.test", other
	var denied atomic.Bool
	denied.Store(true)
	f.fake.SetFault(func(_ string, p url.Values) *elbv2fake.Fault {
		if denied.Load() && p.Get("TargetGroupArn") == f.group.ARN {
			fault := elbv2fake.AccessDenied("DescribeTargetHealth")
			return &fault
		}
		return nil
	})
	eng := f.wallClockEngine(config.Poll{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}, f.mapping(), second)
	runEngine(t, eng)

	testutil.Eventually(t, 5*time.Second, "the other mapping converged", func() bool { return len(f.fake.Targets(other)) == 1 })
	time.Sleep(2 * time.Second)
	denied403 := 0
	for _, c := range f.fake.Calls() {
		if c.Code == "AccessDenied" {
			denied403++
		}
	}
	// TTL 0 and poll.min 50 ms would mean ~40 passes in 2 s; poll.max 500 ms means ~5.
	if denied403 < 2 || denied403 > 10 {
		t.Errorf("%d denied calls in about 2 s: want a retry every poll.max (500 ms)", denied403)
	}
	if err := eng.Ready(); err == nil || !strings.Contains(err.Error(), "orders: needs a change") || strings.Contains(err.Error(), "other") {
		t.Fatalf("Ready() = %v: want only orders, as needing a change", err)
	}
	denied.Store(false) // the IAM policy is fixed
	testutil.Eventually(t, 3*time.Second, "the fix picked up", func() bool { return len(f.fake.Targets(f.group.ARN)) == 1 })
	testutil.Eventually(t, 2*time.Second, "ready", func() bool { return eng.Ready() == nil })
}

// TestTargetGroupDeleted: the group is deleted while ipsync runs. No retry brings it back: every pass fails
// hard with a message naming target_group_arn, the mapping keeps running, and another mapping is unaffected.
func TestTargetGroupDeleted(t *testing.T) {
	f := newFaultEnv(t, faultOpts{})
	other := newGroup(t, f)
	f.serve(ipA)
	f.dns.SetA("other.rds.test", 5, ipB.String())
	second := f.mapping()
	second.Name, second.Endpoint, second.TargetGroupARN = "other", "other.rds.test", other
	eng := f.engine(nil, f.mapping(), second)
	for range 2 {
		for _, r := range eng.RunOnce(context.Background()) {
			mustOK(t, r)
		}
		f.clock.Advance(5 * time.Second)
	}
	if !f.fake.DeleteTargetGroup(f.group.ARN) {
		t.Fatal("no group to delete")
	}
	f.serve(ipB) // noticed at the next change (or resync)
	f.dns.SetA("other.rds.test", 5, ipC.String())
	for range 3 {
		reps := eng.RunOnce(context.Background())
		f.clock.Advance(5 * time.Second)
		if !engine.IsHard(reps[0].Err()) || !strings.Contains(reps[0].Error, "check target_group_arn") {
			t.Fatalf("deleted group: %q, want a hard error naming target_group_arn", reps[0].Error)
		}
		mustOK(t, reps[1])
	}
	if got := f.fake.Targets(other); len(got) != 1 || got[0].IP != ipC {
		t.Fatalf("the other mapping: %v, want only %v", got, ipC)
	}
	if got := f.value("ipsync_aws_api_calls_total", "operation=DescribeTargetHealth", "code=TargetGroupNotFound"); got < 1 {
		t.Errorf("ipsync_aws_api_calls_total{code=TargetGroupNotFound} = %v", got)
	}
	wantNotReady(t, eng, "needs a change", "check target_group_arn")
}

func newGroup(t *testing.T, f *faultEnv) string {
	t.Helper()
	return f.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: fmt.Sprintf("other-%d", time.Now().UnixNano()%1e6),
		Port: port, Protocol: "TCP", VPCID: f.group.VPCID, TargetType: "ip"})
}
