// Package demo is the body of `ipsync demo`: the whole system on this machine with no AWS account.
//
// A local DNS server (dnstest) plays the databases' DNS, a local ELBv2 and RDS endpoint (elbv2fake) plays their
// NLB target groups and an Aurora cluster's API, and the real sync engine keeps each target group equal to what
// its source stands for while the demo fails the databases over in turn: a Multi-AZ instance and an Aurora
// cluster followed by DNS name, and an Aurora cluster followed through the RDS API with a writer and a readers
// target group (aurora.go). The demo measures time to converge itself, from the fake's state, so the numbers do
// not take the engine's word for it, and it checks the fake's call log and target states against the DNS and
// RDS history it drove (I2).
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/members"
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
	FailoverEvery time.Duration // one database fails over this often, each in turn (default 10s)
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
		Members: func(context.Context, string, string) (engine.MembersReader, error) {
			return d.members, nil
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
	members        *members.Reader // the engine's RDS API client
	cfg            *config.Config
	log            *zap.Logger
	logs           *logRing

	dbs          []*database
	maps         []*mapping // every target group, in the order of dbs
	byARN        map[string]*mapping
	failovers    int // how many failovers so far; also picks the next database
	nextFailover time.Time

	seenCalls  int            // calls of the fake's log already counted
	lastScan   time.Time      // when the call log was last read
	apiTotals  map[string]int // calls by action, all mappings
	violations []string       // deregistrations (or losses) of an address its source stood for at that moment (I2)
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
	d.members = &members.Reader{API: d.fake.RDSClient(opts.Metrics.AWSMiddleware()), CallTimeout: callTimeout}

	d.cfg = config.Defaults()
	d.cfg.DNS.Servers, d.cfg.DNS.Timeout = []string{d.dns.Addr()}, dnsTimeout
	d.cfg.Poll = config.Poll{Min: time.Second, Max: 30 * time.Second}
	d.cfg.ResyncInterval = 60 * time.Second
	d.cfg.Listen = "" // the demo serves nothing; the command may serve opts.Metrics itself
	d.cfg.Log = config.Log{Level: "info", Format: "console"}
	if err := d.setupScenario(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
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

// setupScenario creates the databases: their DNS records, the Aurora cluster in the local RDS API, a target
// group and a mapping for each group.
func (d *demo) setupScenario() error {
	ttl := uint32(d.opts.TTL / time.Second)
	d.dbs = scenario()
	for _, db := range d.dbs {
		if db.cluster != "" {
			if err := db.setupRDS(d.fake, d.dns, ttl); err != nil {
				return fmt.Errorf("the local RDS API: %w", err)
			}
		} else {
			db.setupDNS(d.dns, ttl)
		}
		for _, m := range db.groups {
			m.arn = d.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{
				Name: m.name, Port: db.port, Protocol: "TCP", VPCID: vpcID, TargetType: "ip", IPAddressType: "ipv4",
			})
			if m.arn == "" {
				return fmt.Errorf("the local ELBv2 endpoint refused target group %q", m.name)
			}
			d.cfg.Syncs = append(d.cfg.Syncs, m.sync())
			d.maps = append(d.maps, m)
			d.byARN[m.arn] = m
		}
	}
	return nil
}

// begin records what each source stands for at the start (set up by newDemo) and starts following the engine's
// first registration, which is tracked like a failover from nothing.
func (d *demo) begin() {
	now := time.Now()
	for _, db := range d.dbs {
		db.recordDesired(now)
	}
	for _, m := range d.maps {
		m.active = &tracker{Failover: Failover{At: now, To: m.desired()}, initial: true}
	}
	d.out.line(d.start, "demo", header(d.opts))
	for _, db := range d.dbs {
		d.out.line(now, "setup", db.setupText(d.opts.TTL.String()))
	}
	d.out.line(now, "setup", fmt.Sprintf("local DNS %s, local ELBv2 and RDS %s; the ipsync engine starts now", d.dns.Addr(), d.fake.URL()))
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
		d.out.line(now, "summary", "no target was deregistered or lost while DNS served it or RDS listed it in its group's role (I2)")
	} else {
		d.out.line(now, "summary", fmt.Sprintf("%d targets deregistered or lost while DNS served them or RDS listed them in their group's role (I2): %v",
			len(d.violations), d.violations))
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
