package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/resolver"
)

// transports runs a test over the normal path (UDP, TCP on truncation) and with every query over TCP.
var transports = []struct {
	name     string
	forceTCP bool
}{{"udp", false}, {"tcp", true}}

func newResolver(t testing.TB, cfg resolver.Config) *resolver.Resolver {
	t.Helper()
	r, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// chainOf sets up n names c0 -> c1 -> ... -> c(n-1) under zone, the last one with an A record.
func chainOf(s *dnstest.Server, zone string, n int) {
	for i := range n - 1 {
		s.SetCNAME(fmt.Sprintf("c%d.%s", i, zone), 60, fmt.Sprintf("c%d.%s", i+1, zone))
	}
	s.SetA(fmt.Sprintf("c%d.%s", n-1, zone), 60, "10.0.0.1")
}

func chainNames(zone string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("c%d.%s.", i, zone)
	}
	return out
}

// serveDB publishes db.example.com A 10.0.0.1 (TTL 5 s) on s and makes s answer every query with fault f.
func serveDB(s *dnstest.Server, f dnstest.Fault) {
	s.SetA("db.example.com", 5, "10.0.0.1")
	s.SetFault(f)
}

// resolveOn starts a DNS server, lets setup publish records on it, and resolves query for fam with a resolver that
// asks only that server.
func resolveOn(t *testing.T, forceTCP bool, setup func(*testing.T, *dnstest.Server), query string, fam resolver.Family) (
	*dnstest.Server, resolver.Result, error,
) {
	t.Helper()
	s := dnstest.Start(t)
	setup(t, s)
	r := newResolver(t, resolver.Config{Servers: []string{s.Addr()}, ForceTCP: forceTCP})
	got, err := r.Resolve(context.Background(), query, fam)
	return s, got, err
}

