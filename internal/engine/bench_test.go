package engine_test

// Benchmarks for the speed and cost goals (each benchmark's comment states its goal). They measure and report; they never fail on a figure,
// only on wrong behaviour (a mapping that never converges, a mutating call in a steady-state pass).
//
//	go test -run='^$' -bench=. -benchtime=1x ./internal/engine/
//
// Everything talks real protocols on loopback: DNS from dnstest, AWS from elbv2fake through the real SDK clients.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/testutil"
)

const (
	benchTTL        = 5 // seconds, as RDS instance endpoints answer
	benchVPC        = "vpc-0be4c0000000000a1"
	benchCIDR       = "10.0.0.0/8" // every benchmark address is inside the VPC: availability_zone auto omits the AZ
	benchPort       = 5432
	benchLatency    = 20 * time.Millisecond // the goals are stated for an endpoint with 20 ms latency
	benchMappings   = 1000
	benchRegister   = "RegisterTargets"
	benchDeregister = "DeregisterTargets"
)

// benchWorld is one fake AWS endpoint and one DNS server holding n mappings, each with its own endpoint name and its
// own target group, and the daemon configuration for them (the defaults: poll 1s-30s, deregister_after 2).
// In authoritative mode the DNS server is the recursive one of a delegation whose two child zone servers hold
// the endpoints' zone, and the configuration says dns.mode: authoritative.
type benchWorld struct {
	fake      *elbv2fake.Server
	dns       *dnstest.Server
	zone      *dnstest.Delegation // nil in recursive mode
	cfg       *config.Config
	fakeOpts  elbv2fake.Options
	endpoints []string
	arns      []string
}

func newBenchWorld(tb testing.TB, n int, opts elbv2fake.Options) *benchWorld {
	return newBenchWorldMode(tb, n, opts, config.DNSModeRecursive)
}

func newBenchWorldMode(tb testing.TB, n int, opts elbv2fake.Options, mode string) *benchWorld {
	tb.Helper()
	fake := elbv2fake.Start(tb, opts)
	if err := fake.AddVPC(benchVPC, benchCIDR); err != nil {
		tb.Fatal(err)
	}

	w := &benchWorld{fake: fake, cfg: config.Defaults(), fakeOpts: opts}
	if mode == config.DNSModeAuthoritative {
		d, err := dnstest.NewDelegation("us-east-1.rds.amazonaws.com", "c9bench.us-east-1.rds.amazonaws.com", 2, 3600)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = d.Close() })
		w.zone, w.dns = d, d.Recursive
	} else {
		w.dns = dnstest.Start(tb)
	}
	w.cfg.DNS.Mode = mode
	w.cfg.DNS.Servers = []string{w.dns.Addr()}
	w.cfg.Listen = ""
	for i := range n {
		name := fmt.Sprintf("db%04d", i)
		endpoint := name + ".c9bench.us-east-1.rds.amazonaws.com"
		arn := fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "tg-" + name, Port: benchPort, VPCID: benchVPC})
		if arn == "" {
			tb.Fatalf("elbv2fake refused target group tg-%s", name)
		}
		w.endpoints = append(w.endpoints, endpoint)
		w.publish(i, 0)
		s := config.DefaultSync()
		s.Name, s.Endpoint, s.TargetGroupARN = name, endpoint, arn
		w.cfg.Syncs = append(w.cfg.Syncs, s)
		w.arns = append(w.arns, arn)
	}
	if err := w.cfg.Validate(); err != nil {
		tb.Fatalf("benchmark configuration: %v", err)
	}
	return w
}

// publish makes mapping i's endpoint answer its address of generation gen, on every DNS server at once.
func (w *benchWorld) publish(i, gen int) {
	w.dns.SetA(w.endpoints[i], benchTTL, benchAddr(i, gen).String())
	if w.zone != nil {
		w.zone.SetA(w.endpoints[i], benchTTL, benchAddr(i, gen).String())
	}
}

// benchAddr is mapping i's address in failover generation gen: unique per (i, gen) for i < 62,500, gen < 200.
func benchAddr(i, gen int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(1 + gen%200), byte(i / 250), byte(1 + i%250)})
}

