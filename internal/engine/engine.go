// Package engine runs ipsync's reconcile loop: for each mapping it resolves the endpoint, reads the target group,
// asks the planner what to change and applies it, registering before deregistering (I3).
//
// Every mode runs the same pass (pass.go): resolve, plan, apply, then finish, which records the outcome. RunOnce
// serves the one-shot `sync` command and the Lambda handler (watch.go adds the failover watch); Run is the daemon
// (scheduler.go), one scheduler that hands due mappings to a bounded set of workers, so that a slow or failing
// mapping never delays another. group.go is a mapping's view of its target group, apply.go the calls that change
// it, errors.go which failures a retry cannot fix, check.go the checks `ipsync check` shares with the pass.
package engine

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/nlb"
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
	Health(ctx context.Context, arn string) ([]nlb.TargetHealth, error)
	Register(ctx context.Context, arn string, ts []nlb.Target) error
	Deregister(ctx context.Context, arn string, ts []nlb.Target) error
	// Tags, AddTags and RemoveTags read and write the ownership record of a mapping with prune: false.
	Tags(ctx context.Context, arn string) (map[string]string, error)
	AddTags(ctx context.Context, arn string, tags map[string]string) error
	RemoveTags(ctx context.Context, arn string, keys []string) error
}

var _ TargetGroup = (*targets.Client)(nil)

// ClientFunc returns the target-group client for a mapping: one per region and role.
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
	Members  MembersFunc      // for rds: mappings; nil: they fail
	Metrics  *metrics.Metrics // nil: no metrics
	Log      *zap.Logger      // nil: no logs
	Now      func() time.Time // nil: time.Now
}

// Options change how the engine acts.
type Options struct {
	DryRun bool // I8: never call RegisterTargets, DeregisterTargets, AddTags or RemoveTags
	// Concurrency bounds how many mappings are worked on at once: by RunOnce, Watch and the daemon (default 64).
	Concurrency int
	// FollowInterval is how often the target group is read while a new target is not yet healthy (default 2s);
	// FollowFor bounds that (default 5m).
	FollowInterval, FollowFor time.Duration
	// StopGrace bounds how long Run lets the passes in flight finish after stop (default 12 s): then their calls
	// are cancelled. With the HTTP server's shutdown after it, the daemon exits within 20 s of SIGTERM, well
	// inside ECS's default stop timeout of 30 s, after which ECS kills the task.
	StopGrace time.Duration
	// Settle makes RunOnce finish the job for callers that keep no memory between runs (one-shot sync, Lambda):
	// while stale addresses wait for deregister_after (I6), it resolves again when the answer's TTL ends and
	// passes again, so that one run both registers the new address and removes the old one.
	Settle bool
}

// Engine holds the mappings and their memory between passes.
type Engine struct {
	cfg  *config.Config
	deps Deps
	opts Options

	mu        sync.Mutex
	mappings  []*mapping                     // replaced by Reload, never changed in place (current)
	started   []*mapping                     // started by Reload, not yet scheduled by Run (takeStarted)
	reloaded  chan struct{}                  // wakes Run after a Reload
	reloading sync.Mutex                     // serializes Reloads
	stretched map[budgetRegion]time.Duration // drift re-read stretches in force (resyncIntervals); guarded by reloading

	stopping     chan struct{} // closed when Run's stop is done: no deregistration starts after it
	stoppingOnce sync.Once
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
	if opts.StopGrace <= 0 {
		opts.StopGrace = 12 * time.Second
	}
	e := &Engine{cfg: cfg, deps: deps, opts: opts, stopping: make(chan struct{}), reloaded: make(chan struct{}, 1)}
	var resync []time.Duration
	resync, e.stretched = resyncIntervals(cfg, nil, deps.Log)
	for i, s := range cfg.Syncs {
		initMetrics(deps.Metrics, s)
		e.mappings = append(e.mappings, newMapping(e, s, resync[i]))
	}
	return e
}

