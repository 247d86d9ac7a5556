package engine_test

// Each metric family of the README's Metrics table is moved by a real scenario — a failover, a DNS outage, AWS throttling — run by the
// real engine against the loopback DNS server and the ELBv2 fake through the real SDK with ipsync's metrics
// middleware. These tests prove the engine calls the metrics at the right moments; internal/metrics tests the
// metrics themselves.

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
	"github.com/ipsync/ipsync/internal/testutil/promtest"
)

// metricsEnv is the engine test world plus metrics: a registry, the SDK metrics middleware on the engine's AWS
// client, and the fake on the test's clock so that health checks pass and targets drain without sleeping.
type metricsEnv struct {
	*env
	reg *prometheus.Registry
	m   *metrics.Metrics
}

func newMetricsEnv(t *testing.T, opts elbv2fake.Options) *metricsEnv {
	t.Helper()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	opts.Now = clk.Now
	e := newFakeEnv(t, opts)
	e.clock = clk
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "test", Commit: "test"})
	// Two attempts: enough to show a retried throttle, with at most one SDK backoff (real time) per call.
	e.rec = &recorder{TargetGroup: awstest.Client(t, e.group.ARN, targets.FactoryOptions{
		MaxAttempts: 2,
		APIOptions:  []func(*middleware.Stack) error{m.AWSMiddleware()},
	})}
	return &metricsEnv{env: e, reg: reg, m: m}
}

// metricsEngine is env.engine with metrics, on the test's clock, or on now when given (durations then are real).
func (e *metricsEnv) metricsEngine(opts engine.Options, now func() time.Time) *engine.Engine {
	if now == nil {
		now = e.clock.Now
	}
	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{e.mapping()}
	cfg.DNS.Servers = []string{e.dns.Addr()}
	core, logs := observer.New(zap.InfoLevel)
	e.logs = logs
	return engine.New(cfg, engine.Deps{
		Resolver: e.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil },
		Metrics:  e.m,
		Log:      zap.New(core),
		Now:      now,
	}, opts)
}

// series returns the series of family name that carry every label given as "name=value".
func (e *metricsEnv) series(name string, labels ...string) []*dto.Metric {
	e.t.Helper()
	return promtest.Series(e.t, e.reg, name, labels...)
}

// value sums the matching series: counter or gauge values, histogram sample counts.
func (e *metricsEnv) value(name string, labels ...string) float64 {
	e.t.Helper()
	return promtest.Sum(e.t, e.reg, name, labels...)
}

// histSum sums the matching histograms' sample sums, in seconds.
func (e *metricsEnv) histSum(name string, labels ...string) float64 {
	e.t.Helper()
	var sum float64
	for _, m := range e.series(name, labels...) {
		sum += m.GetHistogram().GetSampleSum()
	}
	return sum
}

// snapshot is every value a test compares, read at one moment.
type snapshot map[string]float64

func (e *metricsEnv) snap(keys map[string][]string) snapshot {
	s := snapshot{}
	for k, sel := range keys {
		s[k] = e.value(sel[0], sel[1:]...)
	}
	return s
}

const orders = "sync=orders" // the label of the mapping these tests run

