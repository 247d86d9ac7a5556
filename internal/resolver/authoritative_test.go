package resolver_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/testutil/fakeclock"
)

const (
	parentZone = "example."
	childZone  = "db.example."
	endpoint   = "orders.db.example."
	day        = 86400
)

// newDelegation starts a parent zone delegating childZone to children servers, each NS record and name server
// address with TTL nsTTL.
func newDelegation(t *testing.T, children int, nsTTL uint32) *dnstest.Delegation {
	t.Helper()
	d, err := dnstest.NewDelegation(parentZone, childZone, children, nsTTL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// newAuthoritative builds an authoritative resolver whose recursive servers are d's, with a short timeout so
// tests of silent servers stay quick.
func newAuthoritative(t *testing.T, d *dnstest.Delegation, forceTCP bool) *resolver.Authoritative {
	t.Helper()
	rec := newResolver(t, resolver.Config{Servers: []string{d.Recursive.Addr()}, Timeout: 300 * time.Millisecond, ForceTCP: forceTCP})
	return resolver.NewAuthoritative(rec, resolver.AuthoritativeConfig{NameServerAddr: d.Addrs.Lookup})
}

func resolveOK(t *testing.T, l resolver.Lookup, name string) resolver.Result {
	t.Helper()
	res, err := l.Resolve(context.Background(), name, resolver.IPv4)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", name, err)
	}
	return res
}

func serverAddrs(servers ...*dnstest.Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.Addr()
	}
	return out
}

func queries(servers ...*dnstest.Server) int64 {
	var n int64
	for _, s := range servers {
		n += s.Queries()
	}
	return n
}

func TestAuthoritativeFindsZoneServers(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := newDelegation(t, 2, day)
			d.SetA(endpoint, 5, "10.0.0.1")
			d.Recursive.SetA(endpoint, 5, "10.9.9.9") // what a caching resolver still says: must not be used
			a := newAuthoritative(t, d, tr.forceTCP)

			res := resolveOK(t, a, endpoint)
			if want := addrs("10.0.0.1"); !slices.Equal(res.Addrs, want) {
				t.Errorf("Addrs = %v, want %v", res.Addrs, want)
			}
			if res.Mode != resolver.ModeAuthoritative {
				t.Errorf("Mode = %q, want %q", res.Mode, resolver.ModeAuthoritative)
			}
			if !slices.Contains(serverAddrs(d.Children...), res.Server) {
				t.Errorf("Server = %q, want one of the child zone's servers %v", res.Server, serverAddrs(d.Children...))
			}
			if res.TTL != 5*time.Second || !slices.Equal(res.Chain, []string{endpoint}) {
				t.Errorf("TTL, Chain = %v, %q; want 5s, [%s]", res.TTL, res.Chain, endpoint)
			}
			if tr.forceTCP && queries(d.Children...) != d.Children[0].QueriesTCP()+d.Children[1].QueriesTCP() {
				t.Error("ForceTCP sent queries to the name servers over UDP")
			}
		})
	}
}

func TestAuthoritativeFollowsDelegationFromParent(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := newDelegation(t, 2, day)
			d.SetA(endpoint, 5, "10.0.0.1")
			// The recursive servers know only the parent zone: its server refers the resolver down to the child's.
			d.Recursive.Remove(childZone)
			a := newAuthoritative(t, d, tr.forceTCP)

			res := resolveOK(t, a, endpoint)
			if want := addrs("10.0.0.1"); !slices.Equal(res.Addrs, want) {
				t.Errorf("Addrs = %v, want %v", res.Addrs, want)
			}
			if d.Parent.Queries() != 1 {
				t.Errorf("parent zone server got %d queries, want 1 (the referral)", d.Parent.Queries())
			}
			// The referral is remembered with its TTL: the next resolution goes straight to the child zone.
			resolveOK(t, a, endpoint)
			if d.Parent.Queries() != 1 {
				t.Errorf("parent zone server got %d queries after a second resolution, want still 1", d.Parent.Queries())
			}
		})
	}
}

