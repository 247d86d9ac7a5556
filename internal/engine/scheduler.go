package engine

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"time"
)

// Run is the daemon: each mapping runs on its own schedule until stop is done. Then no pass starts, and neither
// does a deregistration in a pass in flight (shutdown.go); the passes in flight get Options.StopGrace to finish,
// then their calls are cancelled, and Run returns. What was left undone is logged.
//
// One scheduler holds every mapping's next wake-up time and hands due mappings to at most Options.Concurrency
// workers at once: an idle mapping costs no goroutine, and a slow or failing mapping holds one worker, never the
// others. A worker reports the mapping's next wake-up when it is done, so the scheduler never takes a mapping's
// lock. First passes are spread over a start window (poll.min, longer for many mappings) so that a thousand
// mappings of equal TTL do not query DNS and AWS in lockstep bursts.
func (e *Engine) Run(stop context.Context) {
	work, cut := context.WithCancel(context.WithoutCancel(stop)) // calls outlive stop, until the grace ends
	defer cut()
	queue := &wakeQueue{}
	e.takeStarted() // Run schedules every current mapping itself
	mappings := e.current()
	window := min(e.cfg.Poll.Max, e.cfg.Poll.Min*time.Duration(max(1, len(mappings)/200)))
	for _, m := range mappings {
		at := e.deps.Now()
		if len(mappings) > 1 {
			at = at.Add(rand.N(window)) //nolint:gosec // G404: start-up jitter, no secret
		}
		heap.Push(queue, wake{at: at, m: m})
	}
	done := make(chan wake)
	running := map[*mapping]bool{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for len(running) < e.opts.Concurrency && queue.Len() > 0 && !(*queue)[0].at.After(e.deps.Now()) {
			m := heap.Pop(queue).(wake).m
			if m.retired.Load() {
				continue // removed or changed by Reload
			}
			running[m] = true
			go func() { done <- wake{at: m.step(work), m: m} }()
		}
		var due <-chan time.Time
		if len(running) < e.opts.Concurrency && queue.Len() > 0 {
			timer.Reset(max((*queue)[0].at.Sub(e.deps.Now()), 0))
			due = timer.C
		}
		select {
		case <-stop.Done():
			e.shutdown(running, done, cut)
			return
		case w := <-done:
			delete(running, w.m)
			heap.Push(queue, w)
		case <-e.reloaded:
			for _, m := range e.takeStarted() {
				heap.Push(queue, wake{at: e.deps.Now(), m: m})
			}
		case <-due:
		}
	}
}

// step is one turn of a mapping in the daemon: a pass when its answer's TTL has ended, otherwise a read of the
// target group when one is due. It returns when the mapping next needs attention.
func (m *mapping) step(ctx context.Context) time.Time {
	m.busy.Lock()
	defer m.busy.Unlock()
	switch {
	case m.retired.Load():
	case m.now().Before(m.nextResolve):
		m.refresh(ctx)
	default:
		m.pass(ctx)
	}
	return m.wakeAt()
}

// wakeAt is when the mapping next needs attention: its next resolution (the answer's TTL within poll.min and
// poll.max), or before that a read of the target group, every followEvery while a new target is not yet
// healthy, otherwise every resync interval (resync_interval, stretched to fit the API budget) to catch drift. The caller holds m.busy.
func (m *mapping) wakeAt() time.Time {
	next := m.nextResolve
	if !m.describedAt.IsZero() {
		describe := m.describedAt.Add(m.resync)
		if len(m.awaitHealthy) > 0 {
			describe = m.describedAt.Add(m.followEvery())
		}
		if describe.Before(next) {
			next = describe
		}
	}
	return next
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
