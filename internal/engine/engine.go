// Package engine runs ipsync's reconcile loop: for each mapping it resolves the endpoint, reads the target group,
// asks the planner what to change and applies it, registering before deregistering (I3).
//
// One RunOnce serves the one-shot `sync` command and the Lambda handler; Run is the daemon, a goroutine per
// mapping around the same pass, so that a slow or failing mapping never delays another.
package engine

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/plan"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
)

// Resolver resolves an endpoint to the addresses of one family.
type Resolver interface {
	Resolve(ctx context.Context, name string, fam resolver.Family) (resolver.Result, error)
}

// TargetGroup is the target-group seam; *targets.Client implements it.
type TargetGroup interface {
	Group(ctx context.Context, arn string) (targets.Group, error)
	VPCCIDRs(ctx context.Context, vpcID string) ([]netip.Prefix, error)
	Health(ctx context.Context, arn string) ([]nlb.TargetHealth, error)
	Register(ctx context.Context, arn string, ts []nlb.Target) error
	Deregister(ctx context.Context, arn string, ts []nlb.Target) error
}

var _ TargetGroup = (*targets.Client)(nil)

// ClientFunc returns the target-group client for a mapping (per region and role).
type ClientFunc func(ctx context.Context, targetGroupARN, roleARN string) (TargetGroup, error)

