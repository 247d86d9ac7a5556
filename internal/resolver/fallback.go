package resolver

import (
	"context"
	"errors"
	"sync"
	"time"
)

// DefaultRetryAuthoritative is how long Fallback keeps a name on the recursive servers after its authoritative
// servers could not be reached, when NewFallback gets 0.
const DefaultRetryAuthoritative = 5 * time.Minute

// Fallback resolves in authoritative mode and, for a name whose authoritative servers cannot be reached (an
// error wrapping ErrNoAuthoritative, as in a VPC without egress to the internet), asks the recursive servers
// instead. It then keeps that name on the recursive servers for a while before trying its authoritative servers
// again, so an unreachable zone costs one round of timeouts per retry period, not one per poll. Every Result
// that came from the recursive servers for this reason carries the reason in Result.Fallback, so the caller can
// log the switch once and count it. Safe for concurrent use.
type Fallback struct {
	auth  *Authoritative
	retry time.Duration
	now   func() time.Time

	mu       sync.Mutex
	fallback map[string]fellBack // by canonical name
}

type fellBack struct {
	cause error
	until time.Time
}

// NewFallback wraps auth; retry is how long a name stays on the recursive servers (0 = DefaultRetryAuthoritative).
func NewFallback(auth *Authoritative, retry time.Duration) *Fallback {
	if retry <= 0 {
		retry = DefaultRetryAuthoritative
	}
	return &Fallback{auth: auth, retry: retry, now: time.Now, fallback: map[string]fellBack{}}
}

// Resolve is Authoritative.Resolve, or Resolver.Resolve on the recursive servers with Result.Fallback set as
// described on Fallback. An error is that of the mode used: a recursive error when it fell back.
func (f *Fallback) Resolve(ctx context.Context, name string, fam Family) (Result, error) {
	k := canonical(name)
	f.mu.Lock()
	fb, ok := f.fallback[k]
	f.mu.Unlock()
	if !ok || !f.now().Before(fb.until) {
		res, err := f.auth.Resolve(ctx, name, fam)
		if !errors.Is(err, ErrNoAuthoritative) {
			if ok {
				f.mu.Lock()
				delete(f.fallback, k)
				f.mu.Unlock()
			}
			return res, err
		}
		fb = fellBack{cause: err, until: f.now().Add(f.retry)}
		f.mu.Lock()
		f.fallback[k] = fb
		f.mu.Unlock()
	}
	res, err := f.auth.rec.Resolve(ctx, name, fam)
	if err == nil {
		res.Fallback = fb.cause
	}
	return res, err
}
