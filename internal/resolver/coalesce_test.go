package resolver_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/testutil/fakeclock"
)

// resolveConcurrently resolves name n times at once through l and returns the outcomes.
func resolveConcurrently(l resolver.Lookup, name string, n int) ([]resolver.Result, []error) {
	results, errs := make([]resolver.Result, n), make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = l.Resolve(context.Background(), name, resolver.IPv4)
		})
	}
	close(start)
	wg.Wait()
	return results, errs
}

func TestCoalescerOneQueryPerNamePerInterval(t *testing.T) {
	d := newDelegation(t, 2, day)
	d.SetA(endpoint, 5, "10.0.0.1")
	c := resolver.NewCoalescer(newAuthoritative(t, d, false), time.Second)
	clock := fakeclock.New()
	resolver.SetCoalescerClock(c, clock.Now)

	results, errs := resolveConcurrently(c, endpoint, 50)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("resolution %d: %v", i, err)
		}
		if !slices.Equal(results[i].Addrs, addrs("10.0.0.1")) || !results[i].At.Equal(results[0].At) {
			t.Fatalf("resolution %d = %+v, want the shared answer %+v", i, results[i], results[0])
		}
	}
	// Names match however they are written.
	resolveOK(t, c, "ORDERS.db.example")
	if n := queries(d.Children...); n != 1 {
		t.Errorf("51 resolutions within the interval sent %d queries to the name servers, want 1", n)
	}

	results[0].Addrs[0] = addrs("192.0.2.99")[0] // a caller changing its copy does not change what the others get
	if res := resolveOK(t, c, endpoint); !slices.Equal(res.Addrs, addrs("10.0.0.1")) {
		t.Errorf("shared answer changed by a caller: %v", res.Addrs)
	}

	d.SetA(endpoint, 5, "10.0.0.2")
	clock.Advance(time.Second)
	res := resolveOK(t, c, endpoint)
	if !slices.Equal(res.Addrs, addrs("10.0.0.2")) || !res.At.After(results[0].At) {
		t.Errorf("after the interval: %+v, want a new answer [10.0.0.2]", res)
	}
	if n := queries(d.Children...); n != 2 {
		t.Errorf("after the interval: %d queries in all, want 2", n)
	}
}

func TestCoalescerSharesErrorsAndKeepsFamiliesApart(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("db.example.com", 5, "10.0.0.1")
	s.SetAAAA("db.example.com", 5, "2001:db8::1")
	s.SetNameFault("down.example.com", dnstest.FaultServFail)
	c := resolver.NewCoalescer(newResolver(t, resolver.Config{Servers: []string{s.Addr()}}), time.Minute)

	_, errs := resolveConcurrently(c, "down.example.com", 20)
	for i, err := range errs {
		if resolver.KindOf(err) != resolver.KindSERVFAIL {
			t.Fatalf("resolution %d: err = %v, want %q", i, err, resolver.KindSERVFAIL)
		}
	}
	if s.Queries() != 1 {
		t.Errorf("20 failing resolutions sent %d queries, want 1", s.Queries())
	}
	v4 := resolveOK(t, c, "db.example.com")
	v6, err := c.Resolve(context.Background(), "db.example.com", resolver.IPv6)
	if err != nil || !slices.Equal(v4.Addrs, addrs("10.0.0.1")) || !slices.Equal(v6.Addrs, addrs("2001:db8::1")) {
		t.Errorf("IPv4 %v, IPv6 %v (%v); want each family its own answer", v4.Addrs, v6.Addrs, err)
	}
}

func TestCoalescerCallerContext(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("db.example.com", 5, "10.0.0.1")
	release := make(chan struct{})
	s.SetObserver(func(dnstest.Answer) { <-release }) // hold the answer
	c := resolver.NewCoalescer(newResolver(t, resolver.Config{Servers: []string{s.Addr()}, Timeout: 5 * time.Second}), time.Minute)

	first := make(chan error, 1)
	go func() {
		_, err := c.Resolve(context.Background(), "db.example.com", resolver.IPv4)
		first <- err
	}()
	for s.Queries() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Resolve(ctx, "db.example.com", resolver.IPv4); resolver.KindOf(err) != resolver.KindTimeout {
		t.Errorf("waiting caller whose deadline passed: err = %v, want %q", err, resolver.KindTimeout)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("the caller that started the query: %v", err)
	}
}

// Recursive mode: mappings that share a name ask DNS once per TTL, whenever each of them resolves, and each gets the
// TTL left of the shared answer, so that the next time they all resolve together.
func TestTTLCoalescerOneQueryPerNamePerTTL(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("db.example.com", 5, "10.0.0.1")
	s.SetA("long.example.com", 3600, "10.0.0.2")
	s.SetNameFault("down.example.com", dnstest.FaultServFail)
	c := resolver.NewTTLCoalescer(newResolver(t, resolver.Config{Servers: []string{s.Addr()}}), time.Second, 30*time.Second)
	clock := fakeclock.New()
	resolver.SetCoalescerClock(c, clock.Now)

	first := resolveOK(t, c, "db.example.com")
	if first.TTL != 5*time.Second {
		t.Fatalf("first answer TTL %v, want 5s", first.TTL)
	}
	clock.Advance(3 * time.Second) // a second mapping resolves the name 3 s later
	later := resolveOK(t, c, "db.example.com")
	if later.TTL != 2*time.Second || !later.At.Equal(first.At) {
		t.Errorf("3 s later: TTL %v At %v; want the shared answer with 2s left", later.TTL, later.At)
	}
	if n := s.Queries(); n != 1 {
		t.Errorf("%d queries within one TTL, want 1", n)
	}
	clock.Advance(2 * time.Second) // the TTL has ended: both mappings resolve now, with one new query
	if res := resolveOK(t, c, "db.example.com"); res.TTL != 5*time.Second || !res.At.After(first.At) {
		t.Errorf("after the TTL: %+v, want a new answer", res)
	}
	resolveOK(t, c, "db.example.com")
	if n := s.Queries(); n != 2 {
		t.Errorf("%d queries over two TTLs, want 2", n)
	}

	// A TTL above maxTTL is shared for maxTTL only: poll.max bounds how stale an answer gets.
	resolveOK(t, c, "long.example.com")
	clock.Advance(30 * time.Second)
	resolveOK(t, c, "long.example.com")
	if n := s.Queries(); n != 4 {
		t.Errorf("%d queries in all, want 4: a 1-hour TTL is shared for 30 s", n)
	}

	// A failure is shared for the interval (poll.min) only.
	for range 2 {
		if _, err := c.Resolve(context.Background(), "down.example.com", resolver.IPv4); resolver.KindOf(err) != resolver.KindSERVFAIL {
			t.Fatalf("err = %v, want SERVFAIL", err)
		}
	}
	clock.Advance(time.Second)
	_, _ = c.Resolve(context.Background(), "down.example.com", resolver.IPv4)
	if n := s.Queries(); n != 6 {
		t.Errorf("%d queries in all, want 6: a failure is shared for 1 s", n)
	}
}