// FromFactory adapts a *targets.Factory.
func FromFactory(f *targets.Factory) ClientFunc {
	return func(ctx context.Context, arn, role string) (TargetGroup, error) {
		c, err := f.For(ctx, arn, role)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// Deps are the engine's collaborators.
type Deps struct {
	Resolver Resolver
	Clients  ClientFunc
	Metrics  *metrics.Metrics // nil: no metrics
	Log      *zap.Logger      // nil: no logs
	Now      func() time.Time // nil: time.Now
}

// Options change how the engine acts.
type Options struct {
	DryRun bool // I8: never call RegisterTargets or DeregisterTargets
	// Concurrency bounds how many mappings RunOnce works on at once (default 64).
	Concurrency int
	// FollowInterval is how often the target group is read while a new target is not yet healthy (default 2s);
	// FollowFor bounds that (default 5m).
	FollowInterval, FollowFor time.Duration
	// Settle makes RunOnce finish the job for callers that keep no memory between runs (one-shot sync, Lambda):
	// while stale addresses wait for deregister_after (I6), it resolves again when the answer's TTL ends and
	// passes again, so that one run both registers the new address and removes the old one.
	Settle bool
}

// Engine holds the mappings and their memory between passes.
type Engine struct {
	cfg      *config.Config
	deps     Deps
	opts     Options
	mappings []*mapping

	vpcMu sync.Mutex
	vpcs  map[vpcKey][]netip.Prefix // VPC CIDRs, read once per client and VPC (many mappings share a VPC)
}

type vpcKey struct {
	client TargetGroup
	vpcID  string
}

// vpcCIDRs returns the VPC's CIDRs, from the cache when another mapping already read them. VPC CIDRs change
// rarely; a restart picks up a change.
func (e *Engine) vpcCIDRs(ctx context.Context, client TargetGroup, vpcID string) ([]netip.Prefix, error) {
	key := vpcKey{client, vpcID}
	e.vpcMu.Lock()
	cidrs, ok := e.vpcs[key]
	e.vpcMu.Unlock()
	if ok {
		return cidrs, nil
	}
	cidrs, err := client.VPCCIDRs(ctx, vpcID)
	if err != nil {
		return nil, err
	}
	e.vpcMu.Lock()
	defer e.vpcMu.Unlock()
	if e.vpcs == nil {
		e.vpcs = map[vpcKey][]netip.Prefix{}
	}
	e.vpcs[key] = cidrs
	return cidrs, nil
}

// New builds an engine for a validated configuration. It makes no network call.
func New(cfg *config.Config, deps Deps, opts Options) *Engine {
	if deps.Log == nil {
		deps.Log = zap.NewNop()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	if opts.FollowInterval <= 0 {
		opts.FollowInterval = 2 * time.Second
	}
	if opts.FollowFor <= 0 {
		opts.FollowFor = 5 * time.Minute
	}
	e := &Engine{cfg: cfg, deps: deps, opts: opts}
	for _, s := range cfg.Syncs {
		deps.Metrics.Init(s.Name)
		e.mappings = append(e.mappings, &mapping{
			e:   e,
			cfg: s,
			log: deps.Log.With(zap.String("sync", s.Name), zap.String("endpoint", s.Endpoint),
				zap.String("target_group", s.TargetGroupARN)),
			awaitHealthy: map[netip.Addr]follow{},
		})
	}
	return e
}

// Report is what one pass did for one mapping.
type Report struct {
	Sync           string             `json:"sync"`
	Endpoint       string             `json:"endpoint"`
	TargetGroupARN string             `json:"target_group_arn"`
	Result         string             `json:"result"` // unchanged | changed | error
	DryRun         bool               `json:"dry_run,omitempty"`
	Addresses      []netip.Addr       `json:"addresses,omitempty"`
	TTL            time.Duration      `json:"-"`
	TTLSeconds     float64            `json:"ttl_seconds,omitempty"`
	Chain          []string           `json:"chain,omitempty"`
	Server         string             `json:"dns_server,omitempty"`
	Registered     []nlb.Target       `json:"registered,omitempty"`   // with DryRun: would register
	Deregistered   []nlb.Target       `json:"deregistered,omitempty"` // with DryRun: would deregister
	Waiting        []netip.Addr       `json:"waiting,omitempty"`      // stale, kept until deregister_after
	Kept           []netip.Addr       `json:"kept,omitempty"`         // stale, not ipsync's (prune: false)
	Targets        []nlb.TargetHealth `json:"targets,omitempty"`
	InSync         bool               `json:"in_sync"`
	Error          string             `json:"error,omitempty"`
	err            error
}

// Err is the pass's error, if any.
func (r Report) Err() error { return r.err }

// Changed reports whether the pass changed (or, dry, would change) the target group.
func (r Report) Changed() bool { return len(r.Registered) > 0 || len(r.Deregistered) > 0 }

// Results of a pass, as the ipsync_sync_runs_total result label.
const (
	ResultUnchanged = "unchanged"
	ResultChanged   = "changed"
	ResultError     = "error"
)

// RunOnce makes one pass over every mapping, several at once, and returns a report per mapping in
// configuration order. Cancelling ctx ends Settle's waits; calls in flight finish under their own deadlines.
func (e *Engine) RunOnce(ctx context.Context) []Report {
	return each(e, e.mappings, func(m *mapping) Report { return m.runOnce(ctx) })
}

// runOnce is one pass, then with Settle more passes, each after the answer's TTL, while stale addresses wait
// for deregister_after. The report adds up what every pass changed.
func (m *mapping) runOnce(ctx context.Context) Report {
	work := context.WithoutCancel(ctx)
	rep := m.reconcile(work)
	for settles := 1; m.e.opts.Settle && rep.err == nil && len(rep.Waiting) > 0 && settles < m.policy.DeregisterAfter; settles++ {
		select {
		case <-ctx.Done():
			return rep
		case <-time.After(max(m.resolveAt().Sub(m.now()), 0)):
		}
		next := m.reconcile(work)
		// A dry run plans the same registration again on every pass: count each target once.
		next.Registered = union(rep.Registered, next.Registered)
		next.Deregistered = union(rep.Deregistered, next.Deregistered)
		if next.err == nil && next.Changed() {
			next.Result = ResultChanged
		}
		rep = next
	}
	return rep
}

// Run is the daemon: each mapping runs on its own schedule until stop is done. A pass in flight when stop is
// done is finished (its calls keep their own deadlines), then Run returns.
//
// One scheduler holds every mapping's next wake-up time and hands due mappings to at most Options.Concurrency
// passes at once: an idle mapping costs no goroutine, and a slow or failing mapping holds one slot, never the
// others. First passes are spread over a start window (poll.min, longer for many mappings) so that a thousand
// mappings of equal TTL do not query DNS and AWS in lockstep bursts.
func (e *Engine) Run(stop context.Context) {
	work := context.WithoutCancel(stop) // calls must outlive stop so that a pass in flight finishes
	queue := &wakeQueue{}
	window := min(e.cfg.Poll.Max, e.cfg.Poll.Min*time.Duration(max(1, len(e.mappings)/200)))
	for _, m := range e.mappings {
		at := e.deps.Now()
		if len(e.mappings) > 1 {
			at = at.Add(rand.N(window))
		}
		heap.Push(queue, wake{at: at, m: m})
	}
	finished := make(chan *mapping)
	running := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for running < e.opts.Concurrency && queue.Len() > 0 && !(*queue)[0].at.After(e.deps.Now()) {
			m := heap.Pop(queue).(wake).m
			running++
			go func() {
				m.step(work)
				finished <- m
			}()
		}
		var due <-chan time.Time
		if running < e.opts.Concurrency && queue.Len() > 0 {
			timer.Reset(max((*queue)[0].at.Sub(e.deps.Now()), 0))
			due = timer.C
		}
		select {
		case <-stop.Done():
			for ; running > 0; running-- {
				<-finished
			}
			return
		case m := <-finished:
			running--
			heap.Push(queue, wake{at: m.nextWake(), m: m})
		case <-due:
		}
	}
}

// step is one turn of a mapping in the daemon: a pass when its answer's TTL has ended, otherwise a read of the
// target group when one is due.
func (m *mapping) step(ctx context.Context) {
	if m.now().Before(m.resolveAt()) {
		m.refresh(ctx)
	} else {
		m.reconcile(ctx)
	}
}

// wake is a mapping's next wake-up time in the scheduler's queue.
type wake struct {
	at time.Time
	m  *mapping
}

// wakeQueue is a min-heap of wake-ups (container/heap).
type wakeQueue []wake

func (q wakeQueue) Len() int           { return len(q) }
func (q wakeQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q wakeQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *wakeQueue) Push(x any)        { *q = append(*q, x.(wake)) }
func (q *wakeQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	*q = old[:len(old)-1]
	return w
}

// Ready returns nil once every mapping has had a successful pass within the last two resync intervals
// (or two poll.max, whichever is longer), and an error naming the mappings that have not. A mapping whose last
// pass failed with a hard error (one no retry fixes, see HardError) is not ready at once, and the error says what
// to change; soft errors make a mapping unready only when they outlast the window.
func (e *Engine) Ready() error {
	window := max(2*e.cfg.ResyncInterval, 2*e.cfg.Poll.Max)
	now := e.deps.Now()
	var notReady []string
	for _, m := range e.mappings {
		m.mu.Lock()
		last, lastErr := m.lastSuccess, m.lastErr
		m.mu.Unlock()
		switch {
		case last.IsZero() && lastErr == nil:
			notReady = append(notReady, m.cfg.Name+": no pass yet")
		case IsHard(lastErr):
			notReady = append(notReady, fmt.Sprintf("%s: needs a change: %v", m.cfg.Name, lastErr))
		case last.IsZero() || now.Sub(last) > window:
			notReady = append(notReady, fmt.Sprintf("%s: no successful pass in %s: %v", m.cfg.Name, window, lastErr))
		}
	}
	if len(notReady) > 0 {
		return errors.New("not ready: " + strings.Join(notReady, "; "))
	}
	return nil
}

// follow is a registered target being watched until healthy.
type follow struct {
	changedAt    time.Time // the address change it answers (zero: none, e.g. the first registration at start-up)
	registeredAt time.Time
}

// mapping is one endpoint -> target group pair and everything remembered about it between passes.
// A mapping is only ever worked on by one goroutine at a time; mu guards what Ready reads.
type mapping struct {
	e   *Engine
	cfg config.Sync
	log *zap.Logger

	// Learned once from the target group (init).
	client TargetGroup
	group  targets.Group
	policy plan.Policy
	family resolver.Family

	mem         plan.Memory
	current     []nlb.TargetHealth // the target group as last read, updated with our own changes
	describedAt time.Time          // zero: current is unknown
	lastAddrs   []netip.Addr       // last successful resolution
	changedAt   time.Time          // when the last address change was seen
	// awaitHealthy holds the addresses ipsync registered and is watching until healthy.
	awaitHealthy map[netip.Addr]follow
	nextResolve  time.Time

	mu          sync.Mutex
	lastSuccess time.Time
	lastErr     error

	// pass serializes passes of this mapping: the daemon, RunOnce, a Lambda watch or concurrent Lambda
	// invocations must never plan from, or update, one mapping's memory at the same time (I6, I7).
	pass sync.Mutex
}

func (m *mapping) now() time.Time { return m.e.deps.Now() }

// resolveAt and nextWake read the schedule under the pass lock, for callers outside a pass.
func (m *mapping) resolveAt() time.Time {
	m.pass.Lock()
	defer m.pass.Unlock()
	return m.nextResolve
}

func (m *mapping) nextWake() time.Time {
	m.pass.Lock()
	defer m.pass.Unlock()
	return m.wakeAt()
}

// wakeAt is when the mapping next needs attention: its next resolution (the answer's TTL within poll.min and
// poll.max), or before that a read of the target group, every FollowInterval while a new target is not yet
// healthy, otherwise every resync_interval to catch drift.
func (m *mapping) wakeAt() time.Time {
	next := m.nextResolve
	if !m.describedAt.IsZero() {
		describe := m.describedAt.Add(m.e.cfg.ResyncInterval)
		if len(m.awaitHealthy) > 0 {
			describe = m.describedAt.Add(m.e.opts.FollowInterval)
		}
		if describe.Before(next) {
			next = describe
		}
	}
	return next
}

// refresh reads the target group between resolutions: while following a new target's health, and at the
// resync interval to catch drift. It never changes the target group.
func (m *mapping) refresh(ctx context.Context) {
	m.pass.Lock()
	defer m.pass.Unlock()
	if m.client == nil || m.describedAt.IsZero() || m.now().Before(m.wakeAt()) {
		return
	}
	if err := m.describe(ctx); err != nil {
		m.log.Warn("reading the target group failed; will retry", zap.Error(err))
		m.describedAt = m.now() // back off until the next scheduled read
	}
}

// init learns what the mapping needs from the target group once: port, address family, VPC CIDRs.
func (m *mapping) init(ctx context.Context) error {
	if m.client != nil {
		return nil
	}
	client, err := m.e.deps.Clients(ctx, m.cfg.TargetGroupARN, m.cfg.RoleARN)
	if err != nil {
		return &HardError{Err: fmt.Errorf("AWS client for %s: %w", m.cfg.TargetGroupARN, err)}
	}
	g, err := client.Group(ctx, m.cfg.TargetGroupARN)
	if err != nil {
		return fmt.Errorf("reading target group %s: %w", m.cfg.TargetGroupARN, err)
	}
	if err := CheckGroup(m.cfg, g); err != nil {
		return err
	}
	pol := plan.Policy{
		Port:            cmpOr(m.cfg.Port, g.Port),
		DeregisterAfter: m.cfg.DeregisterAfter,
		Prune:           m.cfg.Prune,
		AZ:              m.cfg.AvailabilityZone,
	}
	if pol.AZ == plan.AZAuto || pol.AZ == plan.AZVPC { // vpc: to refuse an address outside the VPC (CheckAddrs)
		if pol.VPCCIDRs, err = m.e.vpcCIDRs(ctx, client, g.VPCID); err != nil {
			return fmt.Errorf("reading the CIDRs of VPC %s (the target group's) for availability_zone %s: %w", g.VPCID, pol.AZ, err)
		}
	}
	fam, err := resolver.FamilyFor(g.IPAddressType)
	if err != nil {
		return &HardError{Err: fmt.Errorf("target group %s: %w", m.cfg.TargetGroupARN, err)}
	}
	m.client, m.group, m.policy, m.family = client, g, pol, fam
	return nil
}

func cmpOr(a, b int32) int32 {
	if a != 0 {
		return a
	}
	return b
}

// forgetGroup drops what init learned (the group, its VPC's CIDRs, the cached targets), so that the next pass
// reads them again: after a hard error the fix may be exactly there (a new secondary CIDR, a recreated group).
func (m *mapping) forgetGroup() {
	if m.client == nil {
		return
	}
	m.e.vpcMu.Lock()
	delete(m.e.vpcs, vpcKey{m.client, m.group.VPCID})
	m.e.vpcMu.Unlock()
	m.client, m.describedAt = nil, time.Time{}
}

// describe reads the target group's targets into current.
func (m *mapping) describe(ctx context.Context) error {
	cur, err := m.client.Health(ctx, m.cfg.TargetGroupARN)
	if err != nil {
		return fmt.Errorf("reading the targets of %s: %w", m.cfg.TargetGroupARN, err)
	}
	m.current, m.describedAt = cur, m.now()
	m.observeHealth()
	m.setTargetMetrics()
	return nil
}

// observeHealth records convergence to healthy for the targets ipsync is following.
func (m *mapping) observeHealth() {
	now := m.now()
	for ip, f := range m.awaitHealthy {
		healthy := slices.ContainsFunc(m.current, func(h nlb.TargetHealth) bool {
			return h.IP == ip && h.Port == m.policy.Port && h.State == "healthy"
		})
		present := slices.ContainsFunc(m.current, func(h nlb.TargetHealth) bool {
			return h.IP == ip && h.Port == m.policy.Port && !h.Draining()
		})
		switch {
		case !present:
			delete(m.awaitHealthy, ip) // removed, by us or behind our back: nothing to follow
		case healthy && f.changedAt.IsZero():
			m.log.Info("target healthy", zap.Stringers("targets", []nlb.Target{{IP: ip, Port: m.policy.Port}}), zap.Duration("since_registration", now.Sub(f.registeredAt)))
			delete(m.awaitHealthy, ip)
		case healthy:
			m.e.deps.Metrics.Converged(m.cfg.Name, "healthy", now.Sub(f.changedAt))
			m.log.Info("target healthy", zap.Stringers("targets", []nlb.Target{{IP: ip, Port: m.policy.Port}}), zap.Duration("since_change", now.Sub(f.changedAt)))
			delete(m.awaitHealthy, ip)
		case now.Sub(f.registeredAt) > m.e.opts.FollowFor:
			m.log.Warn("target not healthy yet; no longer following it closely (check the target group's health check and the database's security group)",
				zap.Stringers("targets", []nlb.Target{{IP: ip, Port: m.policy.Port}}), zap.Duration("since_registration", now.Sub(f.registeredAt)))
			delete(m.awaitHealthy, ip)
		}
	}
}

func (m *mapping) setTargetMetrics() {
	byState := map[string]int{}
	for _, h := range m.current {
		byState[h.State]++
	}
	m.e.deps.Metrics.SetTargets(m.cfg.Name, byState)
}

// ttl is how long an answer stands: its TTL within poll.min and poll.max.
func (m *mapping) ttl(res resolver.Result) time.Duration {
	return min(max(res.TTL, m.e.cfg.Poll.Min), m.e.cfg.Poll.Max)
}

// observe records a successful answer in the planner's memory; plan.Observe decides whether it counts for I6.
func (m *mapping) observe(res resolver.Result, at time.Time) {
	m.mem = plan.Observe(m.mem, plan.Answer{Addrs: res.Addrs, At: at, TTL: m.ttl(res)}, m.current)
}

// resolve resolves the endpoint and counts the query. Durations are wall time, whatever clock schedules passes.
func (m *mapping) resolve(ctx context.Context) (resolver.Result, error) {
	start := time.Now()
	res, err := m.e.deps.Resolver.Resolve(ctx, m.cfg.Endpoint, m.family)
	m.e.deps.Metrics.DNSQuery(m.cfg.Name, dnsResult(err), time.Since(start))
	return res, err
}

// reconcile is one pass: resolve, read the target group when needed, plan, apply.
func (m *mapping) reconcile(ctx context.Context) (rep Report) {
	m.pass.Lock()
	defer m.pass.Unlock()
	start := time.Now() // for the pass's duration metric: wall time
	rep = Report{Sync: m.cfg.Name, Endpoint: m.cfg.Endpoint, TargetGroupARN: m.cfg.TargetGroupARN, DryRun: m.e.opts.DryRun}
	defer func() { m.finish(&rep, start) }()

	if err := m.init(ctx); err != nil {
		rep.err = err
		m.nextResolve = m.now().Add(m.e.cfg.Poll.Max)
		return rep
	}

	res, err := m.resolve(ctx)
	if err != nil {
		// I1: the desired state is unknown, so nothing changes. Try again soon: DNS errors are usually brief.
		rep.err = fmt.Errorf("resolving %s: %w; no target changed", m.cfg.Endpoint, err)
		m.nextResolve = m.now().Add(m.e.cfg.Poll.Min)
		return rep
	}
	rep.Addresses, rep.TTL, rep.TTLSeconds, rep.Chain, rep.Server = res.Addrs, res.TTL, res.TTL.Seconds(), res.Chain, res.Server
	resolvedAt := m.now()
	m.nextResolve = resolvedAt.Add(m.ttl(res))
	m.e.deps.Metrics.SetResolvedAddresses(m.cfg.Name, len(res.Addrs))
	if err := CheckAddrs(m.cfg, m.group, m.policy.VPCCIDRs, res.Addrs); err != nil {
		rep.err = err // refused before any change: availability_zone vpc and an address outside the VPC
		return rep
	}

	changed := m.lastAddrs != nil && !slices.Equal(m.lastAddrs, res.Addrs)
	if changed {
		m.changedAt = m.now()
		m.e.deps.Metrics.AddressChange(m.cfg.Name)
		m.log.Info("address change detected", zap.Stringers("from", m.lastAddrs), zap.Stringers("to", res.Addrs),
			zap.Strings("chain", res.Chain), zap.String("dns_server", res.Server))
	}
	m.lastAddrs = res.Addrs

	fresh := changed || m.describedAt.IsZero() || m.now().Sub(m.describedAt) >= m.e.cfg.ResyncInterval
	if fresh {
		if err := m.describe(ctx); err != nil {
			rep.err = err
			return rep
		}
	}
	m.observe(res, resolvedAt)
	p := plan.Make(res.Addrs, m.current, m.mem, m.policy)
	if !p.Empty() && !fresh {
		// Never change the target group from a cached view: read it again and plan on what is there now.
		if err := m.describe(ctx); err != nil {
			rep.err = err
			return rep
		}
		p = plan.Make(res.Addrs, m.current, m.mem, m.policy)
	}
	rep.Waiting, rep.Kept, rep.InSync = p.Waiting, p.Kept, p.InSync
	if p.InSync {
		m.changedAt = time.Time{} // the change is fully handled; a later drift fix is not a failover to time
	}
	rep.err = m.apply(ctx, p, &rep)
	rep.Targets = slices.Clone(m.current)
	return rep
}

// apply changes the target group as planned: register first, deregister only after that succeeded (I3), except
// when the group is full (TooManyTargets), where stale targets must go first to make room.
func (m *mapping) apply(ctx context.Context, p plan.Plan, rep *Report) error {
	if p.Empty() {
		return nil
	}
	m.log.Info("target group out of sync", zap.Stringers("addresses", m.lastAddrs),
		zap.Stringers("register", p.Register), zap.Stringers("deregister", p.Deregister),
		zap.Stringers("waiting", p.Waiting), zap.Bool("dry_run", m.e.opts.DryRun))
	if m.e.opts.DryRun {
		// I8: decided here, at the point of change.
		rep.Registered, rep.Deregistered = p.Register, p.Deregister
		return nil
	}
	if len(p.Register) > 0 {
		err := m.register(ctx, p.Register)
		if awserr.IsTooManyTargets(err) && len(p.Deregister) > 0 {
			m.log.Warn("target group is full (TooManyTargets): deregistering stale targets before registering, an exception to register-first",
				zap.Stringers("deregister", p.Deregister))
			if err := m.deregisterStale(ctx, p.Deregister, rep); err != nil {
				return err
			}
			p.Deregister = nil
			err = m.register(ctx, p.Register)
		}
		if err != nil {
			return err // I3: nothing is deregistered when registration failed
		}
		rep.Registered = p.Register
	}
	if len(p.Deregister) > 0 {
		if err := m.deregisterStale(ctx, p.Deregister, rep); err != nil {
			return err
		}
	}
	m.setTargetMetrics()
	return nil
}

// deregisterStale resolves the endpoint once more, then deregisters the targets DNS still leaves out. The pass's
// answer can be seconds old by now when AWS was slow or throttled, and an address DNS serves again meanwhile must
// stay (I2 on the freshest answer). When that resolution fails, nothing is deregistered (I1).
func (m *mapping) deregisterStale(ctx context.Context, ts []nlb.Target, rep *Report) error {
	res, err := m.resolve(ctx)
	if err != nil {
		return fmt.Errorf("resolving %s again before deregistering %v: %w; nothing deregistered", m.cfg.Endpoint, ts, err)
	}
	m.observe(res, m.now()) // just after the pass's own resolution: resets an address that is back, counts no absence
	var stale, back []nlb.Target
	for _, t := range ts {
		if slices.Contains(res.Addrs, t.IP) {
			back = append(back, t)
		} else {
			stale = append(stale, t)
		}
	}
	if len(back) > 0 {
		m.log.Info("not deregistering targets DNS returns again", zap.Stringers("targets", back), zap.Stringers("addresses", res.Addrs))
	}
	if len(stale) == 0 {
		return nil
	}
	if err := m.deregister(ctx, stale); err != nil {
		return err
	}
	rep.Deregistered = append(rep.Deregistered, stale...)
	return nil
}

func (m *mapping) register(ctx context.Context, ts []nlb.Target) error {
	m.log.Info("registering targets", zap.Stringers("targets", ts))
	if err := m.client.Register(ctx, m.cfg.TargetGroupARN, ts); err != nil {
		return fmt.Errorf("registering %v in %s: %w", ts, m.cfg.TargetGroupARN, err) // finish logs it, once
	}
	now := m.now()
	m.log.Info("registered targets", zap.Stringers("targets", ts))
	m.mem = plan.Registered(m.mem, ts)
	m.e.deps.Metrics.Registered(m.cfg.Name, len(ts))
	for _, t := range ts {
		m.current = slices.DeleteFunc(m.current, func(h nlb.TargetHealth) bool { return h.IP == t.IP && h.Port == t.Port })
		m.current = append(m.current, nlb.TargetHealth{Target: t, State: "initial"})
		// Convergence is measured from a seen address change; a first registration at start-up has none, but
		// its health is still followed.
		if !m.changedAt.IsZero() {
			m.e.deps.Metrics.Converged(m.cfg.Name, "registered", now.Sub(m.changedAt))
		}
		m.awaitHealthy[t.IP] = follow{changedAt: m.changedAt, registeredAt: now}
	}
	return nil
}

func (m *mapping) deregister(ctx context.Context, ts []nlb.Target) error {
	m.log.Info("deregistering targets", zap.Stringers("targets", ts))
	if err := m.client.Deregister(ctx, m.cfg.TargetGroupARN, ts); err != nil {
		return fmt.Errorf("deregistering %v from %s: %w", ts, m.cfg.TargetGroupARN, err)
	}
	m.log.Info("deregistered targets", zap.Stringers("targets", ts))
	m.mem = plan.Deregistered(m.mem, ts)
	m.e.deps.Metrics.Deregistered(m.cfg.Name, len(ts))
	for _, t := range ts {
		delete(m.awaitHealthy, t.IP) // gone before it was healthy: nothing left to follow (I9)
		for i := range m.current {
			if m.current[i].Target == t {
				m.current[i].State = "draining"
			}
		}
	}
	return nil
}

// finish records the pass in metrics, logs and readiness.
func (m *mapping) finish(rep *Report, start time.Time) {
	rep.err = classify(rep.err)
	switch {
	case rep.err != nil && IsHard(rep.err):
		// No retry fixes it: an error line saying what to change, and the next try only after poll.max, so that
		// a fix is picked up without a restart and AWS is not asked the refused question every TTL.
		rep.Result, rep.Error = ResultError, rep.err.Error()
		m.log.Error("sync pass failed", zap.Error(rep.err), zap.String("fault", "hard"), zap.Stringers("addresses", m.lastAddrs))
		m.nextResolve = m.now().Add(m.e.cfg.Poll.Max)
		m.forgetGroup()
	case rep.err != nil:
		rep.Result, rep.Error = ResultError, rep.err.Error()
		m.log.Warn("sync pass failed", zap.Error(rep.err), zap.String("fault", "soft"), zap.Stringers("addresses", m.lastAddrs))
	case rep.Changed():
		rep.Result = ResultChanged
	default:
		rep.Result = ResultUnchanged
	}
	m.e.deps.Metrics.SyncRun(m.cfg.Name, rep.Result, time.Since(start))
	if rep.err == nil {
		// After a failed pass in_sync keeps its last known value: a DNS outage is not a drift.
		m.e.deps.Metrics.SetInSync(m.cfg.Name, rep.InSync)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr = rep.err
	if rep.err == nil {
		m.lastSuccess = m.now()
	}
}

func union(a, b []nlb.Target) []nlb.Target {
	out := slices.Clone(a)
	for _, t := range b {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func dnsResult(err error) string {
	if err == nil {
		return "success"
	}
	return string(resolver.KindOf(err))
}
