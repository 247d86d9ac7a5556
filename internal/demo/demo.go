// Package demo is the body of `ipsync demo`: the whole system on this machine with no AWS account.
//
// A local DNS server (dnstest) plays two databases, a local ELBv2 endpoint (elbv2fake) plays their NLB target
// groups, and the real sync engine keeps one equal to the other while the demo fails the databases over in turn.
// The demo measures time to converge itself, from the fake's state, so the numbers do not take the engine's word
// for it, and it checks the fake's call log against the DNS history it drove (I2).
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
)

// Defaults of Options.
const (
	DefaultTTL           = 2 * time.Second
	DefaultFailoverEvery = 10 * time.Second
	DefaultHealthyAfter  = 3 * time.Second
	DefaultDrainFor      = 4 * time.Second
)

// Options configure Run. The zero value runs the default demo until ctx is cancelled, printing plain lines.
type Options struct {
	TTL           time.Duration // DNS TTL of every record; whole seconds, at least 1s (default 2s)
	FailoverEvery time.Duration // one database fails over this often, the two in turn (default 10s)
	HealthyAfter  time.Duration // the fake's health check: a new target is initial this long (default 3s)
	DrainFor      time.Duration // the fake's deregistration delay: draining this long, then gone (default 4s)
	Duration      time.Duration // stop after this long; 0 = run until ctx is cancelled

	// Live redraws one screen in place with ANSI codes about 4 times a second; false prints one plain line per
	// event (for tests, pipes and logs).
	Live bool

	Metrics *metrics.Metrics // optional: the engine's and the AWS clients' metrics, as `ipsync run` records them

	// OnSummary, if set, is called once with what happened, after everything stopped and before Run returns.
	OnSummary func(Summary)
}

// withDefaults fills zero values and refuses values the demo cannot show.
func (o Options) withDefaults() (Options, error) {
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.FailoverEvery == 0 {
		o.FailoverEvery = DefaultFailoverEvery
	}
	if o.HealthyAfter == 0 {
		o.HealthyAfter = DefaultHealthyAfter
	}
	if o.DrainFor == 0 {
		o.DrainFor = DefaultDrainFor
	}
	var errs []error
	if o.TTL < time.Second || o.TTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("TTL %v: DNS TTLs are whole seconds; use 1s or more", o.TTL))
	}
	if o.FailoverEvery < o.TTL {
		// A failover faster than the TTL cannot be seen by anyone who honours the TTL.
		errs = append(errs, fmt.Errorf("failover interval %v is shorter than the TTL %v; use at least the TTL", o.FailoverEvery, o.TTL))
	}
	if o.HealthyAfter < 0 || o.DrainFor < 0 || o.Duration < 0 {
		errs = append(errs, errors.New("healthy-after, drain-for and duration must not be negative"))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("demo: %w", errors.Join(errs...))
	}
	return o, nil
}

// Run runs the demo until ctx is cancelled or opts.Duration has passed, then stops the engine, closes the local
// servers, restores the terminal and returns nil. It returns an error only when the demo cannot start or its
// output cannot be written.
func Run(ctx context.Context, out io.Writer, opts Options) (err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return err
	}
	d, err := newDemo(out, opts)
	if err != nil {
		return err
	}
	defer d.close()

	eng := engine.New(d.cfg, engine.Deps{
		Resolver: d.engineResolver,
		Clients: func(context.Context, string, string) (engine.TargetGroup, error) {
			return d.client, nil
		},
		Metrics: opts.Metrics,
		Log:     d.log,
	}, engine.Options{})

	d.begin()
	// The engine gets its own context: on ctx's end the demo stops it first and closes the servers it talks to
	// only after its pass in flight has finished.
	engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		eng.Run(engCtx)
	}()
	defer func() {
		stopEngine()
		<-engDone
	}()

	d.loop(ctx)

	stopEngine()
	<-engDone
	d.sample(time.Now())
	d.scanCalls()
	d.finish()
	if opts.OnSummary != nil {
		opts.OnSummary(d.summary())
	}
	return d.out.err()
}

// failoverTime is when failover n (from 0) happens: on a fixed schedule, so that slow passes do not shift later
// failovers, plus a random part of the TTL. Real failovers do not wait for ipsync's next look at DNS; without
// the jitter they would fall at the same point of its polling cycle every time, and every time to converge
// would be the same.
func (d *demo) failoverTime(n int) time.Time {
	return d.start.Add(time.Duration(n+1)*d.opts.FailoverEvery + rand.N(d.opts.TTL))
}

