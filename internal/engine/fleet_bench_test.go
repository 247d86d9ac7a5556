package engine_test

// BenchmarkFleet3000: 3,000 mappings in one process against the fake with AWS's published API limits enforced
// (I11). It runs the daemon loop (e.Run) with the real SDK clients, the API budget, and the resolver the commands
// build, and reports:
//
//   - cold start (empty target groups): time until every group holds its address, and Throttling answers received;
//   - steady state over 10 minutes: Throttling answers, AWS calls, mutating calls (must be 0, I9);
//   - a failover of one mapping while the 2,999 others idle: time from the DNS change to the new target registered;
//
// once with the budget (budget=on) and once without it (budget=off: no token buckets, resync_interval not
// stretched), for comparison.
//
// API time runs fleetSpeedup times faster than in production, so that the figures fit in minutes of real time:
// the fake's limits, the budget's rates and resync_interval are all multiplied (or divided) by fleetSpeedup,
// which keeps every ratio between them, and so the number of Throttling answers. Times driven by the API (cold
// start, the 10 minutes of steady state) are reported in API time ("-sim-") as real time x fleetSpeedup. DNS
// (TTL 5 s) and the failover run in real time.
//
//	go test -run='^$' -bench=Fleet3000 -benchtime=1x -timeout=60m ./internal/engine/

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil"
)

const (
	fleetMappings = 3000 // the default per-region target-group quota
	fleetSpeedup  = 10
	fleetSteady   = 10 * time.Minute // of API time
)

func BenchmarkFleet3000(b *testing.B) {
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("budget=%v", on), func(b *testing.B) {
			for range b.N {
				benchFleet(b, on)
			}
		})
	}
}

func benchFleet(b *testing.B, withBudget bool) {
	lim := elbv2fake.PublishedLimits()
	lim.DescribeRPS, lim.DescribeBurst = lim.DescribeRPS*fleetSpeedup, lim.DescribeBurst*fleetSpeedup
	lim.MutateRPS, lim.MutateBurst = lim.MutateRPS*fleetSpeedup, lim.MutateBurst*fleetSpeedup
	w := newBenchWorld(b, fleetMappings, elbv2fake.Options{Latency: benchLatency, Limits: &lim})
	cfg := w.cfg
	cfg.ResyncInterval = config.DefaultResyncInterval / fleetSpeedup
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{})
	opts := targets.FactoryOptions{APIOptions: []func(*middleware.Stack) error{m.AWSMiddleware()}}
	if withBudget {
		cfg.AWS.DescribeRPS, cfg.AWS.MutateRPS = config.DefaultDescribeRPS*fleetSpeedup, config.DefaultMutateRPS*fleetSpeedup
		opts.Budget = budget.New(budget.Rates{Describe: cfg.AWS.DescribeRPS, Mutate: cfg.AWS.MutateRPS}, m)
	} else {
		cfg.AWS.DescribeRPS = 1e9 // no stretch of resync_interval either: the engine as it was before the budget
	}
	client := w.fake.ClientWith(opts)
	res, err := engine.NewResolver(cfg, m, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := engine.New(cfg, engine.Deps{
		Resolver: res,
		Clients: func(context.Context, string, string) (engine.TargetGroup, error) {
			return client, nil
		},
		Metrics: m,
		Log:     zap.NewNop(),
	}, engine.Options{})
	sim := func(d time.Duration) float64 { return (d * fleetSpeedup).Seconds() }

	// Cold start.
	runEngine(b, e)
	took, ok := w.fleetConverged(20 * time.Minute)
	_, mutating, byAction := benchCountCalls(w.fake.Calls())
	coldThrottled := w.fake.ThrottledCalls()
	b.Logf("cold start: converged %v after %s (%.0f s of API time); %d Throttling answers; calls %v",
		ok, took.Round(time.Second), sim(took), coldThrottled, byAction)
	b.ReportMetric(sim(took), "cold-start-sim-s")
	b.ReportMetric(float64(coldThrottled), "cold-start-throttled")
	b.ReportMetric(float64(mutating), "cold-start-mutating-calls")
	if !ok {
		b.Logf("not converged: the steady state and failover figures are not measured")
		return
	}

	// Steady state: the fake's call log is read and dropped every few seconds, to bound its memory.
	w.fake.ResetCalls()
	throttled0 := w.fake.ThrottledCalls()
	var calls, steadyMutating int
	steadyActions := map[string]int{}
	for end := time.Now().Add(fleetSteady / fleetSpeedup); time.Now().Before(end); {
		time.Sleep(5 * time.Second)
		all, mut, by := benchCountCalls(w.fake.Calls())
		w.fake.ResetCalls()
		calls, steadyMutating = calls+all, steadyMutating+mut
		for k, v := range by {
			steadyActions[k] += v
		}
	}
	steadyThrottled := w.fake.ThrottledCalls() - throttled0
	b.Logf("steady state, %s of API time: %d Throttling answers, calls %v", fleetSteady, steadyThrottled, steadyActions)
	b.ReportMetric(float64(steadyThrottled), "steady-throttled")
	b.ReportMetric(float64(calls)/fleetSteady.Minutes(), "steady-calls/sim-min")
	b.ReportMetric(float64(steadyMutating), "steady-mutating-calls")
	if steadyMutating > 0 {
		b.Errorf("steady state made %d mutating calls (I9): %v", steadyMutating, steadyActions)
	}

	// One failover while the others idle.
	w.fake.ResetCalls()
	w.publish(0, 1)
	changed := time.Now()
	var register time.Duration
	benchWait(b, time.Minute, func() (bool, string) {
		at, ok := w.firstEffect(w.fake.Calls(), benchRegister, w.arns[0], benchAddr(0, 1))
		register = at.Sub(changed)
		return ok, fmt.Sprintf("%s not registered", benchAddr(0, 1))
	})
	b.Logf("failover of one mapping while %d idle: registered %s after the DNS change (goal: TTL + 1 s = %d s)",
		fleetMappings-1, register.Round(time.Millisecond), benchTTL+1)
	b.ReportMetric(register.Seconds(), "failover-register-s")
}

// fleetConverged waits up to timeout for every group to hold its address of generation 0 and reports whether it
// did, and when.
func (w *benchWorld) fleetConverged(timeout time.Duration) (time.Duration, bool) {
	start := time.Now()
	ok := testutil.Wait(timeout, func() bool {
		for i, arn := range w.arns {
			ts := w.fake.Targets(arn)
			if len(ts) != 1 || ts[0].IP != benchAddr(i, 0) {
				return false
			}
		}
		return true
	})
	return time.Since(start), ok
}