func mustRaw(t *testing.T, s *dnstest.Server, name string, qtype uint16, rrs ...string) {
	t.Helper()
	if err := s.SetRaw(name, qtype, rrs...); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *dnstest.Server)
		query   string
		fam     resolver.Family
		want    []netip.Addr
		wantTTL time.Duration
		chain   []string
	}{
		{
			name:  "A, sorted and deduplicated",
			setup: func(t *testing.T, s *dnstest.Server) { s.SetA("db.example.com", 5, "10.0.0.9", "10.0.0.1", "10.0.0.9") },
			query: "db.example.com", fam: resolver.IPv4,
			want: addrs("10.0.0.1", "10.0.0.9"), wantTTL: 5 * time.Second, chain: []string{"db.example.com."},
		},
		{
			name: "AAAA",
			setup: func(t *testing.T, s *dnstest.Server) {
				s.SetA("db.example.com", 60, "10.0.0.1")
				s.SetAAAA("db.example.com", 30, "2001:db8::2", "2001:db8::1")
			},
			query: "db.example.com", fam: resolver.IPv6,
			want: addrs("2001:db8::1", "2001:db8::2"), wantTTL: 30 * time.Second, chain: []string{"db.example.com."},
		},
		{
			name: "CNAME chain of 3, TTL is the lowest CNAME's",
			setup: func(t *testing.T, s *dnstest.Server) {
				s.SetCNAME("cluster.example.com", 300, "proxy.example.com")
				s.SetCNAME("proxy.example.com", 5, "instance.example.com")
				s.SetA("instance.example.com", 60, "10.0.0.7")
			},
			query: "cluster.example.com", fam: resolver.IPv4,
			want: addrs("10.0.0.7"), wantTTL: 5 * time.Second,
			chain: []string{"cluster.example.com.", "proxy.example.com.", "instance.example.com."},
		},
		{
			name: "TTL is the address record's when it is lowest",
			setup: func(t *testing.T, s *dnstest.Server) {
				s.SetCNAME("reader.example.com", 300, "instance.example.com")
				s.SetA("instance.example.com", 1, "10.0.0.7")
			},
			query: "reader.example.com", fam: resolver.IPv4,
			want: addrs("10.0.0.7"), wantTTL: time.Second,
			chain: []string{"reader.example.com.", "instance.example.com."},
		},
		{
			name: "chain of 8 names is allowed",
			setup: func(t *testing.T, s *dnstest.Server) {
				chainOf(s, "eight.example.com", resolver.MaxChain)
			},
			query: "c0.eight.example.com", fam: resolver.IPv4,
			want: addrs("10.0.0.1"), wantTTL: 60 * time.Second, chain: chainNames("eight.example.com", resolver.MaxChain),
		},
		{
			name: "names match case-insensitively",
			setup: func(t *testing.T, s *dnstest.Server) {
				s.SetCNAME("Orders.Example.COM", 60, "DB1.example.COM")
				s.SetA("db1.EXAMPLE.com", 30, "10.0.0.3")
			},
			query: "ORDERS.example.com", fam: resolver.IPv4,
			want: addrs("10.0.0.3"), wantTTL: 30 * time.Second,
			chain: []string{"orders.example.com.", "db1.example.com."},
		},
		{
			name:  "trailing dot",
			setup: func(t *testing.T, s *dnstest.Server) { s.SetA("db.example.com", 5, "10.0.0.1") },
			query: "db.example.com.", fam: resolver.IPv4,
			want: addrs("10.0.0.1"), wantTTL: 5 * time.Second, chain: []string{"db.example.com."},
		},
		{
			name: "records of the other family and of other owners are ignored",
			setup: func(t *testing.T, s *dnstest.Server) {
				mustRaw(t, s, "mixed.example.com", dns.TypeA,
					"mixed.example.com. 30 IN AAAA 2001:db8::1",
					"mixed.example.com. 30 IN A 10.0.0.1",
					"other.example.com. 1 IN A 10.9.9.9")
			},
			query: "mixed.example.com", fam: resolver.IPv4,
			want: addrs("10.0.0.1"), wantTTL: 30 * time.Second, chain: []string{"mixed.example.com."},
		},
		{
			name: "chain in any order in the answer",
			setup: func(t *testing.T, s *dnstest.Server) {
				mustRaw(t, s, "a.example.com", dns.TypeA,
					"c.example.com. 10 IN A 10.0.0.2",
					"b.example.com. 20 IN CNAME c.example.com.",
					"a.example.com. 30 IN CNAME b.example.com.")
			},
			query: "a.example.com", fam: resolver.IPv4,
			want: addrs("10.0.0.2"), wantTTL: 10 * time.Second,
			chain: []string{"a.example.com.", "b.example.com.", "c.example.com."},
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				s, got, err := resolveOn(t, tr.forceTCP, tt.setup, tt.query, tt.fam)
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if !slices.Equal(got.Addrs, tt.want) {
					t.Errorf("Addrs = %v, want %v", got.Addrs, tt.want)
				}
				if got.TTL != tt.wantTTL {
					t.Errorf("TTL = %v, want %v", got.TTL, tt.wantTTL)
				}
				if !slices.Equal(got.Chain, tt.chain) {
					t.Errorf("Chain = %q, want %q", got.Chain, tt.chain)
				}
				if got.Server != s.Addr() {
					t.Errorf("Server = %q, want %q", got.Server, s.Addr())
				}
				if tr.forceTCP && s.QueriesUDP() != 0 {
					t.Errorf("ForceTCP sent %d queries over UDP", s.QueriesUDP())
				}
			})
		}
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *dnstest.Server)
		query string
		fam   resolver.Family
		kind  resolver.Kind
	}{
		{
			name:  "family mismatch",
			setup: func(t *testing.T, s *dnstest.Server) { s.SetA("db.example.com", 5, "10.0.0.1") },
			query: "db.example.com", fam: resolver.IPv6, kind: resolver.KindNoAddress,
		},
		{
			name:  "name exists without addresses",
			setup: func(t *testing.T, s *dnstest.Server) { s.SetA("db.example.com", 5) },
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindNoAddress,
		},
		{
			name: "chain ends at a name without addresses of the family",
			setup: func(t *testing.T, s *dnstest.Server) {
				s.SetCNAME("db.example.com", 5, "v6only.example.com")
				s.SetAAAA("v6only.example.com", 5, "2001:db8::1")
			},
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindNoAddress,
		},
		{
			name: "only records of other owners",
			setup: func(t *testing.T, s *dnstest.Server) {
				mustRaw(t, s, "db.example.com", dns.TypeA, "x.example.com. 5 IN A 10.0.0.1")
			},
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindNoAddress,
		},
		{
			name:  "NXDOMAIN",
			setup: func(t *testing.T, s *dnstest.Server) {},
			query: "missing.example.com", fam: resolver.IPv4, kind: resolver.KindNXDOMAIN,
		},
		{
			name:  "NXDOMAIN at the end of a chain",
			setup: func(t *testing.T, s *dnstest.Server) { s.SetCNAME("db.example.com", 5, "gone.example.com") },
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindNXDOMAIN,
		},
		{
			name: "CNAME loop",
			setup: func(t *testing.T, s *dnstest.Server) {
				s.SetCNAME("a.example.com", 5, "b.example.com")
				s.SetCNAME("b.example.com", 5, "c.example.com")
				s.SetCNAME("c.example.com", 5, "A.example.com")
			},
			query: "a.example.com", fam: resolver.IPv4, kind: resolver.KindLoop,
		},
		{
			name:  "CNAME to itself",
			setup: func(t *testing.T, s *dnstest.Server) { s.SetCNAME("a.example.com", 5, "a.example.com") },
			query: "a.example.com", fam: resolver.IPv4, kind: resolver.KindLoop,
		},
		{
			name:  "chain of 9 names",
			setup: func(t *testing.T, s *dnstest.Server) { chainOf(s, "nine.example.com", resolver.MaxChain+1) },
			query: "c0.nine.example.com", fam: resolver.IPv4, kind: resolver.KindChainTooLong,
		},
		{
			name: "SERVFAIL", setup: func(t *testing.T, s *dnstest.Server) { serveDB(s, dnstest.FaultServFail) },
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindSERVFAIL,
		},
		{
			name: "REFUSED", setup: func(t *testing.T, s *dnstest.Server) { serveDB(s, dnstest.FaultRefused) },
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindREFUSED,
		},
		{
			name: "NXDOMAIN fault", setup: func(t *testing.T, s *dnstest.Server) { serveDB(s, dnstest.FaultNXDomain) },
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindNXDOMAIN,
		},
		{
			name: "NOERROR without answer", setup: func(t *testing.T, s *dnstest.Server) { serveDB(s, dnstest.FaultNoAnswer) },
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindNoAddress,
		},
		{
			name: "SERVFAIL for the chain's target", setup: func(t *testing.T, s *dnstest.Server) {
				s.SetCNAME("db.example.com", 5, "instance.example.com")
				s.SetA("instance.example.com", 5, "10.0.0.1")
				s.SetFollowCNAME(false)
				s.SetNameFault("instance.example.com", dnstest.FaultServFail)
			},
			query: "db.example.com", fam: resolver.IPv4, kind: resolver.KindSERVFAIL,
		},
		{
			name: "invalid name", setup: func(t *testing.T, s *dnstest.Server) {},
			query: "a..example.com", fam: resolver.IPv4, kind: resolver.KindOther,
		},
		{
			name: "empty name", setup: func(t *testing.T, s *dnstest.Server) {},
			query: "", fam: resolver.IPv4, kind: resolver.KindOther,
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				s, got, err := resolveOn(t, tr.forceTCP, tt.setup, tt.query, tt.fam)
				if err == nil {
					t.Fatalf("Resolve = %+v, want a %s error", got, tt.kind)
				}
				t.Log(err)
				if k := resolver.KindOf(err); k != tt.kind {
					t.Fatalf("KindOf = %q, want %q; err: %v", k, tt.kind, err)
				}
				var rerr *resolver.Error
				if !errors.As(err, &rerr) {
					t.Fatalf("error %T is not a *resolver.Error", err)
				}
				if rerr.Name != tt.query {
					t.Errorf("Name = %q, want %q", rerr.Name, tt.query)
				}
				if tt.kind != resolver.KindOther && rerr.Server != s.Addr() {
					t.Errorf("Server = %q, want %q", rerr.Server, s.Addr())
				}
				if want := "resolve " + tt.query + ": "; !strings.HasPrefix(err.Error(), want) {
					t.Errorf("message %q does not start with %q", err, want)
				}
				if !strings.Contains(err.Error(), "check") && !strings.Contains(err.Error(), "fix") {
					t.Errorf("message %q does not say what to check", err)
				}
				if len(got.Addrs) != 0 {
					t.Errorf("addresses returned with an error: %v", got.Addrs)
				}
			})
		}
	}
}

