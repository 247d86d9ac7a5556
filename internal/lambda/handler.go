// Package lambda is ipsync as an AWS Lambda function: the same binary, built as `bootstrap`, serves
// invocations when AWS_LAMBDA_RUNTIME_API is set.
//
//   - An EventBridge scheduled event: one pass over every mapping.
//   - An RDS failover event (FailoverEventIDs): the mappings of that database (rds_identifier, by default the
//     endpoint's first label) are resolved every second until their address changes and is synced, or until the
//     window (DefaultWindow, capped by the invocation's remaining time) ends. RDS events may come before the
//     DNS record changes; a later scheduled pass is the backstop.
//   - An RDS event about a member (MemberEventIDs): the membership of the rds: mappings it concerns is read
//     again, and they pass once. Failover events read the membership again too, during the watch.
//   - A direct invocation {"dry_run": bool, "syncs": ["name"]}: one pass, answered with the per-mapping report.
//
// With IPSYNC_DRY_RUN=true (Options.DryRun) every invocation only plans, whatever the event says (I8).
//
// The engine, and with it the AWS clients, the target groups' details and each mapping's memory between passes
// (I6), is built once per execution environment and reused by every invocation it serves. Metrics are
// CloudWatch Embedded Metric Format lines on stdout; logs are zap JSON lines on stderr.
package lambda

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/engine"
)

// DefaultWindow is the longest a failover event is watched; RDS says Multi-AZ instance failover takes 60-120 s.
const DefaultWindow = 120 * time.Second

// DeadlineMargin is left of an invocation's time after the watch window, for the last pass (its DNS and AWS
// calls have their own deadlines) and the response. A function's timeout should be at least the window plus this.
const DeadlineMargin = 15 * time.Second

// Options are the handler's collaborators, built once per execution environment.
type Options struct {
	Config   *config.Config // validated
	Resolver engine.Resolver
	Clients  engine.ClientFunc
	Members  engine.MembersFunc // for rds: mappings
	Log      *zap.Logger        // nil: no logs
	Metrics  io.Writer          // EMF lines (os.Stdout in Lambda); nil: none
	Window   time.Duration      // failover watch; 0 = DefaultWindow
	Interval time.Duration      // resolution interval of the watch; 0 = 1 s, or poll.min in authoritative mode
	DryRun   bool               // every invocation plans only (IPSYNC_DRY_RUN): no RegisterTargets/DeregisterTargets call (I8)
	Now      func() time.Time
	// Discoverer finds the tagged target groups when Config.Discover is enabled (nil: discovery off). A scheduled
	// event searches when the last search is older than discover.interval; any other event searches only when
	// this execution environment has not searched yet.
	Discoverer engine.Discoverer
}

// Handler serves invocations; it implements aws-lambda-go's lambda.Handler. Invoke is safe for concurrent use:
// Lambda can send one execution environment several invocations at once (AWS_LAMBDA_MAX_CONCURRENCY), and the
// engine then serializes the passes of each mapping, so two invocations never plan from one mapping's memory
// together.
type Handler struct {
	opts Options
	log  *zap.Logger
	emf  *EMF
	live *engine.Engine

	fleet *engine.Fleet // nil: discovery off

	mu  sync.Mutex
	dry *engine.Engine // built on the first dry-run invocation; its own memory, so a plan never touches live's (live itself with Options.DryRun)
}

// New builds the handler and its engine. It makes no network call.
func New(opts Options) *Handler {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
		if opts.Config.DNS.Mode == config.DNSModeAuthoritative {
			opts.Interval = opts.Config.Poll.Min // the name servers show the change at once: ask as often as allowed
		}
	}
	h := &Handler{opts: opts, log: opts.Log, emf: NewEMF(opts.Metrics, opts.Now)}
	h.live = h.engine(opts.DryRun)
	if opts.Discoverer != nil && opts.Config.Discover.Enabled() {
		h.fleet = engine.NewFleet(h.live, opts.Discoverer, opts.Config, opts.Log)
	}
	return h
}

// engine builds an engine with Settle: a pass that registers a new address also waits the answer's TTL and
// deregisters the old one in the same invocation, as the environment may not serve the next one.
func (h *Handler) engine(dryRun bool) *engine.Engine {
	return engine.New(h.opts.Config, engine.Deps{
		Resolver: h.opts.Resolver,
		Clients:  h.opts.Clients,
		Members:  h.opts.Members,
		Log:      h.opts.Log,
		Now:      h.opts.Now,
	}, engine.Options{DryRun: dryRun, Settle: true})
}

