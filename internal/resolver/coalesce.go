package resolver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Lookup is what the sync engine resolves with: a *Resolver, an *Authoritative, a *Fallback or a *Coalescer.
type Lookup interface {
	Resolve(ctx context.Context, name string, fam Family) (Result, error)
}

var (
	_ Lookup = (*Resolver)(nil)
	_ Lookup = (*Authoritative)(nil)
	_ Lookup = (*Fallback)(nil)
	_ Lookup = (*Coalescer)(nil)
)

// Coalescer keeps the query budget: however many mappings follow one name, DNS is asked about it at most once
// per interval. Concurrent resolutions of a name share one query, and its outcome (answer or error) is handed to
// every caller until interval has passed since that query started. Measuring from the start means a caller that
// resolves every interval always gets a fresh answer, never one its own previous poll left behind.
// Safe for concurrent use.
type Coalescer struct {
	next     Lookup
	interval time.Duration
	// maxTTL > 0 shares a successful answer for its TTL, within interval and maxTTL (NewTTLCoalescer).
	maxTTL time.Duration
	now    func() time.Time

	flight singleflight.Group

	mu        sync.Mutex
	recent    map[coalesceKey]outcome
	lastSweep time.Time
}

type coalesceKey struct {
	name string // canonical
	fam  Family
}

type outcome struct {
	res     Result
	err     error
	started time.Time
}

// NewCoalescer wraps next. interval is the poll interval (poll.min); 0 only shares concurrent resolutions.
func NewCoalescer(next Lookup, interval time.Duration) *Coalescer {
	return &Coalescer{next: next, interval: interval, now: time.Now, recent: map[coalesceKey]outcome{}}
}

// NewTTLCoalescer is the Coalescer of recursive mode: one query per name per TTL however many mappings follow
// the name. A successful answer is shared until its TTL (within interval and maxTTL) has passed since its query
// started, and each caller gets the TTL that is left of it, exactly as the caching resolver behind dns.servers
// would answer: a mapping that resolves later than another then resolves again when the answer expires, at the
// same moment as the other, and the two share the next query too. A failure is shared for interval only.
func NewTTLCoalescer(next Lookup, interval, maxTTL time.Duration) *Coalescer {
	c := NewCoalescer(next, interval)
	c.maxTTL = max(maxTTL, interval)
	return c
}

// lifetime is how long o is handed out after its query started.
func (c *Coalescer) lifetime(o outcome) time.Duration {
	if c.maxTTL == 0 || o.err != nil {
		return c.interval
	}
	return min(max(o.res.TTL, c.interval), c.maxTTL)
}

// Resolve returns next's outcome for (name, fam), shared as described on Coalescer. A shared Result keeps the At
// of the query that got it. The query runs under the context of the caller that started it; the others wait
// until it ends or their own context does.
func (c *Coalescer) Resolve(ctx context.Context, name string, fam Family) (Result, error) {
	k := coalesceKey{canonical(name), fam}
	if o, ok := c.fresh(k); ok {
		return c.share(o)
	}
	ch := c.flight.DoChan(k.name+"/"+fam.String(), func() (any, error) {
		if o, ok := c.fresh(k); ok { // a query that ended just now
			return o, nil
		}
		o := outcome{started: c.now()}
		o.res, o.err = c.next.Resolve(ctx, name, fam)
		// An error from the starter's own context says nothing about the name: do not hand it to the others later.
		if c.lifetime(o) > 0 && (o.err == nil || ctx.Err() == nil) {
			c.store(k, o)
		}
		return o, nil
	})
	select {
	case r := <-ch:
		return c.share(r.Val.(outcome))
	case <-ctx.Done():
		kind := KindOther
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			kind = KindTimeout
		}
		return Result{}, &Error{Kind: kind, Name: name, Err: fmt.Errorf("stopped waiting for the query another mapping started: %w", ctx.Err())}
	}
}

// share gives each caller its own copy of the slices, and with TTL sharing the TTL left of the answer.
func (c *Coalescer) share(o outcome) (Result, error) {
	r := o.res
	r.Addrs, r.Chain = slices.Clone(r.Addrs), slices.Clone(r.Chain)
	if c.maxTTL > 0 && o.err == nil {
		r.TTL = max(r.TTL-c.now().Sub(o.started), 0)
	}
	return r, o.err
}

func (c *Coalescer) fresh(k coalesceKey) (outcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.recent[k]
	return o, ok && c.now().Sub(o.started) < c.lifetime(o)
}

func (c *Coalescer) store(k coalesceKey, o outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recent[k] = o
	// Forget outcomes past their lifetime, so names no longer followed do not pile up.
	if now := c.now(); now.Sub(c.lastSweep) >= c.interval {
		for key, old := range c.recent {
			if now.Sub(old.started) >= c.lifetime(old) {
				delete(c.recent, key)
			}
		}
		c.lastSweep = now
	}
}