// TestMetricsFailover: a Multi-AZ failover from A to B, with NLB health checks taking 30 s and draining 20 s,
// moves every per-mapping metric the way an operator reading the dashboard expects.
func TestMetricsFailover(t *testing.T) {
	e := newMetricsEnv(t, elbv2fake.Options{HealthyAfter: 30 * time.Second, DrainFor: 20 * time.Second})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.metricsEngine(engine.Options{}, nil)

	// Start-up: A is registered, then becomes healthy; the group settles in sync.
	mustOK(t, e.pass(eng))
	if got := e.value("ipsync_in_sync", orders); got != 0 {
		t.Errorf("in_sync after the pass that registered A = %v, want 0", got)
	}
	for range 14 { // 70 s: past HealthyAfter and a resync
		mustOK(t, e.pass(eng))
	}
	keys := map[string][]string{
		"address_changes":  {"ipsync_address_changes_total", orders},
		"registrations":    {"ipsync_registrations_total", orders},
		"deregistrations":  {"ipsync_deregistrations_total", orders},
		"conv_registered":  {"ipsync_convergence_seconds", orders, "stage=registered"},
		"conv_healthy":     {"ipsync_convergence_seconds", orders, "stage=healthy"},
		"runs_changed":     {"ipsync_sync_runs_total", orders, "result=changed"},
		"runs_unchanged":   {"ipsync_sync_runs_total", orders, "result=unchanged"},
		"runs_error":       {"ipsync_sync_runs_total", orders, "result=error"},
		"sync_duration":    {"ipsync_sync_duration_seconds", orders},
		"dns_success":      {"ipsync_dns_queries_total", orders, "result=success"},
		"dns_errors":       {"ipsync_dns_queries_total", orders, "result=timeout"},
		"dns_duration":     {"ipsync_dns_query_duration_seconds", orders},
		"api_register":     {"ipsync_aws_api_calls_total", "operation=RegisterTargets", "code=OK"},
		"api_deregister":   {"ipsync_aws_api_calls_total", "operation=DeregisterTargets", "code=OK"},
		"api_describe":     {"ipsync_aws_api_calls_total", "operation=DescribeTargetHealth", "code=OK"},
		"api_register_dur": {"ipsync_aws_api_call_duration_seconds", "operation=RegisterTargets"},
	}
	before := e.snap(keys)
	if e.value("ipsync_in_sync", orders) != 1 || e.value("ipsync_targets", orders, "state=healthy") != 1 {
		t.Fatalf("before the failover: in_sync %v, healthy targets %v; want 1 and 1",
			e.value("ipsync_in_sync", orders), e.value("ipsync_targets", orders, "state=healthy"))
	}
	if before["conv_registered"] != 0 || before["conv_healthy"] != 0 {
		t.Fatalf("the start-up registration is no failover, but convergence counted %v registered, %v healthy",
			before["conv_registered"], before["conv_healthy"])
	}

	// The failover: B is registered at once, A deregistered after deregister_after resolutions without it.
	e.dns.SetA(endpoint, 5, ipB.String())
	queries := e.dns.Queries()
	var inSync []float64
	var targetsAfterDeregister map[string]float64
	for range 16 { // 80 s: B healthy after 30 s and read again at the next resync
		r := mustOK(t, e.pass(eng))
		inSync = append(inSync, e.value("ipsync_in_sync", orders))
		if len(r.Deregistered) > 0 {
			targetsAfterDeregister = map[string]float64{}
			for _, st := range []string{"initial", "healthy", "draining"} {
				targetsAfterDeregister[st] = e.value("ipsync_targets", orders, "state="+st)
			}
		}
	}
	after := e.snap(keys)
	queries = e.dns.Queries() - queries
	moved := func(k string) float64 { return after[k] - before[k] }

	t.Run("address_changes_total", func(t *testing.T) {
		if moved("address_changes") != 1 {
			t.Errorf("moved by %v, want 1 failover", moved("address_changes"))
		}
	})
	t.Run("registrations_total", func(t *testing.T) {
		if moved("registrations") != 1 {
			t.Errorf("moved by %v, want 1 (B)", moved("registrations"))
		}
	})
	t.Run("deregistrations_total", func(t *testing.T) {
		if moved("deregistrations") != 1 {
			t.Errorf("moved by %v, want 1 (A)", moved("deregistrations"))
		}
	})
	t.Run("convergence_seconds", func(t *testing.T) {
		if moved("conv_registered") != 1 || moved("conv_healthy") != 1 {
			t.Fatalf("observations: registered %v, healthy %v; want 1 each", moved("conv_registered"), moved("conv_healthy"))
		}
		// The test clock stands still within a pass: B is registered in the pass that saw the change.
		if got := e.histSum("ipsync_convergence_seconds", orders, "stage=registered"); got != 0 {
			t.Errorf("registered after %vs, want 0 on the test clock", got)
		}
		// Healthy after HealthyAfter (30 s), seen at the next read of the group: at most a resync later.
		if got := e.histSum("ipsync_convergence_seconds", orders, "stage=healthy"); got < 30 || got > 30+60+5 {
			t.Errorf("healthy after %vs, want between 30 s and 95 s", got)
		}
	})
	t.Run("in_sync", func(t *testing.T) {
		if inSync[0] != 0 || inSync[len(inSync)-1] != 1 {
			t.Errorf("in_sync per pass after the change %v: want 0 at once, 1 at the end", inSync)
		}
	})
	t.Run("targets", func(t *testing.T) {
		if targetsAfterDeregister == nil {
			t.Fatal("A was never deregistered")
		}
		if want := map[string]float64{"initial": 1, "healthy": 0, "draining": 1}; !equalMaps(targetsAfterDeregister, want) {
			t.Errorf("right after deregistering A: %v, want %v", targetsAfterDeregister, want)
		}
		for st, want := range map[string]float64{"healthy": 1, "initial": 0, "draining": 0} {
			if got := e.value("ipsync_targets", orders, "state="+st); got != want {
				t.Errorf("at the end, %s = %v, want %v (B healthy, A drained)", st, got, want)
			}
		}
	})
	t.Run("resolved_addresses", func(t *testing.T) {
		if got := e.value("ipsync_resolved_addresses", orders); got != 1 {
			t.Errorf("= %v, want 1", got)
		}
	})
	t.Run("sync_runs_total", func(t *testing.T) {
		if moved("runs_changed") != 2 || moved("runs_unchanged") != 14 || moved("runs_error") != 0 {
			t.Errorf("changed +%v, unchanged +%v, error +%v; want +2 (register B, deregister A), +14, +0",
				moved("runs_changed"), moved("runs_unchanged"), moved("runs_error"))
		}
	})
	t.Run("sync_duration_seconds", func(t *testing.T) {
		if moved("sync_duration") != 16 {
			t.Errorf("observations +%v, want one per pass (16)", moved("sync_duration"))
		}
	})
	t.Run("last_success_timestamp_seconds", func(t *testing.T) {
		// Wall-clock time, the time() Prometheus compares it with.
		got := time.Unix(int64(e.value("ipsync_last_success_timestamp_seconds", orders)), 0)
		if time.Since(got) > time.Minute || time.Until(got) > time.Second {
			t.Errorf("= %v, want now", got)
		}
	})
	t.Run("dns_queries_total", func(t *testing.T) {
		// Every resolution is counted, and each one is a single query to the one DNS server here.
		if moved("dns_success") < 16 || moved("dns_success") != float64(queries) || moved("dns_errors") != 0 {
			t.Errorf("success +%v, timeout +%v; want one per DNS query the server answered (%d), at least one per pass (16)",
				moved("dns_success"), moved("dns_errors"), queries)
		}
		if moved("dns_duration") != moved("dns_success") {
			t.Errorf("duration observations +%v, want one per resolution (%v)", moved("dns_duration"), moved("dns_success"))
		}
	})
	t.Run("aws_api_calls_total", func(t *testing.T) {
		if moved("api_register") != 1 || moved("api_deregister") != 1 || moved("api_describe") < 2 {
			t.Errorf("RegisterTargets +%v, DeregisterTargets +%v, DescribeTargetHealth +%v; want +1, +1, >= +2",
				moved("api_register"), moved("api_deregister"), moved("api_describe"))
		}
		if moved("api_register_dur") != 1 {
			t.Errorf("aws_api_call_duration_seconds{RegisterTargets} observations +%v, want +1", moved("api_register_dur"))
		}
	})
	t.Run("build_info", func(t *testing.T) {
		if got := e.value("ipsync_build_info", "version=test"); got != 1 {
			t.Errorf("= %v, want 1", got)
		}
	})
}