func (h *Handler) dryEngine() *engine.Engine {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dry == nil {
		h.dry = h.live
		if !h.opts.DryRun {
			h.dry = h.engine(true)
			if h.fleet != nil {
				h.fleet.Attach(h.dry)
			}
		}
	}
	return h.dry
}

// Response is the invocation's result. Syncs is []engine.Report, or []engine.WatchReport after a failover watch.
type Response struct {
	Event        string `json:"event"` // scheduled | rds | direct
	EventID      string `json:"event_id,omitempty"`
	DBIdentifier string `json:"db_identifier,omitempty"`
	Watched      bool   `json:"watched,omitempty"` // a failover watch ran (WindowSeconds at most)
	WindowSecs   int    `json:"window_seconds,omitempty"`
	DryRun       bool   `json:"dry_run,omitempty"`
	Syncs        any    `json:"syncs"`
	Note         string `json:"note,omitempty"`
}

// SyncError is returned for a scheduled or RDS event when a mapping's (last) pass failed, so that the
// function's Errors metric and alarm see it. Lambda reports it with errorType "SyncError". Direct invocations
// return the report instead, errors included.
type SyncError struct{ Problems []string }

func (e *SyncError) Error() string {
	noun := "mappings"
	if len(e.Problems) == 1 {
		noun = "mapping"
	}
	return fmt.Sprintf("sync failed for %d %s (each error says what was left unchanged): %s", len(e.Problems), noun,
		strings.Join(e.Problems, "; "))
}

// Invoke serves one invocation.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	log := h.log
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		log = log.With(zap.String("aws_request_id", lc.AwsRequestID))
	}
	ev, err := parseEvent(payload)
	if err != nil {
		log.Error("refusing the invocation", zap.Error(err))
		return nil, err
	}
	resp, reports, err := h.serve(ctx, log, ev)
	if err != nil {
		log.Error("refusing the invocation", zap.Error(err))
		return nil, err
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encoding the response: %w", err)
	}
	if ev.kind == kindDirect {
		return out, nil
	}
	var problems []string
	for _, r := range reports {
		if r.Err() != nil {
			problems = append(problems, r.Sync+": "+r.Error)
		}
	}
	if len(problems) > 0 {
		return nil, &SyncError{Problems: problems}
	}
	return out, nil
}

// serve runs what the event asks for and returns the response, the last pass of each mapping (for errors) and
// an *EventError for a request that cannot be served.
func (h *Handler) serve(ctx context.Context, log *zap.Logger, ev event) (Response, []engine.Report, error) {
	// A plan changes nothing, so it has nothing to count: a dry invocation writes no metrics.
	dry := h.opts.DryRun || ev.kind == kindDirect && ev.direct.DryRun
	if dry {
		log = log.With(zap.Bool("dry_run", true))
	}
	h.discoverIfDue(ctx, ev)
	switch ev.kind {
	case kindScheduled:
		log.Info("scheduled pass", zap.String("event_id", ev.id))
		reps := h.live.RunOnce(ctx)
		h.putReports(log, reps, dry)
		return Response{Event: string(ev.kind), DryRun: dry, Syncs: reps}, reps, nil
	case kindRDS:
		return h.serveRDS(ctx, log, ev, dry)
	default: // kindDirect
		return h.serveDirect(ctx, log, ev, dry)
	}
}

// discoverIfDue searches for tagged target groups when discovery is on: on a scheduled event when the last search
// is older than discover.interval, on any other only when this environment has not searched yet.
func (h *Handler) discoverIfDue(ctx context.Context, ev event) {
	if h.fleet == nil {
		return
	}
	maxAge := time.Duration(math.MaxInt64) // only when this environment has not searched yet
	if ev.kind == kindScheduled {
		maxAge = h.opts.Config.Discover.Interval
	}
	_ = h.fleet.DiscoverIfOlder(ctx, maxAge) // logged; the mappings found before keep running
}