// Report is what one pass did for one mapping.
type Report struct {
	Sync           string        `json:"sync"`
	Endpoint       string        `json:"endpoint"` // the source: a DNS name, names joined by ",", or the rds: source
	TargetGroupARN string        `json:"target_group_arn"`
	Result         string        `json:"result"` // unchanged | changed | error
	DryRun         bool          `json:"dry_run,omitempty"`
	Addresses      []netip.Addr  `json:"addresses,omitempty"`
	TTL            time.Duration `json:"-"`
	TTLSeconds     float64       `json:"ttl_seconds,omitempty"`
	Chain          []string      `json:"chain,omitempty"`
	Server         string        `json:"dns_server,omitempty"`
	DNSMode        string        `json:"dns_mode,omitempty"`     // recursive | authoritative | fallback
	DNSFallback    string        `json:"dns_fallback,omitempty"` // why authoritative mode fell back to recursive
	Registered     []nlb.Target  `json:"registered,omitempty"`   // with DryRun: would register
	Deregistered   []nlb.Target  `json:"deregistered,omitempty"` // with DryRun: would deregister
	// ZoneAtRegistration, with DryRun and availability_zone auto: the addresses of Registered whose zone AWS's
	// answer would decide (none inside the target group's VPC, all outside it); a dry run cannot learn it.
	ZoneAtRegistration []netip.Addr       `json:"zone_at_registration,omitempty"`
	Waiting            []netip.Addr       `json:"waiting,omitempty"` // stale, kept until deregister_after
	Kept               []netip.Addr       `json:"kept,omitempty"`    // stale, not ipsync's (prune: false)
	Held               []netip.Addr       `json:"held,omitempty"`    // stale, kept for a source that is unknown or held
	Sources            []SourceReport     `json:"sources,omitempty"` // each DNS name or RDS member, and what it said
	Targets            []nlb.TargetHealth `json:"targets,omitempty"`
	InSync             bool               `json:"in_sync"`
	Error              string             `json:"error,omitempty"`
	err                error
	nextResolve        time.Time // when the mapping resolves next (Settle waits for it)
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
	return each(e, e.current(), func(m *mapping) Report { return m.runOnce(ctx) })
}

// runOnce is one pass, then with Settle more passes, each after the answer's TTL, while stale addresses wait
// for deregister_after. The report adds up what every pass changed.
func (m *mapping) runOnce(ctx context.Context) Report {
	work := context.WithoutCancel(ctx)
	rep := m.reconcile(work)
	for settles := 1; m.e.opts.Settle && rep.err == nil && len(rep.Waiting) > 0 && settles < m.cfg.DeregisterAfter; settles++ {
		select {
		case <-ctx.Done():
			return rep
		case <-time.After(max(rep.nextResolve.Sub(m.now()), 0)):
		}
		next := m.reconcile(work)
		// A dry run plans the same registration again on every pass: count each target once.
		next.Registered = union(rep.Registered, next.Registered)
		next.Deregistered = union(rep.Deregistered, next.Deregistered)
		next.ZoneAtRegistration = union(rep.ZoneAtRegistration, next.ZoneAtRegistration)
		if next.err == nil && next.Changed() {
			next.Result = ResultChanged
		}
		rep = next
	}
	return rep
}

// union returns a with the elements of b it does not hold yet, in order.
func union[T comparable](a, b []T) []T {
	out := slices.Clone(a)
	for _, t := range b {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// each runs fn for every mapping, at most Concurrency at once, and returns the results in the given order.
func each[T any](e *Engine, ms []*mapping, fn func(*mapping) T) []T {
	out := make([]T, len(ms))
	var g errgroup.Group
	g.SetLimit(e.opts.Concurrency)
	for i, m := range ms {
		g.Go(func() error {
			out[i] = fn(m)
			return nil
		})
	}
	_ = g.Wait() // fn reports its failures in its result
	return out
}
