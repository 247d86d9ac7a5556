package main_test

// The soak (issue 3 item 5): the daemon as a process against the DNS test server and our ELBv2 fake, with a
// failover every 2-5 s, about 20 % of AWS calls failing (Throttling, 500, 503, connection reset) and DNS faults
// (timeouts, SERVFAIL, REFUSED, truncation, answers flapping between the old and the new address). The invariants
// are checked on the fake's wire log and the DNS server's record of every answer it sent; at the end faults stop
// and the group must converge within a bound, with the daemon's goroutines and heap flat.
//
//	go test -run TestSoak -soak=10m -timeout 30m ./cmd/ipsync/

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/testutil"
)

var soakFor = flag.Duration("soak", 2*time.Minute, "how long TestSoak injects failovers and faults")

const (
	soakTTL = 1 // seconds: an Aurora reader endpoint's TTL, the shortest RDS has
	// soakExposure bounds how long the group may hold only addresses DNS stopped serving: a failover while the
	// previous new address could not be registered yet (AWS calls retried with backoff under a 10 s deadline).
	soakExposure = 20 * time.Second
	// soakConverge bounds the convergence after the faults stop: TTL, a registration, two resolutions.
	soakConverge = 15 * time.Second
)

// soakPool is where failovers go: four addresses in the VPC and one outside (registered with AvailabilityZone all).
var soakPool = []string{"10.0.1.10", "10.0.2.20", "10.0.3.30", "10.0.4.40", "172.31.0.10"}

type soak struct {
	t   *testing.T
	w   *world
	arn string

	mu        sync.Mutex
	answers   []dnstest.Answer // every answer DNS sent for the endpoint
	states    []dnsState       // what the test made DNS serve, from when
	samples   []liveSample     // the group's live addresses, each time they changed
	failovers []failover

	awsFaults       atomic.Bool
	awsFaultsByKind [4]atomic.Int64
	dnsFaultsByKind map[string]int
	flaps           int
	chaosFrom       time.Time
	chaosTo         time.Time
	chaosCalls      int              // AWS calls during the chaos
	figures         []runtimeFigures // the daemon's Go runtime, every 2 s
}

type liveSample struct {
	at   time.Time
	live []netip.Addr
}

type failover struct {
	at   time.Time
	to   netip.Addr
	flap bool
}

var awsFaultKinds = []string{"Throttling", "InternalFailure (500)", "ServiceUnavailable (503)", "connection reset"}