// serveRDS serves an RDS event: nothing when no mapping follows the database, one pass over its mappings for an
// event that is not a failover, and for a failover a watch until their address changes and is synced.
func (h *Handler) serveRDS(ctx context.Context, log *zap.Logger, ev event, dry bool) (Response, []engine.Report, error) {
	id := ev.rds.DBIdentifier()
	resp := Response{Event: string(ev.kind), EventID: ev.rds.EventID, DBIdentifier: id, DryRun: dry}
	names := h.live.MappingsFor(id)
	if len(names) == 0 && ev.rds.MemberChange() {
		// An instance no mapping knows yet, created or deleted: it may be a new reader or replica of any
		// rds: source, so every rds: mapping reads its membership again.
		names = h.live.RDSMappings()
	}
	h.live.RefreshMembers(names)
	log = log.With(zap.String("event_id", ev.id), zap.String("rds_event", ev.rds.EventID),
		zap.String("db_identifier", id), zap.Strings("syncs", names))
	if len(names) == 0 {
		resp.Syncs = []engine.Report{}
		resp.Note = fmt.Sprintf("no mapping follows %q (its rds_identifier, rds: source or a member of it; the default is the endpoint's first label); nothing to do", id)
		log.Info("RDS event for a database no mapping follows; nothing to do")
		return resp, nil, nil
	}
	if !ev.rds.Failover() {
		log.Info("RDS event that is not a failover: one pass over its mappings")
		reps := h.live.RunOnceFor(ctx, names)
		h.putReports(log, reps, dry)
		resp.Syncs = reps
		return resp, reps, nil
	}
	window := h.window(ctx)
	log.Info("RDS failover event: watching its mappings until their address changes and is synced",
		zap.String("message", ev.rds.Message), zap.Duration("window", window))
	ws := h.live.Watch(ctx, names, window, h.opts.Interval)
	reps := make([]engine.Report, len(ws))
	for i, w := range ws {
		reps[i] = w.Report
		if !dry {
			h.put(log, w.Sync, w.Report, len(w.Registered), len(w.Deregistered), w.FailedPasses)
		}
	}
	resp.Watched, resp.WindowSecs, resp.Syncs = true, int(window.Seconds()), ws
	return resp, reps, nil
}

// serveDirect serves a direct invocation: one pass over the named mappings (all when none is named), a plan only
// when it is dry. A name that is no mapping's is an *EventError and nothing runs.
func (h *Handler) serveDirect(ctx context.Context, log *zap.Logger, ev event, dry bool) (Response, []engine.Report, error) {
	names := ev.direct.Syncs
	if len(names) == 0 {
		names = h.live.Names()
	}
	if unknown := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(h.live.Names(), n) }); len(unknown) > 0 {
		return Response{}, nil, &EventError{msg: fmt.Sprintf("direct invocation: no mapping named %q; the mappings are %q",
			unknown, h.live.Names())}
	}
	log.Info("direct invocation", zap.Strings("syncs", names))
	eng := h.live
	if dry {
		eng = h.dryEngine()
	}
	reps := eng.RunOnceFor(ctx, names)
	h.putReports(log, reps, dry)
	return Response{Event: string(ev.kind), DryRun: dry, Syncs: reps}, reps, nil
}

// window is the watch window, capped so that the last pass and the response fit in the invocation's time.
func (h *Handler) window(ctx context.Context) time.Duration {
	w := h.opts.Window
	if dl, ok := ctx.Deadline(); ok {
		w = min(w, time.Until(dl)-DeadlineMargin)
	}
	return max(w, 0)
}

func (h *Handler) putReports(log *zap.Logger, reps []engine.Report, dry bool) {
	if dry {
		return
	}
	for _, r := range reps {
		failed := 0
		if r.Err() != nil {
			failed = 1
		}
		h.put(log, r.Sync, r, len(r.Registered), len(r.Deregistered), failed)
	}
}

// put writes one mapping's EMF line for the invocation. InSync and ResolvedAddresses are left out when the
// last pass failed: the state is unknown then, as for the daemon's ipsync_in_sync.
func (h *Handler) put(log *zap.Logger, sync string, last engine.Report, registered, deregistered, failed int) {
	ms := []Metric{
		{Name: "Registrations", Unit: UnitCount, Value: float64(registered)},
		{Name: "Deregistrations", Unit: UnitCount, Value: float64(deregistered)},
		{Name: "SyncErrors", Unit: UnitCount, Value: float64(failed)},
	}
	if last.Err() == nil {
		in := 0.0
		if last.InSync || last.Changed() && len(last.Waiting) == 0 {
			in = 1 // the pass applied its whole plan
		}
		ms = append(ms, Metric{Name: "InSync", Unit: UnitNone, Value: in},
			Metric{Name: "ResolvedAddresses", Unit: UnitCount, Value: float64(len(last.Addresses))})
	}
	if err := h.emf.Put(sync, ms); err != nil {
		log.Warn("writing metrics failed", zap.Error(err))
	}
}
