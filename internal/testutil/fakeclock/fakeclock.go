// Package fakeclock is a clock that tests move by hand, for code that takes a `now func() time.Time`, so a test
// can pass a TTL or an interval without waiting for it.
package fakeclock

import (
	"sync"
	"time"
)

// Clock starts at a fixed instant and moves only with Advance. Safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock at 2030-01-02 03:04:05 UTC.
func New() *Clock { return &Clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now is the clock's time; pass the method value as a `now` function.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
