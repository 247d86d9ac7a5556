package resolver

import "time"

// Test hooks: the caches' clocks, so tests can pass a TTL or an interval without waiting for it.

func SetAuthoritativeClock(a *Authoritative, now func() time.Time) { a.now = now }
func SetCoalescerClock(c *Coalescer, now func() time.Time)         { c.now = now }
func SetFallbackClock(f *Fallback, now func() time.Time)           { f.now = now }