// A server that answers a CNAME query with just the CNAME makes the resolver ask for each target in turn.
func TestResolvePartialChainAsksAgain(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := dnstest.Start(t)
			s.SetFollowCNAME(false)
			s.SetCNAME("cluster.example.com", 30, "proxy.example.com")
			s.SetCNAME("proxy.example.com", 20, "instance.example.com")
			s.SetA("instance.example.com", 40, "10.0.0.7")
			r := newResolver(t, resolver.Config{Servers: []string{s.Addr()}, ForceTCP: tr.forceTCP})
			got, err := r.Resolve(context.Background(), "cluster.example.com", resolver.IPv4)
			if err != nil {
				t.Fatal(err)
			}
			wantChain := []string{"cluster.example.com.", "proxy.example.com.", "instance.example.com."}
			if !slices.Equal(got.Addrs, addrs("10.0.0.7")) || got.TTL != 20*time.Second || !slices.Equal(got.Chain, wantChain) {
				t.Errorf("got %+v, want 10.0.0.7, TTL 20s, chain %q", got, wantChain)
			}
			if q := s.Queries(); q != 3 {
				t.Errorf("server saw %d queries, want 3 (one per name)", q)
			}
		})
	}
}

// Loops and long chains are caught across queries too, with a bounded number of queries.
func TestResolvePartialChainLimits(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *dnstest.Server)
		kind  resolver.Kind
	}{
		{"loop", func(s *dnstest.Server) {
			s.SetCNAME("c0.example.com", 5, "c1.example.com")
			s.SetCNAME("c1.example.com", 5, "c0.example.com")
		}, resolver.KindLoop},
		{"too long", func(s *dnstest.Server) { chainOf(s, "example.com", 20) }, resolver.KindChainTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dnstest.Start(t)
			s.SetFollowCNAME(false)
			tt.setup(s)
			r := newResolver(t, resolver.Config{Servers: []string{s.Addr()}})
			_, err := r.Resolve(context.Background(), "c0.example.com", resolver.IPv4)
			if k := resolver.KindOf(err); k != tt.kind {
				t.Fatalf("KindOf = %q, want %q; err: %v", k, tt.kind, err)
			}
			if q := s.Queries(); q > resolver.MaxChain {
				t.Errorf("server saw %d queries, want at most %d", q, resolver.MaxChain)
			}
		})
	}
}