func TestAuthoritativeCNAMEIntoAnotherZone(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			d := newDelegation(t, 2, day)
			for _, c := range d.Children {
				// An answer that also carries the target's address, which this server has no authority over.
				mustRaw(t, c, endpoint, dns.TypeA,
					endpoint+" 60 IN CNAME instance-1.example.",
					"instance-1.example. 60 IN A 10.6.6.6")
			}
			d.Parent.SetA("instance-1.example.", 30, "10.0.0.2")
			a := newAuthoritative(t, d, tr.forceTCP)

			res := resolveOK(t, a, endpoint)
			if want := addrs("10.0.0.2"); !slices.Equal(res.Addrs, want) {
				t.Errorf("Addrs = %v, want %v (from the target zone's server, not the child's out-of-zone record)", res.Addrs, want)
			}
			if want := []string{endpoint, "instance-1.example."}; !slices.Equal(res.Chain, want) {
				t.Errorf("Chain = %q, want %q", res.Chain, want)
			}
			if res.Server != d.Parent.Addr() || res.TTL != 30*time.Second {
				t.Errorf("Server, TTL = %q, %v; want %q (the parent zone's server), 30s", res.Server, res.TTL, d.Parent.Addr())
			}
		})
	}
}

func TestAuthoritativeCNAMELoop(t *testing.T) {
	d := newDelegation(t, 1, day)
	d.Children[0].SetCNAME(endpoint, 60, "loop.example.")
	d.Parent.SetCNAME("loop.example.", 60, endpoint)
	_, err := newAuthoritative(t, d, false).Resolve(context.Background(), endpoint, resolver.IPv4)
	if resolver.KindOf(err) != resolver.KindLoop {
		t.Fatalf("err = %v, want kind %q", err, resolver.KindLoop)
	}
}

func TestAuthoritativeSpreadsQueriesAndSeesLaggingServer(t *testing.T) {
	d := newDelegation(t, 2, day)
	fresh, lagging := d.Children[0], d.Children[1]
	fresh.SetA(endpoint, 5, "10.0.0.2")
	lagging.SetA(endpoint, 5, "10.0.0.1") // has not seen the change yet
	a := newAuthoritative(t, d, false)

	bySever := map[string][]netip.Addr{}
	for range 6 {
		res := resolveOK(t, a, endpoint)
		bySever[res.Server] = res.Addrs
	}
	if want := addrs("10.0.0.2"); !slices.Equal(bySever[fresh.Addr()], want) {
		t.Errorf("answer of the up-to-date server = %v, want %v", bySever[fresh.Addr()], want)
	}
	if want := addrs("10.0.0.1"); !slices.Equal(bySever[lagging.Addr()], want) {
		t.Errorf("answer of the lagging server = %v, want %v (each answer names the server that gave it)", bySever[lagging.Addr()], want)
	}
	if fresh.Queries() != 3 || lagging.Queries() != 3 {
		t.Errorf("queries = %d and %d, want 3 and 3: spread over the zone's servers", fresh.Queries(), lagging.Queries())
	}
}