// loop drives failovers, samples the fake and draws the view until ctx ends or the duration has passed.
func (d *demo) loop(ctx context.Context) {
	var end <-chan time.Time
	if d.opts.Duration > 0 {
		t := time.NewTimer(time.Until(d.start.Add(d.opts.Duration)))
		defer t.Stop()
		end = t.C
	}
	d.nextFailover = d.failoverTime(0)
	failover := time.NewTimer(time.Until(d.nextFailover))
	defer failover.Stop()
	sample := time.NewTicker(sampleEvery)
	defer sample.Stop()
	var redraw <-chan time.Time
	if d.opts.Live {
		t := time.NewTicker(redrawEvery)
		defer t.Stop()
		redraw = t.C
		d.draw(ctx)
	}
	for d.out.err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case now := <-sample.C:
			d.sample(now)
			if now.Sub(d.lastScan) >= scanEvery {
				d.scanCalls()
			}
		case <-failover.C:
			d.failover(ctx)
			d.failovers++
			d.nextFailover = d.failoverTime(d.failovers)
			failover.Reset(time.Until(d.nextFailover))
		case <-redraw:
			d.draw(ctx)
		}
	}
}

const (
	sampleEvery = 50 * time.Millisecond  // how often the demo reads the fake's targets (its convergence clock)
	scanEvery   = 200 * time.Millisecond // how often it reads the fake's call log
	redrawEvery = 250 * time.Millisecond
	// callTimeout bounds each AWS call: the endpoint is on loopback, so anything slower is broken, and a short
	// deadline keeps the engine's last pass (and so Run's return) short when the demo stops.
	callTimeout = 2 * time.Second
	// dnsTimeout is both the engine's and the view's per-query timeout.
	dnsTimeout = time.Second
)

// demo is one run: the local servers, the engine's clients and everything the view shows.
type demo struct {
	opts  Options
	out   *screen
	start time.Time

	dns            *dnstest.Server
	fake           *elbv2fake.Server
	view           *resolver.Resolver // the demo's own look at DNS, for the view
	engineResolver resolver.Lookup
	client         *targets.Client
	cfg            *config.Config
	log            *zap.Logger
	logs           *logRing

	maps         []*mapping
	byARN        map[string]*mapping
	failovers    int // how many failovers so far; also picks the next mapping
	nextFailover time.Time

	seenCalls  int            // calls of the fake's log already counted
	lastScan   time.Time      // when the call log was last read
	apiTotals  map[string]int // calls by action, all mappings
	violations []string       // deregistrations of an address DNS was serving at that moment (I2)
	finalCalls []elbv2fake.Call
}

// vpcID and vpcCIDR are the target groups' VPC: the database addresses are inside it, so ipsync registers them
// without an AvailabilityZone (availability_zone auto).
const (
	vpcID   = "vpc-0de305a1b2c3d4e5f"
	vpcCIDR = "10.0.0.0/16"
)