// engine builds the real engine over w with real metrics (they are part of the daemon's cost) and no logs.
func (w *benchWorld) engine(tb testing.TB, opts engine.Options, now func() time.Time) *engine.Engine {
	tb.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{})
	var nsAddr func(netip.Addr) string
	if w.zone != nil {
		nsAddr = w.zone.Addrs.Lookup
	}
	res, err := engine.NewResolver(w.cfg, m, nsAddr)
	if err != nil {
		tb.Fatal(err)
	}
	client := w.fake.Client(m.AWSMiddleware())
	return engine.New(w.cfg, engine.Deps{
		Resolver: res,
		Clients: func(context.Context, string, string) (engine.TargetGroup, error) {
			return client, nil
		},
		Metrics: m,
		Log:     zap.NewNop(),
		Now:     now,
	}, opts)
}

// benchWait waits until cond holds, or fails the benchmark with cond's last message.
func benchWait(tb testing.TB, timeout time.Duration, cond func() (bool, string)) {
	tb.Helper()
	var last string
	if !testutil.Wait(timeout, func() (ok bool) { ok, last = cond(); return ok }) {
		tb.Fatalf("not done after %s: %s", timeout, last)
	}
}

// waitRegistered waits until each mapping's target group holds exactly its address of generation gen, live.
func (w *benchWorld) waitRegistered(tb testing.TB, gen int, timeout time.Duration) {
	tb.Helper()
	benchWait(tb, timeout, func() (bool, string) {
		for i, arn := range w.arns {
			var live []netip.Addr
			for _, t := range w.fake.Targets(arn) {
				if t.State != elbv2fake.StateDraining {
					live = append(live, t.IP)
				}
			}
			if want := []netip.Addr{benchAddr(i, gen)}; !slices.Equal(live, want) {
				return false, fmt.Sprintf("%s: live targets %v, want %v", w.endpoints[i], live, want)
			}
		}
		return true, ""
	})
}

// benchCallTargets returns the target group and the target IPs of a Register/DeregisterTargets call.
func benchCallTargets(c elbv2fake.Call) (string, []netip.Addr) {
	var ips []netip.Addr
	for k, vs := range c.Params {
		if strings.HasPrefix(k, "Targets.member.") && strings.HasSuffix(k, ".Id") && len(vs) > 0 {
			if ip, err := netip.ParseAddr(vs[0]); err == nil {
				ips = append(ips, ip)
			}
		}
	}
	return c.Params.Get("TargetGroupArn"), ips
}

// firstEffect returns when the first successful call of action on arn naming ip took effect: the fake applies a
// call after its Latency, so that is Call.At (arrival) + Latency.
func (w *benchWorld) firstEffect(calls []elbv2fake.Call, action, arn string, ip netip.Addr) (time.Time, bool) {
	for _, c := range calls {
		if c.Action != action || c.Code != "" {
			continue
		}
		if tg, ips := benchCallTargets(c); tg == arn && slices.Contains(ips, ip) {
			return c.At.Add(w.fakeOpts.Latency), true
		}
	}
	return time.Time{}, false
}

func benchCountCalls(calls []elbv2fake.Call) (all, mutating int, byAction map[string]int) {
	byAction = map[string]int{}
	for _, c := range calls {
		byAction[c.Action]++
		if c.Action == benchRegister || c.Action == benchDeregister {
			mutating++
		}
	}
	return len(calls), mutating, byAction
}

// benchPercentile is the nearest-rank percentile p (0-100) of sorted.
func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func benchReportDurations(b *testing.B, what string, ds []time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	b.ReportMetric(benchPercentile(s, 50).Seconds(), "p50-"+what+"-s")
	b.ReportMetric(benchPercentile(s, 99).Seconds(), "p99-"+what+"-s")
	b.ReportMetric(s[len(s)-1].Seconds(), "max-"+what+"-s")
}