func TestResolveTruncatedFallsBackToTCP(t *testing.T) {
	many := make([]string, 100) // 100 A records do not fit in 1232 bytes
	for i := range many {
		many[i] = fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
	}
	tests := []struct {
		name  string
		setup func(s *dnstest.Server)
		want  int
	}{
		{"TC fault", func(s *dnstest.Server) { serveDB(s, dnstest.FaultTruncate) }, 1},
		{"answer too big for UDP", func(s *dnstest.Server) { s.SetA("db.example.com", 5, many...) }, len(many)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := dnstest.Start(t)
			tt.setup(s)
			r := newResolver(t, resolver.Config{Servers: []string{s.Addr()}})
			got, err := r.Resolve(context.Background(), "db.example.com", resolver.IPv4)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Addrs) != tt.want {
				t.Errorf("got %d addresses, want %d", len(got.Addrs), tt.want)
			}
			if u, c := s.QueriesUDP(), s.QueriesTCP(); u != 1 || c != 1 {
				t.Errorf("queries: %d over UDP, %d over TCP; want 1 and 1", u, c)
			}
		})
	}
}

func TestResolveTriesNextServer(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, tr := range transports {
		for _, f := range []dnstest.Fault{dnstest.FaultDrop, dnstest.FaultServFail, dnstest.FaultRefused} {
			t.Run(tr.name+"/"+f.String(), func(t *testing.T) {
				bad, good := dnstest.Start(t), dnstest.Start(t)
				serveDB(bad, f)
				good.SetA("db.example.com", 5, "10.0.0.2")
				r := newResolver(t, resolver.Config{Servers: []string{bad.Addr(), good.Addr()}, Timeout: timeout, ForceTCP: tr.forceTCP})
				start := time.Now()
				got, err := r.Resolve(context.Background(), "db.example.com", resolver.IPv4)
				elapsed := time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				if got.Server != good.Addr() || !slices.Equal(got.Addrs, addrs("10.0.0.2")) {
					t.Errorf("got %v from %s, want 10.0.0.2 from %s", got.Addrs, got.Server, good.Addr())
				}
				if bad.Queries() != 1 {
					t.Errorf("failing server saw %d queries, want 1", bad.Queries())
				}
				if elapsed >= 2*timeout {
					t.Errorf("took %v, want less than 2 x timeout (%v)", elapsed, 2*timeout)
				}
			})
		}
	}
}