func newDemo(out io.Writer, opts Options) (*demo, error) {
	start := time.Now()
	d := &demo{
		opts:      opts,
		out:       newScreen(out, opts.Live, start),
		start:     start,
		byARN:     map[string]*mapping{},
		apiTotals: map[string]int{},
	}
	ready := false
	defer func() {
		if !ready {
			d.close() // whatever started so far
		}
	}()
	d.logs = newLogRing(d.start, logLines, d.out)
	d.log = newLogger(d.logs, opts.Live)

	var err error
	if d.dns, err = dnstest.New(); err != nil {
		return nil, fmt.Errorf("demo: starting the local DNS server on 127.0.0.1: %w", err)
	}
	if d.fake, err = elbv2fake.New(elbv2fake.Options{HealthyAfter: opts.HealthyAfter, DrainFor: opts.DrainFor}); err != nil {
		return nil, fmt.Errorf("demo: starting the local ELBv2 endpoint on 127.0.0.1: %w", err)
	}
	if err := d.fake.AddVPC(vpcID, vpcCIDR); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if d.view, err = resolver.New(resolver.Config{Servers: []string{d.dns.Addr()}, Timeout: dnsTimeout}); err != nil {
		return nil, fmt.Errorf("demo: resolver for the local DNS server: %w", err)
	}
	// The product's client, but not from the user's AWS environment: the demo must never reach a real account.
	d.client = d.fake.Client(opts.Metrics.AWSMiddleware()) // nil-safe: a no-op without metrics
	d.client.CallTimeout = callTimeout

	d.cfg = config.Defaults()
	d.cfg.DNS.Servers, d.cfg.DNS.Timeout = []string{d.dns.Addr()}, dnsTimeout
	d.cfg.Poll = config.Poll{Min: time.Second, Max: 30 * time.Second}
	d.cfg.ResyncInterval = 60 * time.Second
	d.cfg.Listen = "" // the demo serves nothing; the command may serve opts.Metrics itself
	d.cfg.Log = config.Log{Level: "info", Format: "console"}
	ttl := uint32(opts.TTL / time.Second)
	for _, m := range scenario() {
		m.arn = d.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{
			Name: m.name, Port: m.port, Protocol: "TCP", VPCID: vpcID, TargetType: "ip", IPAddressType: "ipv4",
		})
		if m.arn == "" {
			return nil, fmt.Errorf("demo: the local ELBv2 endpoint refused target group %q", m.name)
		}
		m.setup(d.dns, ttl)
		s := config.DefaultSync()
		s.Name, s.Endpoint, s.TargetGroupARN = m.name, m.endpoint, m.arn
		s.AvailabilityZone, s.Prune, s.DeregisterAfter = "auto", true, 2
		d.cfg.Syncs = append(d.cfg.Syncs, s)
		d.maps = append(d.maps, m)
		d.byARN[m.arn] = m
	}
	if err := d.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo: the built-in configuration is invalid (a bug in the demo): %w", err)
	}
	// The engine resolves as the daemon does, from the configuration (recursive mode, the local server).
	if d.engineResolver, err = engine.NewResolver(d.cfg, d.opts.Metrics, nil); err != nil {
		return nil, fmt.Errorf("demo: resolver for the local DNS server: %w", err)
	}
	ready = true
	return d, nil
}

// begin records the first DNS answers (set up by newDemo) and starts following the engine's first
// registration, which is tracked like a failover from nothing.
func (d *demo) begin() {
	now := time.Now()
	for _, m := range d.maps {
		m.recordDNS(now)
		m.active = &tracker{Failover: Failover{At: now, To: m.current().ip}, initial: true}
	}
	d.out.line(d.start, "demo", header(d.opts))
	for _, m := range d.maps {
		d.out.line(now, "setup", fmt.Sprintf("%s: %s; %s answers %s (TTL %v); target group %s (port %d) is empty",
			m.name, m.kind, m.endpoint, m.describe(m.current()), d.opts.TTL, m.name, m.port))
	}
	d.out.line(now, "setup", fmt.Sprintf("local DNS %s, local ELBv2 %s; the ipsync engine starts now", d.dns.Addr(), d.fake.URL()))
}

// failover moves the next database to its other instance.
func (d *demo) failover(ctx context.Context) {
	m := d.maps[d.failovers%len(d.maps)]
	now := time.Now()
	if a := m.active; a != nil && !a.done {
		a.Superseded, a.done = true, true
		what := fmt.Sprintf("failover #%d", a.N)
		if a.initial {
			what = "the initial sync"
		}
		d.out.line(now, m.name, what+" had not converged when the next one began")
	}
	from := m.current()
	m.side ^= 1
	to := m.current()
	at := time.Now() // DNS serves the new answer from here on
	m.apply(d.dns, uint32(d.opts.TTL/time.Second))
	m.recordDNS(at)
	n := len(m.failoverLog) + 1
	m.active = &tracker{Failover: Failover{N: n, At: at, From: from.ip, To: to.ip}}
	m.failoverLog = append(m.failoverLog, m.active)
	m.steadySince, m.quietCalls = time.Time{}, 0

	said := "no answer"
	if res, err := d.resolve(ctx, m); err == nil {
		said = answerText(res)
	}
	d.out.line(at, "failover", fmt.Sprintf("%s #%d: %s; DNS now says %s", m.name, n, m.failoverText(from, to), said))
}

func (d *demo) resolve(ctx context.Context, m *mapping) (resolver.Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dnsTimeout)
	defer cancel()
	res, err := d.view.Resolve(ctx, m.endpoint, resolver.IPv4)
	m.answer, m.answerErr = res, err
	return res, err
}