// TestAuthoritativeSkipsFailingServer: a server that fails is passed over for the next one, and asked last
// afterwards, so it costs one failure, not one per resolution.
func TestAuthoritativeSkipsFailingServer(t *testing.T) {
	tests := []struct {
		name        string
		breakServer func(d *dnstest.Delegation, s *dnstest.Server)
	}{
		{"down", func(_ *dnstest.Delegation, s *dnstest.Server) { _ = s.Close() }},
		{"silent", func(_ *dnstest.Delegation, s *dnstest.Server) { s.SetFault(dnstest.FaultDrop) }},
		{"REFUSED", func(_ *dnstest.Delegation, s *dnstest.Server) { s.SetFault(dnstest.FaultRefused) }},
		{"SERVFAIL", func(_ *dnstest.Delegation, s *dnstest.Server) { s.SetFault(dnstest.FaultServFail) }},
		{"not authoritative", func(_ *dnstest.Delegation, s *dnstest.Server) { s.SetFault(dnstest.FaultNotAuthoritative) }},
		{"lame referral", func(d *dnstest.Delegation, s *dnstest.Server) {
			// ns1's address leads to the parent zone's server, which refers the child zone's names back to the
			// child zone instead of answering them.
			d.Addrs.Set(netip.MustParseAddr("192.0.2.10"), d.Parent)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDelegation(t, 2, day)
			d.SetA(endpoint, 5, "10.0.0.1")
			d.Children[0].SetA(endpoint, 5, "10.6.6.6") // a broken server's answer must not be used
			tt.breakServer(d, d.Children[0])
			a := newAuthoritative(t, d, false)
			parentBefore := d.Parent.Queries()

			for range 4 {
				res := resolveOK(t, a, endpoint)
				if want := addrs("10.0.0.1"); !slices.Equal(res.Addrs, want) || res.Server != d.Children[1].Addr() {
					t.Fatalf("Addrs, Server = %v, %q; want %v from the working server %q", res.Addrs, res.Server, want, d.Children[1].Addr())
				}
			}
			if got := d.Children[0].Queries() + d.Parent.Queries() - parentBefore; got > 1 {
				t.Errorf("the failing server got %d queries in 4 resolutions, want at most 1", got)
			}
		})
	}
}

func TestAuthoritativeNoServerReachable(t *testing.T) {
	tests := []struct {
		name        string
		breakServer func(d *dnstest.Delegation)
		addrs       func(d *dnstest.Delegation) func(netip.Addr) string
	}{
		{name: "all silent", breakServer: func(d *dnstest.Delegation) {
			for _, c := range d.Children {
				c.SetFault(dnstest.FaultDrop)
			}
		}},
		{name: "all REFUSED", breakServer: func(d *dnstest.Delegation) {
			for _, c := range d.Children {
				c.SetFault(dnstest.FaultRefused)
			}
		}},
		// A VPC without egress to the internet: its resolver answers, but no name server address is reachable.
		{name: "no route", addrs: func(*dnstest.Delegation) func(netip.Addr) string {
			return func(netip.Addr) string { return "" }
		}},
		{name: "no NS records anywhere", breakServer: func(d *dnstest.Delegation) {
			d.Recursive.Remove(childZone)
			d.Recursive.Remove(parentZone)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDelegation(t, 2, day)
			d.SetA(endpoint, 5, "10.0.0.1")
			d.Recursive.SetA(endpoint, 5, "10.0.0.9")
			if tt.breakServer != nil {
				tt.breakServer(d)
			}
			rec := newResolver(t, resolver.Config{Servers: []string{d.Recursive.Addr()}, Timeout: 300 * time.Millisecond})
			nsAddr := d.Addrs.Lookup
			if tt.addrs != nil {
				nsAddr = tt.addrs(d)
			}
			a := resolver.NewAuthoritative(rec, resolver.AuthoritativeConfig{NameServerAddr: nsAddr})

			_, err := a.Resolve(context.Background(), endpoint, resolver.IPv4)
			if !errors.Is(err, resolver.ErrNoAuthoritative) || resolver.KindOf(err) != resolver.KindUnreachable {
				t.Fatalf("err = %v, want kind %q wrapping ErrNoAuthoritative", err, resolver.KindUnreachable)
			}
			if !strings.Contains(err.Error(), "dns.mode: recursive") {
				t.Errorf("err = %q, want advice naming dns.mode: recursive", err)
			}

			// The fallback asks the recursive servers instead, says so, and keeps doing so for a while.
			f := resolver.NewFallback(a, time.Minute)
			clock := fakeclock.New()
			resolver.SetFallbackClock(f, clock.Now)
			for range 2 {
				res := resolveOK(t, f, endpoint)
				if want := addrs("10.0.0.9"); !slices.Equal(res.Addrs, want) || res.Mode != resolver.ModeRecursive ||
					!errors.Is(res.Fallback, resolver.ErrNoAuthoritative) {
					t.Fatalf("Addrs, Mode, Fallback = %v, %q, %v; want %v from the recursive servers with the reason",
						res.Addrs, res.Mode, res.Fallback, want)
				}
			}
			childQueries := queries(d.Children...)
			resolveOK(t, f, endpoint)
			if queries(d.Children...) != childQueries {
				t.Error("the fallback asked the name servers again before its retry period ended")
			}

			// Once the name servers answer again, the next try after the retry period uses them.
			for _, c := range d.Children {
				c.SetFault(dnstest.FaultNone)
			}
			d.Recursive.SetNS(childZone, day, "ns1."+childZone, "ns2."+childZone)
			clock.Advance(time.Minute)
			res, err := f.Resolve(context.Background(), endpoint, resolver.IPv4)
			if tt.addrs != nil { // still no route: still on the recursive servers
				if err != nil || res.Mode != resolver.ModeRecursive || res.Fallback == nil {
					t.Errorf("Resolve = %+v, %v; want the recursive answer with Fallback set", res, err)
				}
				return
			}
			if err != nil || res.Mode != resolver.ModeAuthoritative || res.Fallback != nil {
				t.Errorf("Resolve = %+v, %v; want the authoritative answer again", res, err)
			}
		})
	}
}