func awsFault(kind int) elbv2fake.Fault {
	switch kind {
	case 0:
		return elbv2fake.Throttled()
	case 1:
		return elbv2fake.InternalFailure()
	case 2:
		return elbv2fake.ServiceUnavailable()
	}
	return elbv2fake.ConnectionReset()
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak runs for minutes; skipped with -short")
	}
	w := newFakeWorld(t, elbv2fake.Options{Latency: 10 * time.Millisecond, HealthyAfter: 2 * time.Second, DrainFor: 3 * time.Second})
	s := &soak{t: t, w: w, arn: w.group.ARN, dnsFaultsByKind: map[string]int{}}
	w.dns.SetObserver(func(a dnstest.Answer) {
		if a.Name == endpoint+"." {
			s.mu.Lock()
			s.answers = append(s.answers, a)
			s.mu.Unlock()
		}
	})
	w.fake.SetFault(func(string, url.Values) *elbv2fake.Fault {
		if !s.awsFaults.Load() || rand.Float64() >= 0.2 {
			return nil
		}
		k := rand.IntN(len(awsFaultKinds))
		s.awsFaultsByKind[k].Add(1)
		f := awsFault(k)
		return &f
	})
	s.serve(netip.MustParseAddr(soakPool[0]), nil)

	logPath := filepath.Join(t.TempDir(), "ipsync.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cfg := fmt.Sprintf(`syncs:
  - name: orders
    endpoint: %s
    target_group_arn: %s
dns: {servers: [%q], timeout: 500ms}
poll: {min: 1s, max: 5s}
`, endpoint, s.arn, w.dns.Addr())
	p := startDaemonTo(t, cfg, logFile)
	defer func() {
		if t.Failed() {
			t.Logf("daemon log %s, last lines:\n%s", logPath, lastLines(logPath, 40))
		}
	}()

	stopSampling := s.sample(p)
	waitFakeLive(t, w, 15*time.Second, soakPool[0])
	time.Sleep(3 * time.Second) // settle before the baseline
	start := s.resources(p)

	// Chaos.
	s.awsFaults.Store(true)
	s.chaosFrom = time.Now()
	s.chaos(s.chaosFrom.Add(*soakFor))
	s.chaosTo = time.Now()

	// The faults stop; one more failover must converge within the bound.
	s.awsFaults.Store(false)
	w.dns.SetNameFault(endpoint, dnstest.FaultNone)
	last := netip.MustParseAddr("10.0.9.99")
	time.Sleep(2 * time.Second)
	before := time.Now()
	s.serve(last, nil)
	testutil.Eventually(t, soakConverge, fmt.Sprintf("convergence on %s after the faults stopped", last), func() bool {
		return slices.Equal(fakeLive(w.fake, s.arn), []netip.Addr{last})
	})
	finalConvergence := time.Since(before)
	time.Sleep(5 * time.Second) // let the follow-up reads and any backoff end before the resource figures
	stopSampling()
	endRes := s.resources(p)

	s.check()
	s.report(start, endRes, finalConvergence)
}

// serve makes DNS answer addr for the endpoint, or answers alternating between addr and stale (caches that
// disagree), and records it.
func (s *soak) serve(addr netip.Addr, stale []netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(stale) > 0 {
		sets := [][]string{{addr.String()}, {stale[0].String()}}
		s.w.dns.SetAFlapping(endpoint, soakTTL, sets...)
	} else {
		s.w.dns.SetA(endpoint, soakTTL, addr.String())
	}
	s.states = append(s.states, dnsState{at: time.Now(), addrs: []netip.Addr{addr}, stale: stale})
}

// chaos runs failovers every 2-5 s (some with a few seconds of flapping answers) and DNS faults of 0.5-2.5 s
// every 3-10 s until end.
func (s *soak) chaos(end time.Time) {
	between := func(lo, hi time.Duration) time.Duration { return lo + rand.N(hi-lo) }
	dnsKinds := []dnstest.Fault{dnstest.FaultDrop, dnstest.FaultServFail, dnstest.FaultRefused, dnstest.FaultTruncate}
	now := time.Now()
	current := netip.MustParseAddr(soakPool[0])
	nextFailover, settleAt := now.Add(between(2*time.Second, 5*time.Second)), time.Time{}
	nextDNSFault, dnsFaultEnd := now.Add(between(3*time.Second, 10*time.Second)), time.Time{}
	for now.Before(end) {
		time.Sleep(50 * time.Millisecond)
		now = time.Now()
		if !settleAt.IsZero() && now.After(settleAt) {
			s.serve(current, nil) // the caches agree again
			settleAt = time.Time{}
		}
		if now.After(nextFailover) {
			var to netip.Addr
			for to = current; to == current; {
				to = netip.MustParseAddr(soakPool[rand.IntN(len(soakPool))])
			}
			flap := rand.Float64() < 0.3
			if flap {
				s.serve(to, []netip.Addr{current})
				settleAt = now.Add(between(time.Second, 3*time.Second))
			} else {
				s.serve(to, nil)
				settleAt = time.Time{}
			}
			s.mu.Lock()
			s.failovers = append(s.failovers, failover{at: now, to: to, flap: flap})
			if flap {
				s.flaps++
			}
			s.mu.Unlock()
			current = to
			nextFailover = now.Add(between(2*time.Second, 5*time.Second))
		}
		switch {
		case !dnsFaultEnd.IsZero() && now.After(dnsFaultEnd):
			s.w.dns.SetNameFault(endpoint, dnstest.FaultNone)
			dnsFaultEnd = time.Time{}
		case dnsFaultEnd.IsZero() && now.After(nextDNSFault):
			f := dnsKinds[rand.IntN(len(dnsKinds))]
			s.w.dns.SetNameFault(endpoint, f)
			s.mu.Lock()
			s.dnsFaultsByKind[f.String()]++
			s.mu.Unlock()
			dnsFaultEnd = now.Add(between(500*time.Millisecond, 2500*time.Millisecond))
			nextDNSFault = dnsFaultEnd.Add(between(3*time.Second, 10*time.Second))
		}
	}
	if !settleAt.IsZero() {
		s.serve(current, nil)
	}
}

// sample records the group's live addresses every 20 ms, and the daemon's goroutines and heap every 2 s, until
// the returned function is called.
func (s *soak) sample(p *proc) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var prev []netip.Addr
		first := true
		nextScrape := time.Now()
		for {
			live := fakeLive(s.w.fake, s.arn)
			if first || !slices.Equal(live, prev) {
				s.mu.Lock()
				s.samples = append(s.samples, liveSample{at: time.Now(), live: live})
				s.mu.Unlock()
				prev, first = live, false
			}
			if time.Now().After(nextScrape) {
				if f, err := scrapeRuntime(p.listen); err == nil {
					s.mu.Lock()
					s.figures = append(s.figures, f)
					s.mu.Unlock()
				}
				nextScrape = time.Now().Add(2 * time.Second)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-finished }
}

// runtimeFigures are the daemon's Go collector figures at one scrape.
type runtimeFigures struct {
	at               time.Time
	goroutines, heap float64 // go_goroutines, go_memstats_heap_inuse_bytes
}

// scrapeRuntime reads the daemon's goroutines and heap in use from /metrics.
func scrapeRuntime(listen string) (runtimeFigures, error) {
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		return runtimeFigures{}, err
	}
	defer resp.Body.Close()
	f := runtimeFigures{at: time.Now(), goroutines: -1, heap: -1}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		v, err := strconv.ParseFloat(value, 64)
		switch {
		case !ok || err != nil:
		case name == "go_goroutines":
			f.goroutines = v
		case name == "go_memstats_heap_inuse_bytes":
			f.heap = v
		}
	}
	if f.goroutines < 0 || f.heap < 0 {
		return f, fmt.Errorf("/metrics has no go_goroutines or go_memstats_heap_inuse_bytes")
	}
	return f, sc.Err()
}

// heapTrough is the lowest heap in use scraped in [from, to]: the heap just after a collection, which is what
// grows when memory leaks (in between, it rises and falls with the garbage of normal work).
func (s *soak) heapTrough(from, to time.Time) float64 {
	trough := -1.0
	for _, f := range s.figures {
		if !f.at.Before(from) && !f.at.After(to) && (trough < 0 || f.heap < trough) {
			trough = f.heap
		}
	}
	return trough
}

// resources scrapes the daemon's Go runtime figures three times, a second apart, and keeps the lowest of each:
// the heap right after a collection is the figure that shows a leak.
func (s *soak) resources(p *proc) runtimeFigures {
	r := runtimeFigures{at: time.Now(), goroutines: 1e18, heap: 1e18}
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Second)
		}
		r.goroutines = min(r.goroutines, p.metric(s.t, "go_goroutines"))
		r.heap = min(r.heap, p.metric(s.t, "go_memstats_heap_inuse_bytes"))
	}
	return r
}

// check runs the invariant checks over the whole record.
func (s *soak) check() {
	s.mu.Lock()
	defer s.mu.Unlock()
	calls := s.w.fake.Calls()
	for _, c := range calls {
		if !c.At.Before(s.chaosFrom) && c.At.Before(s.chaosTo) {
			s.chaosCalls++
		}
	}
	s.checkDeregistrations(calls)
	s.checkExposure()
}

// checkDeregistrations: every deregistration that took effect was decided on an answer without the address
// (I2: the last answer DNS sent before the first attempt of the call), and the address was not in what DNS
// served during the whole TTL before that (the in-flight allowance: the daemon may act on an answer up to a TTL
// old).
func (s *soak) checkDeregistrations(calls []elbv2fake.Call) {
	for i, c := range calls {
		if c.Action != "DeregisterTargets" || c.Code != "" {
			continue
		}
		// The SDK's retries of one call carry the same parameters: the decision is the first attempt's.
		first := c
		for j := i - 1; j >= 0; j-- {
			p := calls[j]
			if p.Action == "DeregisterTargets" && p.Code != "" && p.Params.Encode() == c.Params.Encode() && first.At.Sub(p.At) < 10*time.Second {
				first = p
				continue
			}
			if p.Action == "DeregisterTargets" || p.Action == "RegisterTargets" {
				break
			}
		}
		answer, ok := lastFinalAnswer(s.answers, first.At)
		for _, ip := range c.TargetIPs() {
			switch {
			case !ok || answer.Dropped || answer.Rcode != 0 || len(answer.Addrs) == 0:
				s.t.Errorf("I1: DeregisterTargets of %s at %s after a failed resolution (%+v)", ip, stamp(first.At), answer)
			case slices.Contains(answer.Addrs, ip):
				s.t.Errorf("I2: DeregisterTargets of %s at %s, though the last answer (%s) was %v", ip, stamp(first.At), stamp(answer.At), answer.Addrs)
			case servedThroughout(s.states, ip, first.At.Add(-soakTTL*time.Second), first.At):
				s.t.Errorf("DeregisterTargets of %s at %s, while DNS had served it for the whole TTL before", ip, stamp(first.At))
			}
		}
	}
}

// lastFinalAnswer is the last answer sent before t that ended a resolution (not a UDP answer cut short for TCP).
func lastFinalAnswer(answers []dnstest.Answer, t time.Time) (dnstest.Answer, bool) {
	for i := len(answers) - 1; i >= 0; i-- {
		a := answers[i]
		if !a.At.Before(t) || (a.Truncated && !a.TCP) {
			continue
		}
		return a, true
	}
	return dnstest.Answer{}, false
}

// exposure is, at t, how long the group has held no address DNS serves (authoritatively or from a stale cache):
// 0 when it holds one, else the time since one of its addresses was last served; -1 when it holds none at all.
func (s *soak) exposure(live []netip.Addr, t time.Time) time.Duration {
	if len(live) == 0 {
		return -1
	}
	var lastServed time.Time
	for i, st := range s.states {
		if st.at.After(t) {
			break
		}
		served := slices.ContainsFunc(live, func(a netip.Addr) bool { return slices.Contains(st.addrs, a) || slices.Contains(st.stale, a) })
		if !served {
			continue
		}
		if i+1 >= len(s.states) || s.states[i+1].at.After(t) {
			return 0 // served now
		}
		lastServed = s.states[i+1].at
	}
	if lastServed.IsZero() {
		return -1
	}
	return t.Sub(lastServed)
}

// checkExposure: after the first convergence, never a moment when the group holds no address DNS serves or
// served within soakExposure. Checked every 100 ms and at every change of the group.
func (s *soak) checkExposure() {
	var worst time.Duration
	for i, smp := range s.samples {
		if i == 0 {
			continue // before the first convergence
		}
		end := time.Now()
		if i+1 < len(s.samples) {
			end = s.samples[i+1].at
		}
		for t := smp.at; t.Before(end); t = t.Add(100 * time.Millisecond) {
			e := s.exposure(smp.live, t)
			if e < 0 || e > soakExposure {
				s.t.Errorf("at %s the group holds %v: no address DNS served within %s", stamp(t), smp.live, soakExposure)
				return
			}
			worst = max(worst, e)
		}
	}
	s.t.Logf("longest time the group held only addresses DNS had stopped serving: %s", worst.Round(10*time.Millisecond))
}

// convergence returns, per failover whose change was complete before the next one, the time to the new address
// being registered and to the group holding exactly it; and how many failovers the next one overtook.
func (s *soak) convergence() (registered, exact []time.Duration, overtaken int) {
	for i, f := range s.failovers {
		next := time.Now()
		if i+1 < len(s.failovers) {
			next = s.failovers[i+1].at
		}
		var reg, ex time.Duration = -1, -1
		for j, smp := range s.samples {
			at := smp.at
			if j+1 < len(s.samples) && !s.samples[j+1].at.After(f.at) {
				continue // ended before the failover
			}
			if at.Before(f.at) {
				at = f.at
			}
			if !at.Before(next) {
				break
			}
			if reg < 0 && slices.Contains(smp.live, f.to) {
				reg = at.Sub(f.at)
			}
			if ex < 0 && slices.Equal(smp.live, []netip.Addr{f.to}) {
				ex = at.Sub(f.at)
			}
		}
		if reg >= 0 {
			registered = append(registered, reg)
		}
		if ex >= 0 {
			exact = append(exact, ex)
		} else {
			overtaken++
		}
	}
	return registered, exact, overtaken
}

func (s *soak) report(start, end runtimeFigures, final time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg, exact, overtaken := s.convergence()
	var awsFaults []string
	total := int64(0)
	for k, name := range awsFaultKinds {
		n := s.awsFaultsByKind[k].Load()
		total += n
		awsFaults = append(awsFaults, fmt.Sprintf("%s %d", name, n))
	}
	var dnsFaults []string
	for k, n := range s.dnsFaultsByKind {
		dnsFaults = append(dnsFaults, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(dnsFaults)
	t := s.t
	t.Logf("soak %s: %d failovers (%d with flapping answers), %d AWS calls, %d AWS faults injected (%.0f %%: %s), DNS fault windows: %s",
		*soakFor, len(s.failovers), s.flaps, s.chaosCalls, total, 100*float64(total)/float64(max(s.chaosCalls, 1)),
		strings.Join(awsFaults, ", "), strings.Join(dnsFaults, ", "))
	t.Logf("convergence, failover to new address registered: p50 %s, p99 %s, max %s (%d failovers)",
		pct(reg, 0.5), pct(reg, 0.99), pct(reg, 1), len(reg))
	t.Logf("convergence, failover to group holding exactly it: p50 %s, p99 %s, max %s (%d failovers; %d overtaken by the next failover first)",
		pct(exact, 0.5), pct(exact, 0.99), pct(exact, 1), len(exact), overtaken)
	t.Logf("after the faults stopped: converged in %s (bound %s)", final.Round(10*time.Millisecond), soakConverge)
	// The heap's troughs over the first and the last third of the chaos: a leak raises the second.
	third := s.chaosTo.Sub(s.chaosFrom) / 3
	early, late := s.heapTrough(s.chaosFrom, s.chaosFrom.Add(third)), s.heapTrough(s.chaosTo.Add(-third), s.chaosTo)
	peak := 0.0
	for _, f := range s.figures {
		peak = max(peak, f.heap)
	}
	t.Logf("daemon goroutines %v at the start, %v at the end; heap in use %.1f MiB at the start, %.1f MiB at the end "+
		"(troughs %.1f MiB in the first third, %.1f MiB in the last; peak %.1f MiB)", start.goroutines, end.goroutines,
		mib(start.heap), mib(end.heap), mib(early), mib(late), mib(peak))
	if end.goroutines > start.goroutines+10 {
		t.Errorf("goroutines grew from %v to %v", start.goroutines, end.goroutines)
	}
	if late > 1.5*early+1<<20 {
		t.Errorf("the heap's trough grew from %.1f MiB to %.1f MiB", mib(early), mib(late))
	}
	if end.heap > 2*start.heap+4<<20 {
		t.Errorf("heap in use grew from %.1f MiB to %.1f MiB", mib(start.heap), mib(end.heap))
	}
}

func mib(b float64) float64 { return b / (1 << 20) }

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)].Round(10 * time.Millisecond)
}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }

func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