// sample reads every target group from the fake and advances the convergence trackers.
func (d *demo) sample(now time.Time) {
	for _, m := range d.maps {
		ts := d.fake.Targets(m.arn)
		d.reportTransitions(m, ts, now)
		m.targets = ts
		a := m.active
		if a == nil || a.done {
			continue
		}
		a.observe(ts, m.port, now) // each stage is reported with its target's transition above
		if a.Converged {
			a.done = true
			m.steadySince, m.quietCalls = now, 0
			if a.initial {
				d.out.line(now, m.name, fmt.Sprintf("initial sync done: %s healthy %s after start", a.To, fmtDur(a.Healthy)))
				continue
			}
			d.out.line(now, m.name, fmt.Sprintf("converged: failover #%d %s -> %s in %s (registered %s, healthy %s, old deregistered %s, old gone %s)",
				a.N, a.From, a.To, fmtDur(a.Gone), fmtDur(a.Registered), fmtDur(a.Healthy), fmtDur(a.Deregistered), fmtDur(a.Gone)))
		}
	}
}

// reportTransitions prints (plain mode) each target state change since the last sample.
func (d *demo) reportTransitions(m *mapping, ts []elbv2fake.TargetState, now time.Time) {
	next := make(map[netip.AddrPort]string, len(ts))
	for _, t := range ts {
		next[netip.AddrPortFrom(t.IP, uint16(t.Port))] = t.State
	}
	report := func(ap netip.AddrPort, state string) {
		text := fmt.Sprintf("target %s %s", ap, state)
		if a := m.active; a != nil && !a.done && (ap.Addr() == a.To || ap.Addr() == a.From) {
			text += fmt.Sprintf(" (%s after the DNS change)", fmtDur(now.Sub(a.At)))
			if a.initial {
				text = fmt.Sprintf("target %s %s (%s after start)", ap, state, fmtDur(now.Sub(a.At)))
			}
		}
		d.out.line(now, m.name, text)
	}
	for _, t := range ts {
		ap := netip.AddrPortFrom(t.IP, uint16(t.Port))
		if old, ok := m.prev[ap]; !ok || old != t.State {
			report(ap, t.State)
		}
	}
	var gone []netip.AddrPort
	for ap := range m.prev {
		if _, ok := next[ap]; !ok {
			gone = append(gone, ap)
		}
	}
	slices.SortFunc(gone, netip.AddrPort.Compare)
	for _, ap := range gone {
		report(ap, "gone")
	}
	m.prev = next
}

// scanCalls reads the calls the fake received since the last scan: counts for the view, and the I2 check of
// every DeregisterTargets against what DNS was serving when it arrived.
func (d *demo) scanCalls() {
	d.lastScan = time.Now()
	calls := d.fake.Calls()
	if len(calls) < d.seenCalls { // the log was reset behind the demo's back: count it again
		d.seenCalls = 0
	}
	for _, c := range calls[d.seenCalls:] {
		d.apiTotals[c.Action]++
		m := d.byARN[callARN(c)]
		if m == nil {
			continue
		}
		m.calls[c.Action]++
		if !m.steadySince.IsZero() && c.At.After(m.steadySince) {
			m.quietCalls++
		}
		if c.Action != "DeregisterTargets" {
			continue
		}
		served := m.servedAt(c.At)
		for _, ip := range c.TargetIPs() {
			if ip == served {
				v := fmt.Sprintf("%s: DeregisterTargets of %s at %s while DNS served it", m.name, ip, fmtDur(c.At.Sub(d.start)))
				d.violations = append(d.violations, v)
				d.out.line(c.At, "UNSAFE", v)
			}
		}
	}
	d.seenCalls = len(calls)
	d.finalCalls = calls
}

// finish draws the last frame and prints the summary.
func (d *demo) finish() {
	if d.opts.Live {
		d.drawFrame(d.frame(time.Now()))
		d.out.restore()
	}
	now := time.Now()
	d.out.line(now, "summary", fmt.Sprintf("ran %s: %s; API calls: %s", fmtDur(now.Sub(d.start)), plural(d.failovers, "failover"), d.apiText()))
	for _, m := range d.maps {
		d.out.line(now, "summary", m.name+": "+m.statsText())
	}
	if len(d.violations) == 0 {
		d.out.line(now, "summary", "no deregistration ever named an address DNS was serving (I2)")
	} else {
		d.out.line(now, "summary", fmt.Sprintf("%d deregistrations named an address DNS was serving (I2): %v", len(d.violations), d.violations))
	}
}

// close stops the local servers. The engine must have stopped.
func (d *demo) close() {
	if d.fake != nil {
		_ = d.fake.Close()
	}
	if d.dns != nil {
		_ = d.dns.Close()
	}
	if d.out != nil {
		d.out.restore()
	}
	if d.log != nil {
		_ = d.log.Sync()
	}
}