func TestAuthoritativeDefinitiveAnswersAreFinal(t *testing.T) {
	d := newDelegation(t, 2, day)
	d.Recursive.SetA(endpoint, 5, "10.0.0.9")
	d.Recursive.SetA("empty."+childZone, 5, "10.0.0.9")
	for _, c := range d.Children {
		c.SetAAAA("empty."+childZone, 5, "2001:db8::1")
	}
	f := resolver.NewFallback(newAuthoritative(t, d, false), time.Minute)

	_, err := f.Resolve(context.Background(), endpoint, resolver.IPv4)
	if resolver.KindOf(err) != resolver.KindNXDOMAIN || errors.Is(err, resolver.ErrNoAuthoritative) {
		t.Errorf("missing name: err = %v, want %q without fallback", err, resolver.KindNXDOMAIN)
	}
	_, err = f.Resolve(context.Background(), "empty."+childZone, resolver.IPv4)
	if resolver.KindOf(err) != resolver.KindNoAddress || errors.Is(err, resolver.ErrNoAuthoritative) {
		t.Errorf("name without A records: err = %v, want %q without fallback", err, resolver.KindNoAddress)
	}
	if n := queries(d.Children...); n != 2 {
		t.Errorf("name servers got %d queries, want 2: a definitive answer is not asked again elsewhere", n)
	}
}

// TestAuthoritativeIgnoresTTL: an answer cached for a day by resolvers changes as soon as the zone changes.
func TestAuthoritativeIgnoresTTL(t *testing.T) {
	d := newDelegation(t, 2, day)
	d.SetA(endpoint, day, "10.0.0.1")
	a := newAuthoritative(t, d, false)
	if res := resolveOK(t, a, endpoint); res.TTL != 24*time.Hour {
		t.Errorf("TTL = %v, want 24h", res.TTL)
	}
	d.SetA(endpoint, day, "10.0.0.2")
	if res := resolveOK(t, a, endpoint); !slices.Equal(res.Addrs, addrs("10.0.0.2")) {
		t.Errorf("after the change Addrs = %v, want [10.0.0.2]", res.Addrs)
	}
}

func TestAuthoritativeCachesNameServersForTheirTTL(t *testing.T) {
	d := newDelegation(t, 2, 60)
	d.SetA(endpoint, 5, "10.0.0.1")
	a := newAuthoritative(t, d, false)
	clock := fakeclock.New()
	resolver.SetAuthoritativeClock(a, clock.Now)

	resolveOK(t, a, endpoint)
	discovery := d.Recursive.Queries()
	if discovery == 0 {
		t.Fatal("the recursive server was not asked for the name servers")
	}
	// The zone now has only ns2; until the NS records' TTL ends the resolver keeps asking both.
	d.Recursive.SetNS(childZone, 60, "ns2."+childZone)
	clock.Advance(59 * time.Second)
	for range 4 {
		resolveOK(t, a, endpoint)
	}
	if d.Recursive.Queries() != discovery {
		t.Errorf("recursive server asked %d more times within the TTL, want 0", d.Recursive.Queries()-discovery)
	}
	if d.Children[0].Queries() == 0 {
		t.Error("ns1 was not asked within the TTL of the NS set that lists it")
	}
	clock.Advance(time.Second)
	before := d.Children[0].Queries()
	for range 4 {
		resolveOK(t, a, endpoint)
	}
	if d.Recursive.Queries() == discovery {
		t.Error("the name servers were not looked up again after their TTL")
	}
	if d.Children[0].Queries() != before {
		t.Errorf("ns1 asked %d times after the NS set without it took effect", d.Children[0].Queries()-before)
	}
}