func equalMaps(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestMetricsDNSOutage: DNS timing out and failing moves dns_queries_total by error kind and sync_runs_total
// {result="error"}; the last success time and in_sync keep their values, so the alerts on them see the outage
// as what it is (no successful pass), not as drift.
func TestMetricsDNSOutage(t *testing.T) {
	e := newMetricsEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.metricsEngine(engine.Options{}, time.Now) // real durations; each pass resolves (no cache in RunOnce)
	mustOK(t, e.pass(eng))
	mustOK(t, e.pass(eng))
	lastSuccess := e.value("ipsync_last_success_timestamp_seconds", orders)
	time.Sleep(1100 * time.Millisecond) // the success time has a 1 s resolution on the wall clock

	for _, f := range []struct {
		fault  dnstest.Fault
		result string
	}{{dnstest.FaultDrop, "timeout"}, {dnstest.FaultServFail, "servfail"}, {dnstest.FaultNXDomain, "nxdomain"}} {
		e.dns.SetFault(f.fault)
		before := e.value("ipsync_dns_queries_total", orders, "result="+f.result)
		errors := e.value("ipsync_sync_runs_total", orders, "result=error")
		for range 3 {
			if r := e.pass(eng); r.Err() == nil {
				t.Fatalf("%v: the pass succeeded", f.fault)
			}
		}
		if got := e.value("ipsync_dns_queries_total", orders, "result="+f.result) - before; got != 3 {
			t.Errorf("%v: dns_queries_total{result=%q} +%v, want +3", f.fault, f.result, got)
		}
		if got := e.value("ipsync_sync_runs_total", orders, "result=error") - errors; got != 3 {
			t.Errorf("%v: sync_runs_total{result=\"error\"} +%v, want +3", f.fault, got)
		}
	}
	if got := e.value("ipsync_dns_queries_total", orders, "result=success"); got != 2 {
		t.Errorf("dns_queries_total{result=\"success\"} = %v, want 2 (the passes before the outage)", got)
	}
	if got := e.value("ipsync_last_success_timestamp_seconds", orders); got != lastSuccess {
		t.Errorf("last success time moved during the outage: %v -> %v", lastSuccess, got)
	}
	if got := e.value("ipsync_in_sync", orders); got != 1 {
		t.Errorf("in_sync = %v during the outage, want its last known 1", got)
	}
	// The timeouts took the resolver's timeout (300 ms here); the histogram saw them.
	if got := e.histSum("ipsync_dns_query_duration_seconds", orders); got < 3*0.3 {
		t.Errorf("dns_query_duration_seconds sum %vs, want at least the three 300 ms timeouts", got)
	}

	e.dns.SetFault(dnstest.FaultNone)
	mustOK(t, e.pass(eng))
	if got := e.value("ipsync_last_success_timestamp_seconds", orders); got <= lastSuccess {
		t.Errorf("last success time %v did not move after DNS recovered (was %v)", got, lastSuccess)
	}
}

// TestMetricsThrottling: ELBv2 throttling is counted per attempt under its AWS error code, whether the SDK's
// retry absorbs it (the pass succeeds) or not (the pass fails).
func TestMetricsThrottling(t *testing.T) {
	e := newMetricsEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.metricsEngine(engine.Options{}, nil)
	mustOK(t, e.pass(eng))
	throttled := func(op string) float64 {
		return e.value("ipsync_aws_api_calls_total", "operation="+op, "code=Throttling")
	}

	// One throttled attempt, retried: the pass (a failover) succeeds, and the metric shows the throttle.
	e.fake.FailNext("RegisterTargets", 1, elbv2fake.Fault{Status: 400, Code: "Throttling", Message: "Rate exceeded"})
	e.dns.SetA(endpoint, 5, ipB.String())
	mustOK(t, e.pass(eng))
	if got := throttled("RegisterTargets"); got != 1 {
		t.Errorf("aws_api_calls_total{RegisterTargets,Throttling} = %v, want 1", got)
	}
	if got := e.value("ipsync_aws_api_calls_total", "operation=RegisterTargets", "code=OK"); got != 2 {
		t.Errorf("aws_api_calls_total{RegisterTargets,OK} = %v, want 2 (A at start, B on the retry)", got)
	}

	// Throttled on every attempt: the pass fails after the SDK's attempts, each one counted.
	e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action == "DeregisterTargets" {
			return &elbv2fake.Fault{Status: 400, Code: "Throttling", Message: "Rate exceeded"}
		}
		return nil
	})
	if r := e.pass(eng); r.Err() == nil || !strings.Contains(r.Error, "Throttling") {
		t.Fatalf("the pass deregistering A must fail with Throttling: %+v", r)
	}
	if got := throttled("DeregisterTargets"); got != 2 {
		t.Errorf("aws_api_calls_total{DeregisterTargets,Throttling} = %v, want 2 (both attempts)", got)
	}
	if got := e.value("ipsync_sync_runs_total", orders, "result=error"); got != 1 {
		t.Errorf("sync_runs_total{result=\"error\"} = %v, want 1", got)
	}
	if got := e.value("ipsync_aws_api_call_duration_seconds", "operation=DeregisterTargets"); got != 2 {
		t.Errorf("aws_api_call_duration_seconds{DeregisterTargets} observations = %v, want 2", got)
	}

	e.fake.SetFault(nil)
	mustOK(t, e.pass(eng))
	e.wantLive(ipB)
}