// BenchmarkFailoverConvergence measures the recursive-mode speed goal with the daemon loop (e.Run): from the moment DNS
// changes to the new address registered (goal TTL + 1 s = 6 s, p99) and to the old one deregistered (goal
// 2 x TTL + 1 s = 11 s). Many mappings fail over in one iteration, each at a random moment within one TTL, so
// their changes fall at random points of their poll cycles. Times come from the fake's call log, not polling.
func BenchmarkFailoverConvergence(b *testing.B) {
	const mappings = 100
	w := newBenchWorld(b, mappings, elbv2fake.Options{Latency: benchLatency, HealthyAfter: 2 * time.Second, DrainFor: 5 * time.Second})
	runEngine(b, w.engine(b, engine.Options{}, nil))
	w.waitRegistered(b, 0, 30*time.Second)

	var register, deregister []time.Duration
	var calls, mutating int
	b.ResetTimer()
	for i := range b.N {
		reg, dereg, c, mut := w.failoverRound(b, i+1, func() time.Duration { return rand.N(benchTTL * time.Second) })
		register, deregister = append(register, reg...), append(deregister, dereg...)
		calls, mutating = calls+c, mutating+mut
	}
	b.StopTimer()
	benchReportDurations(b, "register", register)
	benchReportDurations(b, "deregister", deregister)
	b.ReportMetric(float64(len(register)), "failovers")
	b.ReportMetric(float64(calls)/float64(len(register)), "aws-calls/failover")
	b.ReportMetric(float64(mutating)/float64(len(register)), "mutating-calls/failover")
}

// failoverRound changes every mapping's address from generation gen-1 to gen, each after its own delay (one
// call of delay per mapping, in mapping order), and waits until every new address is registered and every old
// one deregistered. It returns per mapping the time from its DNS change to each, and the AWS calls made in the
// round.
func (w *benchWorld) failoverRound(b *testing.B, gen int, delay func() time.Duration) (register, deregister []time.Duration, calls, mutating int) {
	b.Helper()
	n := len(w.arns)
	w.fake.ResetCalls()
	changed := make([]time.Time, n)
	var wg sync.WaitGroup
	for i := range n {
		d := delay()
		wg.Go(func() {
			time.Sleep(d)
			w.publish(i, gen)
			changed[i] = time.Now()
		})
	}
	wg.Wait()

	register, deregister = make([]time.Duration, n), make([]time.Duration, n)
	var all []elbv2fake.Call
	benchWait(b, 60*time.Second, func() (bool, string) {
		all = w.fake.Calls()
		for i, arn := range w.arns {
			reg, ok := w.firstEffect(all, benchRegister, arn, benchAddr(i, gen))
			if !ok {
				return false, fmt.Sprintf("%s: %s not registered", w.endpoints[i], benchAddr(i, gen))
			}
			dereg, ok := w.firstEffect(all, benchDeregister, arn, benchAddr(i, gen-1))
			if !ok {
				return false, fmt.Sprintf("%s: %s not deregistered", w.endpoints[i], benchAddr(i, gen-1))
			}
			register[i], deregister[i] = reg.Sub(changed[i]), dereg.Sub(changed[i])
		}
		return true, ""
	})
	calls, mutating, _ = benchCountCalls(all)
	return register, deregister, calls, mutating
}

// BenchmarkFailoverDNSModes measures the authoritative-mode speed goal against recursive mode in one run: the
// same 100 failovers (two rounds over 50 mappings, each changing at the same random moment within one TTL in
// both modes) with poll.min 1s and deregister_after 2, from the DNS change to the new target registered and to
// the old one deregistered. In authoritative mode the change is published by the zone's two name servers (the
// endpoints' TTL, 5 s, is ignored); in recursive mode by the configured server, asked when the TTL ends.
// Goal in authoritative mode: registered p50 <= 0.7 s, p99 <= 1.5 s; old target gone p99 <= 3 s.
func BenchmarkFailoverDNSModes(b *testing.B) {
	const mappings, rounds = 50, 2
	seed := rand.Uint64()
	for _, mode := range []string{config.DNSModeRecursive, config.DNSModeAuthoritative} {
		b.Run("mode="+mode, func(b *testing.B) {
			w := newBenchWorldMode(b, mappings, elbv2fake.Options{Latency: benchLatency, HealthyAfter: 2 * time.Second, DrainFor: 5 * time.Second}, mode)
			runEngine(b, w.engine(b, engine.Options{}, nil))
			w.waitRegistered(b, 0, 30*time.Second)
			delays := rand.New(rand.NewPCG(seed, 0)) // the same failovers in both modes

			var register, deregister []time.Duration
			var calls int
			b.ResetTimer()
			for i := range rounds * b.N {
				reg, dereg, c, _ := w.failoverRound(b, i+1, func() time.Duration { return time.Duration(delays.Int64N(int64(benchTTL * time.Second))) })
				register, deregister, calls = append(register, reg...), append(deregister, dereg...), calls+c
			}
			b.StopTimer()
			benchReportDurations(b, "register", register)
			benchReportDurations(b, "deregister", deregister)
			b.ReportMetric(float64(len(register)), "failovers")
			b.ReportMetric(float64(calls)/float64(len(register)), "aws-calls/failover")
		})
	}
}