func TestAuthoritativeOnQuery(t *testing.T) {
	d := newDelegation(t, 1, day)
	d.SetA(endpoint, 5, "10.0.0.1")
	var mu sync.Mutex
	var got []resolver.Query
	rec := newResolver(t, resolver.Config{Servers: []string{d.Recursive.Addr()}, OnQuery: func(q resolver.Query) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, q)
	}})
	a := resolver.NewAuthoritative(rec, resolver.AuthoritativeConfig{NameServerAddr: d.Addrs.Lookup})
	resolveOK(t, a, endpoint)

	mu.Lock()
	defer mu.Unlock()
	last := got[len(got)-1]
	want := resolver.Query{Mode: resolver.ModeAuthoritative, Server: d.Children[0].Addr(), NameServer: "ns1." + childZone,
		Name: endpoint, Type: dns.TypeA, Rcode: dns.RcodeSuccess, Duration: last.Duration}
	if last != want {
		t.Errorf("last query = %+v, want %+v", last, want)
	}
	for _, q := range got[:len(got)-1] {
		if q.Mode != resolver.ModeRecursive || q.Server != d.Recursive.Addr() || q.NameServer != "" {
			t.Errorf("discovery query = %+v, want a recursive query to %s", q, d.Recursive.Addr())
		}
	}
	if int64(len(got)) != queries(d.Recursive, d.Children[0]) {
		t.Errorf("OnQuery saw %d queries, the servers %d", len(got), queries(d.Recursive, d.Children[0]))
	}
}

// TestAuthoritativeConcurrent resolves several names at once, for the race detector: the caches are shared.
func TestAuthoritativeConcurrent(t *testing.T) {
	d := newDelegation(t, 3, day)
	names := []string{"a." + childZone, "b." + childZone, "c." + childZone, "d." + childZone}
	for i, n := range names {
		d.SetA(n, 5, "10.0.0."+strconv.Itoa(i+1))
	}
	a := newAuthoritative(t, d, false)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			name := names[i%len(names)]
			res, err := a.Resolve(context.Background(), name, resolver.IPv4)
			if want := addrs("10.0.0." + strconv.Itoa(i%len(names)+1)); err != nil || !slices.Equal(res.Addrs, want) {
				t.Errorf("Resolve(%s) = %v, %v; want %v", name, res.Addrs, err, want)
			}
		})
	}
	wg.Wait()
}

func TestQueryKind(t *testing.T) {
	for _, tc := range []struct {
		q    resolver.Query
		want resolver.Kind
	}{
		{resolver.Query{Rcode: dns.RcodeSuccess}, ""},
		{resolver.Query{Rcode: dns.RcodeNameError}, resolver.KindNXDOMAIN},
		{resolver.Query{Rcode: dns.RcodeServerFailure}, resolver.KindSERVFAIL},
		{resolver.Query{Rcode: dns.RcodeRefused}, resolver.KindREFUSED},
		{resolver.Query{Rcode: dns.RcodeNotImplemented}, resolver.KindOther},
		{resolver.Query{Rcode: -1, Err: os.ErrDeadlineExceeded}, resolver.KindTimeout},
		{resolver.Query{Rcode: -1, Err: syscall.ECONNREFUSED}, resolver.KindOther},
	} {
		if got := tc.q.Kind(); got != tc.want {
			t.Errorf("Query{Rcode: %d, Err: %v}.Kind() = %q, want %q", tc.q.Rcode, tc.q.Err, got, tc.want)
		}
	}
}