// A server that is not listening (connection refused) counts as a failure too; the next one answers.
func TestResolveSkipsDeadServer(t *testing.T) {
	dead, err := dnstest.New()
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr()
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}
	good := dnstest.Start(t)
	good.SetA("db.example.com", 5, "10.0.0.2")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			r := newResolver(t, resolver.Config{Servers: []string{deadAddr, good.Addr()}, Timeout: time.Second, ForceTCP: tr.forceTCP})
			got, err := r.Resolve(context.Background(), "db.example.com", resolver.IPv4)
			if err != nil {
				t.Fatal(err)
			}
			if got.Server != good.Addr() {
				t.Errorf("Server = %s, want %s", got.Server, good.Addr())
			}
		})
	}
}

func TestResolveNXDOMAINIsFinal(t *testing.T) {
	first, second := dnstest.Start(t), dnstest.Start(t)
	second.SetA("db.example.com", 5, "10.0.0.2")
	r := newResolver(t, resolver.Config{Servers: []string{first.Addr(), second.Addr()}})
	_, err := r.Resolve(context.Background(), "db.example.com", resolver.IPv4)
	if k := resolver.KindOf(err); k != resolver.KindNXDOMAIN {
		t.Fatalf("KindOf = %q, want %q; err: %v", k, resolver.KindNXDOMAIN, err)
	}
	if n := second.Queries(); n != 0 {
		t.Errorf("second server asked %d times after an NXDOMAIN, want 0", n)
	}
}

func TestResolveAllServersFail(t *testing.T) {
	const timeout = 200 * time.Millisecond
	tests := []struct {
		faults []dnstest.Fault
		kind   resolver.Kind
		server int // index of the server the error names
	}{
		{[]dnstest.Fault{dnstest.FaultDrop, dnstest.FaultDrop}, resolver.KindTimeout, 0},
		{[]dnstest.Fault{dnstest.FaultDrop, dnstest.FaultServFail}, resolver.KindSERVFAIL, 1},
		{[]dnstest.Fault{dnstest.FaultRefused, dnstest.FaultDrop}, resolver.KindREFUSED, 0},
		{[]dnstest.Fault{dnstest.FaultRefused, dnstest.FaultServFail}, resolver.KindSERVFAIL, 1},
		{[]dnstest.Fault{dnstest.FaultRefused, dnstest.FaultRefused}, resolver.KindREFUSED, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.faults), func(t *testing.T) {
			var servers []string
			for _, f := range tt.faults {
				s := dnstest.Start(t)
				serveDB(s, f)
				servers = append(servers, s.Addr())
			}
			r := newResolver(t, resolver.Config{Servers: servers, Timeout: timeout})
			_, err := r.Resolve(context.Background(), "db.example.com", resolver.IPv4)
			t.Log(err)
			if k := resolver.KindOf(err); k != tt.kind {
				t.Fatalf("KindOf = %q, want %q; err: %v", k, tt.kind, err)
			}
			var rerr *resolver.Error
			if errors.As(err, &rerr) && rerr.Server != servers[tt.server] {
				t.Errorf("Server = %q, want %q", rerr.Server, servers[tt.server])
			}
			for _, s := range servers {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not name server %s", err, s)
				}
			}
		})
	}
}