// BenchmarkFullPass1000 measures a cold start's cost: one RunOnce over 1,000 mappings on empty target groups
// (resolve, describe, register) against an endpoint with 20 ms latency, goal 10 s; then a steady-state pass with
// nothing changed, which must make no mutating call (I9). ns/op is the first pass only. Sub-benchmarks vary
// Options.Concurrency; 64 is the engine's default (passed as 0).
func BenchmarkFullPass1000(b *testing.B) {
	for _, c := range []int{64, 16, 32, 128, 256} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			if c == 64 {
				c = 0 // the engine's default
			}
			benchFullPass(b, benchMappings, c)
		})
	}
}

func benchFullPass(b *testing.B, n, concurrency int) {
	var first, steady time.Duration
	var firstCalls, steadyCalls, steadyMutating int
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		w := newBenchWorld(b, n, elbv2fake.Options{Latency: benchLatency})
		e := w.engine(b, engine.Options{Concurrency: concurrency}, nil)
		b.StartTimer()

		start := time.Now()
		reps := e.RunOnce(ctx)
		first += time.Since(start)
		b.StopTimer()
		benchCheckReports(b, reps, engine.ResultChanged)
		all, _, byAction := benchCountCalls(w.fake.Calls())
		firstCalls += all
		b.Logf("first pass calls: %v", byAction)

		w.fake.ResetCalls()
		start = time.Now()
		reps = e.RunOnce(ctx)
		steady += time.Since(start)
		benchCheckReports(b, reps, engine.ResultUnchanged)
		all, mut, byAction := benchCountCalls(w.fake.Calls())
		steadyCalls, steadyMutating = steadyCalls+all, steadyMutating+mut
		if mut > 0 {
			b.Errorf("steady-state pass made %d mutating calls (I9): %v", mut, byAction)
		}
	}
	per := func(v float64) float64 { return v / float64(b.N) }
	b.ReportMetric(per(first.Seconds()), "s/pass")
	b.ReportMetric(per(float64(firstCalls)), "calls/pass")
	b.ReportMetric(per(steady.Seconds()), "steady-s/pass")
	b.ReportMetric(per(float64(steadyCalls)), "steady-calls/pass")
	b.ReportMetric(per(float64(steadyMutating)), "steady-mutating/pass")
}

// benchCheckReports fails the benchmark unless every mapping's pass ended with want.
func benchCheckReports(b *testing.B, reps []engine.Report, want string) {
	b.Helper()
	bad := 0
	for _, r := range reps {
		if r.Result != want {
			if bad < 3 {
				b.Errorf("%s: result %s, want %s (%s)", r.Sync, r.Result, want, r.Error)
			}
			bad++
		}
	}
	if bad > 0 {
		b.Fatalf("%d of %d mappings did not end %s", bad, len(reps), want)
	}
}

// benchClock is a clock the benchmark moves by hand, so idle minutes pass in seconds.
type benchClock struct{ ns atomic.Int64 }

