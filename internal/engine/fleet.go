package engine

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/discover"
)

// Discoverer is the search for tagged target groups; *discover.Discoverer implements it.
type Discoverer interface {
	Discover(ctx context.Context) discover.Result
}

var _ Discoverer = (*discover.Discoverer)(nil)

// Fleet runs the mappings discovery finds by tag beside the static ones (syncs:). After each search, and when
// the static configuration changes (SIGHUP), it hands its engines the merge of both through Reload, the one place
// where mappings start and stop: a group found anew starts, a group whose tag changed restarts with its new
// settings, a group whose tag was removed (or that was deleted) stops, and its targets are left as they are. A
// failed search is unknown, never "no groups": the mappings found before keep running (discover.Result.Apply).
// A group both tagged and in syncs: runs as syncs: says, and the log says why the tag is refused.
type Fleet struct {
	d   Discoverer
	log *zap.Logger

	mu         sync.Mutex // serializes searches and reloads
	engines    []*Engine
	static     *config.Config
	found      []discover.Mapping // running discovered mappings
	searchedAt time.Time          // zero: no search yet
}

// NewFleet returns a Fleet over static (validated, discovery enabled) that keeps eng's mappings; log nil: no logs.
// It makes no call: the first search is Discover's.
func NewFleet(eng *Engine, d Discoverer, static *config.Config, log *zap.Logger) *Fleet {
	if log == nil {
		log = zap.NewNop()
	}
	return &Fleet{d: d, log: log, engines: []*Engine{eng}, static: static}
}

// Attach makes eng run the fleet's mappings too, from now on (the Lambda's dry-run engine).
func (f *Fleet) Attach(eng *Engine) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.engines = append(f.engines, eng)
	f.applyTo(eng)
}

// Discover searches once and applies the result. It returns the search's error (some regions did not answer;
// their mappings found before keep running).
func (f *Fleet) Discover(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.discover(ctx)
}

// DiscoverIfOlder is Discover when the last search is older than maxAge, or there was none; otherwise nothing.
func (f *Fleet) DiscoverIfOlder(ctx context.Context, maxAge time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.searchedAt.IsZero() && time.Since(f.searchedAt) < maxAge {
		return nil
	}
	return f.discover(ctx)
}

func (f *Fleet) discover(ctx context.Context) error {
	err := f.search(ctx)
	for _, e := range f.engines {
		f.applyTo(e)
	}
	return err
}

// search looks for the tagged groups and updates found; a failure is logged and returned. The caller holds f.mu.
func (f *Fleet) search(ctx context.Context) error {
	res := f.d.Discover(ctx)
	f.searchedAt = time.Now()
	f.found = res.Apply(f.found)
	err := res.Err()
	if err != nil {
		f.log.Error("discovery failed; the mappings it found before keep running", zap.Error(err))
	}
	for _, s := range res.Skipped {
		f.log.Error("discovery: tagged target group not followed (one running before keeps its earlier settings)", zap.Error(s))
	}
	return err
}

// Reload replaces the static configuration (SIGHUP), searches again at once (an operator who just tagged a group
// need not wait for discover.interval), and applies both. Discovery's own settings (discover:) take effect only
// after a restart: Restart names them then.
func (f *Fleet) Reload(static *config.Config) ReloadReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.static = static
	_ = f.search(context.Background()) // logged; each call has its own deadline
	var rep ReloadReport
	for i, e := range f.engines {
		r := f.applyTo(e)
		if i == 0 {
			rep = r
		}
	}
	return rep
}

// applyTo hands eng the static mappings and the discovered ones not refused. The caller holds f.mu.
func (f *Fleet) applyTo(eng *Engine) ReloadReport {
	merged, refused := discover.Merge(f.static.Syncs, f.found)
	for _, r := range refused {
		f.log.Error("discovery: tagged target group refused", zap.Error(r))
	}
	next := *f.static
	next.Syncs = merged
	rep := eng.Reload(&next)
	if len(rep.Added)+len(rep.Changed)+len(rep.Removed) > 0 {
		f.log.Info("mappings updated", zap.Strings("added", rep.Added), zap.Strings("changed", rep.Changed),
			zap.Strings("removed", rep.Removed), zap.Int("running", len(merged)))
	}
	return rep
}

// Run searches every interval until ctx ends, the first time at once.
func (f *Fleet) Run(ctx context.Context, interval time.Duration) {
	for {
		_ = f.Discover(ctx) // logged
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