func TestTimeoutMessage(t *testing.T) {
	a, b := dnstest.Start(t), dnstest.Start(t)
	a.SetFault(dnstest.FaultDrop)
	b.SetFault(dnstest.FaultDrop)
	r := newResolver(t, resolver.Config{Servers: []string{a.Addr(), b.Addr()}, Timeout: 100 * time.Millisecond})
	_, err := r.Resolve(context.Background(), "orders.example.com", resolver.IPv4)
	want := fmt.Sprintf("resolve orders.example.com: no answer from %s, %s within 100ms (timeout); check dns.servers and network access",
		a.Addr(), b.Addr())
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

func TestResolveContext(t *testing.T) {
	t.Run("cancel returns promptly", func(t *testing.T) {
		for _, tr := range transports {
			t.Run(tr.name, func(t *testing.T) {
				s := dnstest.Start(t)
				s.SetFault(dnstest.FaultDrop)
				r := newResolver(t, resolver.Config{Servers: []string{s.Addr(), s.Addr()}, Timeout: 10 * time.Second, ForceTCP: tr.forceTCP})
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				start := time.Now()
				_, err := r.Resolve(ctx, "db.example.com", resolver.IPv4)
				if elapsed := time.Since(start); elapsed > 2*time.Second {
					t.Errorf("took %v after cancel, want prompt return", elapsed)
				}
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled", err)
				}
				if s.Queries() > 1 {
					t.Errorf("server saw %d queries after cancel, want 1", s.Queries())
				}
			})
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		s := dnstest.Start(t)
		s.SetA("db.example.com", 5, "10.0.0.1")
		r := newResolver(t, resolver.Config{Servers: []string{s.Addr()}})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := r.Resolve(ctx, "db.example.com", resolver.IPv4)
		if !errors.Is(err, context.Canceled) || s.Queries() != 0 {
			t.Errorf("err = %v after %d queries, want context.Canceled and no query", err, s.Queries())
		}
	})
	t.Run("deadline shorter than timeout", func(t *testing.T) {
		s1, s2 := dnstest.Start(t), dnstest.Start(t)
		s1.SetFault(dnstest.FaultDrop)
		s2.SetA("db.example.com", 5, "10.0.0.1")
		r := newResolver(t, resolver.Config{Servers: []string{s1.Addr(), s2.Addr()}, Timeout: 10 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := r.Resolve(ctx, "db.example.com", resolver.IPv4)
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("took %v, want about the ctx deadline", elapsed)
		}
		if k := resolver.KindOf(err); k != resolver.KindTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v (kind %q), want a timeout wrapping context.DeadlineExceeded", err, k)
		}
		if s2.Queries() != 0 {
			t.Errorf("second server asked after the deadline passed")
		}
	})
}

// Simulated failover: the endpoint's records change between two passes and the second pass sees the change.
func TestResolveSeesZoneChange(t *testing.T) {
	s := dnstest.Start(t)
	s.SetCNAME("cluster.example.com", 5, "instance-a.example.com")
	s.SetA("instance-a.example.com", 5, "10.0.0.1")
	s.SetA("instance-b.example.com", 5, "10.0.1.1")
	r := newResolver(t, resolver.Config{Servers: []string{s.Addr()}})
	ctx := context.Background()

	check := func(wantAddr, wantTarget string) {
		t.Helper()
		got, err := r.Resolve(ctx, "cluster.example.com", resolver.IPv4)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Addrs, addrs(wantAddr)) || got.Chain[len(got.Chain)-1] != wantTarget {
			t.Errorf("got %v via %v, want %s via %s", got.Addrs, got.Chain, wantAddr, wantTarget)
		}
	}
	check("10.0.0.1", "instance-a.example.com.")
	s.SetCNAME("cluster.example.com", 5, "instance-b.example.com") // Aurora failover: the cluster endpoint moves
	check("10.0.1.1", "instance-b.example.com.")
	s.SetA("instance-b.example.com", 5, "10.0.2.2") // Multi-AZ failover: the instance's address changes
	check("10.0.2.2", "instance-b.example.com.")
}