func newBenchClock(t time.Time) *benchClock {
	c := &benchClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *benchClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *benchClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// benchHeapInuse is the heap in use after a full GC.
func benchHeapInuse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func benchMiB[T uint64 | int64](v T) float64 { return float64(v) / (1 << 20) }

// BenchmarkHeap1000 measures the in-process heap of the engine (with its SDK clients and metrics) holding 1,000
// mappings: after the first pass, and after 3 idle minutes-equivalent (36 passes 5 s apart on a fake engine
// clock, so the 60 s resync reads happen too). The figures are heap in use after GC minus the same figure
// before the engine was built (the fake endpoint and DNS server live in this process too); the fake's call
// log is dropped before each reading.
func BenchmarkHeap1000(b *testing.B) {
	ctx := context.Background()
	var first, idle, total float64
	for range b.N {
		w := newBenchWorld(b, benchMappings, elbv2fake.Options{})
		clock := newBenchClock(time.Now())
		base := benchHeapInuse()
		e := w.engine(b, engine.Options{}, clock.Now)
		benchCheckReports(b, e.RunOnce(ctx), engine.ResultChanged)
		w.fake.ResetCalls()
		after := benchHeapInuse()
		for range 36 {
			clock.Add(benchTTL * time.Second)
			benchCheckReports(b, e.RunOnce(ctx), engine.ResultUnchanged)
		}
		w.fake.ResetCalls()
		later := benchHeapInuse()
		first += benchMiB(int64(after) - int64(base))
		idle += benchMiB(int64(later) - int64(base))
		total += benchMiB(later)
		runtime.KeepAlive(e)
	}
	b.ReportMetric(first/float64(b.N), "heap-first-MiB")
	b.ReportMetric(idle/float64(b.N), "heap-idle-MiB")
	b.ReportMetric(total/float64(b.N), "heap-process-MiB")
}

// BenchmarkIdleProcess measures the real binary (`ipsync run` as a child process, configured only through its
// environment as on ECS): VmRSS after it settled and CPU over an idle window, with 1, 1,000 and 3,000 mappings.
// The idle goals: RSS < 64 MiB with 1,000 mappings, < 128 MiB with 3,000; idle CPU < 0.5 % of one core with one
// mapping. The configuration sets the API budget to AWS's own limits (the fake enforces none here), so the start
// is budget-bound. The target groups already hold their addresses when ipsync starts, as after a restart or a
// deploy of the daemon: the start is then n DescribeTargetHealth at 10 a second (n / 10 s), not n registrations at
// 4 a second (n / 4 s, 12.5 minutes for 3,000), and what is measured afterwards, the idle daemon, is the same.
// The window lasts until every mapping has read its target group once in it (I9's periodic DescribeTargetHealth),
// and at least one resync_interval (60 s): with more mappings than the budget affords every 60 s, their re-reads
// stretch (375 s for 3,000 at 10 a second), and a shorter window would leave that work out and show an idle daemon
// cheaper than it is.
func BenchmarkIdleProcess(b *testing.B) {
	bin := benchBuildBinary(b)
	for _, n := range []int{1, benchMappings, fleetMappings} {
		b.Run(fmt.Sprintf("mappings=%d", n), func(b *testing.B) {
			for range b.N {
				benchMeasureProcess(b, bin, n, 20*time.Second, config.DefaultResyncInterval)
			}
		})
	}
}

// everyGroupRead reports whether calls hold a DescribeTargetHealth of every target group of w.
func (w *benchWorld) everyGroupRead(calls []elbv2fake.Call) bool {
	read := map[string]bool{}
	for _, c := range calls {
		if c.Action == "DescribeTargetHealth" {
			read[c.Params.Get("TargetGroupArn")] = true
		}
	}
	for _, arn := range w.arns {
		if !read[arn] {
			return false
		}
	}
	return true
}

// benchBuildBinary builds ./cmd/ipsync as the Makefile and Dockerfile do (static, lambda.norpc and nodemo, stripped), or
// skips: the CLI may not compile while it is being written. The flags matter: without lambda.norpc, net/rpc's
// reflection keeps every method of the EC2 client and the text segment grows from 14 MB to 50 MB.
func benchBuildBinary(b *testing.B) string {
	b.Helper()
	root, err := benchModuleRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "ipsync")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc,nodemo", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/ipsync")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Skipf("ipsync binary does not build (%v), so only the in-process figures (BenchmarkHeap1000) exist:\n%s", err, out)
	}
	return bin
}

func benchModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// benchMeasureProcess starts `ipsync run` over n mappings whose target groups hold their addresses already, waits
// until /readyz answers (every mapping had a successful pass), lets it settle, then reads RSS (and the Go heap from
// its /metrics: one full scrape), and the CPU time used over an idle window of at least minWindow in which every
// target group is read once. peak-rss-start is the peak before that scrape; rss-end and peak-rss are read at the
// end of the window, after it.
func benchMeasureProcess(b *testing.B, bin string, n int, settle, minWindow time.Duration) {
	w := newBenchWorld(b, n, elbv2fake.Options{Latency: benchLatency})
	for i, arn := range w.arns {
		if err := w.fake.SetTargets(arn, elbv2fake.TargetState{IP: benchAddr(i, 0)}); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	listen := benchFreeAddr(b)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir, // no ~/.aws of the machine's user
		"IPSYNC_CONFIG=" + benchConfigValue(b, dir, w),
		"IPSYNC_DNS_SERVER=" + w.dns.Addr(),
		"IPSYNC_LISTEN=" + listen,
		"AWS_ENDPOINT_URL=" + w.fake.URL(),
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	logPath := filepath.Join(dir, "ipsync.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(bin, "run")
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				b.Errorf("ipsync run did not exit 0 on SIGTERM: %v\n%s", err, benchTail(logPath))
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			b.Errorf("ipsync run did not exit within 15 s of SIGTERM\n%s", benchTail(logPath))
		}
	}
	defer stop()
	pid := cmd.Process.Pid

	started := time.Now()
	benchWait(b, 120*time.Second+time.Duration(n)*time.Second/4, func() (bool, string) {
		select {
		case err := <-exited:
			b.Fatalf("ipsync run exited early: %v\n%s", err, benchTail(logPath))
		default:
		}
		code, err := benchHTTPStatus("http://" + listen + "/readyz")
		return code == http.StatusOK, fmt.Sprintf("/readyz: %d %v", code, err)
	})
	converged := time.Since(started)

	time.Sleep(settle)
	mem := benchProcStatus(b, pid)
	rss := mem["VmRSS"]
	b.ReportMetric(benchMiB(mem["VmHWM"]), "peak-rss-start-MiB") // start-up included, before the first scrape
	goStats := benchScrape(b, "http://"+listen+"/metrics", "go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes",
		"go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes", "go_goroutines")
	b.Logf("after settling: VmRSS %d RssAnon %d RssFile %d bytes; Go runtime %v",
		mem["VmRSS"], mem["RssAnon"], mem["RssFile"], goStats)
	w.fake.ResetCalls()
	queries0, ticks0, t0 := w.dns.Queries(), benchProcCPUTicks(b, pid), time.Now()
	windowEnd, lastCheck := t0.Add(minWindow), time.Time{}
	dnsPeak := benchPeakRate(func() bool {
		if time.Now().Before(windowEnd) || time.Since(lastCheck) < time.Second {
			return false
		}
		lastCheck = time.Now()
		return w.everyGroupRead(w.fake.Calls())
	}, 100*time.Millisecond, w.dns.Queries)
	ticks1, elapsed := benchProcCPUTicks(b, pid), time.Since(t0)
	memEnd := benchProcStatus(b, pid)
	idleCalls := w.fake.Calls()
	calls, mutating, byAction := benchCountCalls(idleCalls)
	queries := w.dns.Queries() - queries0
	stop()
	b.Logf("idle window %s: AWS calls %v", elapsed.Round(time.Second), byAction)

	// /proc/PID/stat counts in USER_HZ, which the kernel ABI fixes at 100 per second.
	cpu := float64(ticks1-ticks0) / 100 / elapsed.Seconds() * 100
	b.ReportMetric(benchMiB(rss), "rss-MiB")
	b.ReportMetric(benchMiB(mem["RssAnon"]), "rss-anon-MiB") // the part that is the process's own memory, not file pages
	b.ReportMetric(benchMiB(memEnd["VmRSS"]), "rss-end-MiB")
	b.ReportMetric(benchMiB(memEnd["VmHWM"]), "peak-rss-MiB")
	b.ReportMetric(goStats["go_memstats_heap_inuse_bytes"]/(1<<20), "heap-inuse-MiB")
	b.ReportMetric(goStats["go_memstats_stack_inuse_bytes"]/(1<<20), "stack-inuse-MiB")
	b.ReportMetric(goStats["go_goroutines"], "goroutines")
	b.ReportMetric(cpu, "cpu-percent")
	b.ReportMetric(float64(ticks1-ticks0)*10/elapsed.Minutes()/float64(n), "cpu-ms/mapping/min")
	b.ReportMetric(converged.Seconds(), "start-to-ready-s")
	b.ReportMetric(float64(calls)/elapsed.Minutes(), "idle-aws-calls/min")
	b.ReportMetric(float64(queries)/elapsed.Seconds(), "idle-dns-queries/s")
	b.ReportMetric(dnsPeak, "peak-dns-queries-in-1s")
	b.ReportMetric(float64(benchPeakInSecond(idleCalls)), "peak-aws-calls-in-1s")
	if mutating > 0 {
		b.Errorf("idle daemon made %d mutating calls in %s (I9)", mutating, elapsed.Round(time.Second))
	}
}