func TestNew(t *testing.T) {
	tests := []struct {
		servers []string
		want    []string
		wantErr bool
	}{
		{servers: []string{"10.0.0.2"}, want: []string{"10.0.0.2:53"}},
		{servers: []string{"10.0.0.2:5353", " 10.0.0.3 "}, want: []string{"10.0.0.2:5353", "10.0.0.3:53"}},
		{servers: []string{"::1", "[fd00::2]", "[fd00::3]:5353"}, want: []string{"[::1]:53", "[fd00::2]:53", "[fd00::3]:5353"}},
		{servers: []string{"dns.internal"}, want: []string{"dns.internal:53"}},
		{servers: []string{""}, wantErr: true},
		{servers: []string{":53"}, wantErr: true},
		{servers: []string{"10.0.0.2:dns"}, wantErr: true},
		{servers: []string{"10.0.0.2:0"}, wantErr: true},
		{servers: []string{"10.0.0.2:70000"}, wantErr: true},
		{servers: []string{"10.0.0.2:53:53"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.servers, ","), func(t *testing.T) {
			r, err := resolver.New(resolver.Config{Servers: tt.servers})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New accepted %q: %v", tt.servers, r.Servers())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Servers(); !slices.Equal(got, tt.want) {
				t.Errorf("Servers() = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("negative timeout", func(t *testing.T) {
		if _, err := resolver.New(resolver.Config{Servers: []string{"10.0.0.2"}, Timeout: -time.Second}); err == nil {
			t.Error("New accepted a negative timeout")
		}
	})
	t.Run("Servers returns a copy", func(t *testing.T) {
		r := newResolver(t, resolver.Config{Servers: []string{"10.0.0.2"}})
		r.Servers()[0] = "changed"
		if r.Servers()[0] != "10.0.0.2:53" {
			t.Error("Servers() exposes the resolver's own slice")
		}
	})
}

func TestNewResolvConf(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("nameservers", func(t *testing.T) {
		p := write("ok", "# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver fd00::2\noptions ndots:5\n")
		r := newResolver(t, resolver.Config{ResolvConf: p})
		if got, want := r.Servers(), []string{"10.0.0.2:53", "[fd00::2]:53"}; !slices.Equal(got, want) {
			t.Errorf("Servers() = %q, want %q", got, want)
		}
	})
	t.Run("servers win over the file", func(t *testing.T) {
		r := newResolver(t, resolver.Config{Servers: []string{"10.0.0.9"}, ResolvConf: filepath.Join(dir, "missing")})
		if got := r.Servers(); !slices.Equal(got, []string{"10.0.0.9:53"}) {
			t.Errorf("Servers() = %q", got)
		}
	})
	for _, tt := range []struct{ name, path string }{
		{"no nameserver", write("empty", "search example.com\n")},
		{"missing file", filepath.Join(dir, "missing")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resolver.New(resolver.Config{ResolvConf: tt.path})
			if err == nil || !strings.Contains(err.Error(), "dns.servers") {
				t.Errorf("err = %v, want an error that points at dns.servers", err)
			}
		})
	}
}

func TestFamilyFor(t *testing.T) {
	tests := []struct {
		in      string
		want    resolver.Family
		wantErr bool
	}{
		{"ipv4", resolver.IPv4, false},
		{"", resolver.IPv4, false},
		{"dualstack", resolver.IPv4, false},
		{"IPV6", resolver.IPv6, false},
		{"ipv5", 0, true},
	}
	for _, tt := range tests {
		got, err := resolver.FamilyFor(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("FamilyFor(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestKindOf(t *testing.T) {
	rerr := &resolver.Error{Kind: resolver.KindLoop, Name: "a.example.com", Err: errors.New("loop")}
	tests := []struct {
		err  error
		want resolver.Kind
	}{
		{nil, ""},
		{errors.New("other"), resolver.KindOther},
		{rerr, resolver.KindLoop},
		{fmt.Errorf("sync orders: %w", rerr), resolver.KindLoop},
	}
	for _, tt := range tests {
		if got := resolver.KindOf(tt.err); got != tt.want {
			t.Errorf("KindOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	s := dnstest.Start(b)
	s.SetA("db.example.com", 5, "10.0.0.1")
	r := newResolver(b, resolver.Config{Servers: []string{s.Addr()}})
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.Resolve(ctx, "db.example.com", resolver.IPv4); err != nil {
			b.Fatal(err)
		}
	}
}

// TestResolveAnswerTooBigForTCP: an answer that does not fit even in a TCP message is an error, never a partial
// list of addresses (I1: acting on part of the answer could deregister the addresses that were cut off).
func TestResolveAnswerTooBigForTCP(t *testing.T) {
	srv := dnstest.Start(t)
	ips := make([]string, 6000)
	for i := range ips {
		ips[i] = fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256)
	}
	srv.SetA("huge.example.com", 5, ips...)
	r, err := resolver.New(resolver.Config{Servers: []string{srv.Addr()}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Resolve(context.Background(), "huge.example.com", resolver.IPv4)
	if err == nil {
		t.Fatalf("a truncated TCP answer was used: %d of %d addresses", len(res.Addrs), len(ips))
	}
	if !strings.Contains(err.Error(), "truncated even over TCP") {
		t.Fatalf("error %v does not say the answer was truncated", err)
	}
}