// benchPeakRate reads counter every step until done and returns the largest increase over any one-second span:
// how bursty the load is (mappings in lockstep) rather than its average.
func benchPeakRate(done func() bool, step time.Duration, counter func() int64) float64 {
	per := int(time.Second / step)
	var samples []int64
	tick := time.NewTicker(step)
	defer tick.Stop()
	for ; !done(); <-tick.C {
		samples = append(samples, counter())
	}
	var peak int64
	for i := per; i < len(samples); i++ {
		peak = max(peak, samples[i]-samples[i-per])
	}
	return float64(peak)
}

// benchPeakInSecond is the largest number of calls that arrived within one second of each other.
func benchPeakInSecond(calls []elbv2fake.Call) int {
	peak, j := 0, 0
	for i := range calls { // Calls are in arrival order
		for calls[i].At.Sub(calls[j].At) >= time.Second {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}

// benchConfigValue returns IPSYNC_CONFIG: the YAML itself, as an ECS task definition would carry it, unless it is
// over Linux's 128 KiB limit for one environment string (MAX_ARG_STRLEN); then a file path.
func benchConfigValue(b *testing.B, dir string, w *benchWorld) string {
	var y bytes.Buffer
	y.WriteString("syncs:\n")
	for _, s := range w.cfg.Syncs {
		fmt.Fprintf(&y, "  - name: %s\n    endpoint: %s\n    target_group_arn: %s\n", s.Name, s.Endpoint, s.TargetGroupARN)
	}
	y.WriteString("poll: {min: 1s, max: 30s}\naws: {describe_rps: 10, mutate_rps: 4}\n")
	if y.Len() < 128<<10-len("IPSYNC_CONFIG=") {
		return y.String()
	}
	path := filepath.Join(dir, "ipsync.yaml")
	if err := os.WriteFile(path, y.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("configuration is %d KiB, over the 128 KiB limit of one environment variable: IPSYNC_CONFIG names a file", y.Len()>>10)
	return path
}

func benchFreeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func benchHTTPStatus(url string) (int, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// benchScrape reads the named unlabelled series from a Prometheus text endpoint.
func benchScrape(b *testing.B, url string, names ...string) map[string]float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && slices.Contains(names, name) {
			out[name], _ = strconv.ParseFloat(value, 64)
		}
	}
	return out
}

// benchProcStatus reads the memory lines of /proc/PID/status (VmRSS, VmHWM = peak RSS, RssAnon, RssFile), in bytes.
func benchProcStatus(b *testing.B, pid int) map[string]uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[2] == "kB" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			out[strings.TrimSuffix(f[0], ":")] = kb << 10
		}
	}
	return out
}

// benchProcCPUTicks reads utime + stime of pid from /proc/PID/stat (fields 14 and 15).
func benchProcCPUTicks(b *testing.B, pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("cannot read CPU times from /proc/%d/stat: %q", pid, data)
	}
	return utime + stime
}

// benchTail returns the end of the child's log, for failure messages.
func benchTail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}
