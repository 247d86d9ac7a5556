package engine_test

// Authoritative DNS mode through the engine, with the resolver every command builds (engine.NewResolver): a
// parent zone delegating the endpoint's zone to its own name servers, all real DNS servers on loopback, and the
// daemon loop on wall time.

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

const (
	authParent = "us-east-1.rds.test."
	authZone   = "c9abc.us-east-1.rds.test." // endpoint's zone
	authPoll   = 250 * time.Millisecond      // the lowest poll.min authoritative mode allows
	day        = 86400                       // a TTL authoritative mode must ignore
)

// authWorld is env plus a delegation to the endpoint's zone and the metrics of the engine built last.
type authWorld struct {
	*env
	d       *dnstest.Delegation
	metrics *metricsEnv
}

func newAuthWorld(t *testing.T, e *env, children int) *authWorld {
	t.Helper()
	d, err := dnstest.NewDelegation(authParent, authZone, children, day)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return &authWorld{env: e, d: d}
}

// config is the daemon's configuration in authoritative mode, with the recursive server of the delegation as
// dns.servers.
func (w *authWorld) config(syncs ...config.Sync) *config.Config {
	w.t.Helper()
	if len(syncs) == 0 {
		syncs = []config.Sync{w.mapping()}
	}
	cfg := config.Defaults()
	cfg.DNS.Mode = config.DNSModeAuthoritative
	cfg.DNS.Servers, cfg.DNS.Timeout = []string{w.d.Recursive.Addr()}, 300*time.Millisecond
	cfg.Poll.Min = authPoll
	cfg.Syncs = syncs
	if err := cfg.Validate(); err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

// engine builds the engine on wall time over cfg, resolving with engine.NewResolver, with metrics and logs.
func (w *authWorld) engine(cfg *config.Config) *engine.Engine {
	w.t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	w.metrics = &metricsEnv{env: w.env, reg: reg, m: m}
	res, err := engine.NewResolver(cfg, m, w.d.Addrs.Lookup)
	if err != nil {
		w.t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	w.logs = logs
	return engine.New(cfg, engine.Deps{
		Resolver: res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return w.rec, nil },
		Metrics:  m,
		Log:      zap.New(core),
	}, engine.Options{FollowInterval: 100 * time.Millisecond})
}

// waitLive waits until the group's live targets are exactly ips.
func (w *authWorld) waitLive(timeout time.Duration, ips ...netip.Addr) {
	w.t.Helper()
	var got []netip.Addr
	ok := testutil.Wait(timeout, func() bool {
		got = got[:0]
		for _, t := range w.live() {
			got = append(got, t.IP)
		}
		slices.SortFunc(got, netip.Addr.Compare)
		return slices.Equal(got, ips)
	})
	if !ok {
		w.t.Fatalf("after %s the live targets are %v, want %v (calls: %v)", timeout, got, ips, w.rec.Calls(""))
	}
}

// TestAuthoritativeIgnoresTTL: the name servers publish a new address under a TTL of one day, while the
// recursive server keeps answering the old one. In authoritative mode the daemon asks the name servers every
// poll.min, so it registers the new address and removes the old one; a TTL-bound poll would wait poll.max (30 s)
// and a recursive one would never see it. The queries go to the name servers, labelled by host name.
func TestAuthoritativeIgnoresTTL(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := newAuthWorld(t, e, 2)
		w.d.SetA(endpoint, day, ipA.String())
		w.d.Recursive.SetA(endpoint, day, ipA.String())
		runEngine(t, w.engine(w.config()))
		w.waitLive(10*time.Second, ipA)

		w.d.SetA(endpoint, day, ipB.String())
		w.waitLive(10*time.Second, ipB)

		if v := w.metrics.value("ipsync_dns_mode", "sync=orders", "mode=authoritative"); v != 1 {
			t.Errorf("ipsync_dns_mode{mode=authoritative} = %v, want 1", v)
		}
		for _, ns := range []string{"ns1", "ns2"} {
			if v := w.metrics.value("ipsync_dns_server_queries_total", "mode=authoritative", "server="+ns+"."+strings.TrimSuffix(authZone, "."), "result=success"); v == 0 {
				t.Errorf("no successful query counted for name server %s: queries are spread over the zone's servers", ns)
			}
		}
		for _, m := range w.metrics.series("ipsync_dns_server_queries_total") {
			for _, lp := range m.GetLabel() {
				if _, err := netip.ParseAddrPort(lp.GetValue()); err == nil || strings.Contains(lp.GetValue(), "127.0.0.1") {
					t.Errorf("label %s=%q is an address", lp.GetName(), lp.GetValue())
				}
			}
		}
	})
}

// TestAuthoritativeLaggingServers: of three name servers, ns1 publishes the failover to B and the other two
// keep answering A for 3 s. Asked in turn, the lagging two answer twice in a row without B; that must never
// deregister B. A stays while a server still returns it and goes once they all agree.
func TestAuthoritativeLaggingServers(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := newAuthWorld(t, e, 3)
		w.d.SetA(endpoint, 5, ipA.String())
		runEngine(t, w.engine(w.config()))
		w.waitLive(10*time.Second, ipA)

		w.d.Children[0].SetA(endpoint, 5, ipB.String())
		time.Sleep(3 * time.Second)
		if got := w.rec.Calls("Deregister"); len(got) > 0 {
			t.Fatalf("deregistered %v while two of three name servers still answered A", got)
		}
		w.d.SetA(endpoint, 5, ipB.String())
		w.waitLive(10*time.Second, ipB)
		for _, c := range w.rec.Calls("Deregister") {
			if strings.Contains(c, ipB.String()) {
				t.Fatalf("the new address was deregistered: %v", w.rec.Calls(""))
			}
		}
	})
}

// TestAuthoritativeFallback: no name server of the zone answers (REFUSED from each, as from servers that do not
// serve it, or timeouts in a VPC without egress). The mapping falls back to the recursive servers: it follows
// their answer, reports the fallback and its reason, sets ipsync_dns_mode{mode="fallback"}, and logs it once,
// not once per poll.
func TestAuthoritativeFallback(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	w := newAuthWorld(t, e, 2)
	w.d.SetA(endpoint, 5, ipB.String()) // what the name servers would say, if they answered
	w.d.Recursive.SetA(endpoint, 5, ipA.String())
	for _, c := range w.d.Children {
		c.SetFault(dnstest.FaultRefused)
	}
	eng := w.engine(w.config())
	var reps []engine.Report
	for range 3 {
		reps = append(reps, mustOK(t, eng.RunOnce(context.Background())[0]))
		time.Sleep(authPoll) // past the query budget's interval: each pass resolves again
	}
	w.wantLive(ipA)
	for i, r := range reps {
		if r.DNSMode != metrics.DNSModeFallback || !strings.Contains(r.DNSFallback, "REFUSED") {
			t.Errorf("pass %d: dns mode %q (%q), want fallback with the name servers' REFUSED as the reason", i, r.DNSMode, r.DNSFallback)
		}
	}
	if v := w.metrics.value("ipsync_dns_mode", "sync=orders", "mode=fallback"); v != 1 {
		t.Errorf("ipsync_dns_mode{mode=fallback} = %v, want 1", v)
	}
	if v := w.metrics.value("ipsync_dns_mode", "sync=orders", "mode=authoritative"); v != 0 {
		t.Errorf("ipsync_dns_mode{mode=authoritative} = %v, want 0", v)
	}
	if v := w.metrics.value("ipsync_dns_server_queries_total", "mode=authoritative", "result=refused"); v == 0 {
		t.Errorf("the name servers' refusals are not counted")
	}
	if n := w.logs.FilterMessageSnippet("authoritative name servers unreachable").Len(); n != 1 {
		t.Errorf("the fallback was logged %d times over 3 passes, want once", n)
	}

	// validate --remote says it too.
	cfg := w.config()
	res, err := engine.NewResolver(cfg, nil, w.d.Addrs.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	checks := engine.CheckRemote(context.Background(), cfg, res, func(context.Context, string, string) (engine.TargetGroup, error) { return w.rec, nil }, nil)
	if checks[0].Err != nil || !strings.Contains(checks[0].Summary, "falling back") {
		t.Errorf("CheckRemote = %+v, want a summary saying it fell back to recursive mode", checks[0])
	}
}

// TestAuthoritativeQueryBudget: two mappings follow the same endpoint; the name servers are asked about it at
// most once per poll.min between them (the two mappings share each answer).
func TestAuthoritativeQueryBudget(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	w := newAuthWorld(t, e, 2)
	w.d.SetA(endpoint, 5, ipA.String())
	copySync := w.mapping()
	copySync.Name, copySync.TargetGroupARN = "orders-copy", awstest.NewTargetGroup(t, port).ARN

	var mu sync.Mutex
	var asked []time.Time
	for _, c := range w.d.Children {
		c.SetObserver(func(a dnstest.Answer) {
			if a.Name == dnsFQDN(endpoint) {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, a.At)
			}
		})
	}
	runEngine(t, w.engine(w.config(w.mapping(), copySync)))
	w.waitLive(10*time.Second, ipA)
	start := time.Now()
	mu.Lock()
	before := len(asked)
	mu.Unlock()
	time.Sleep(3 * time.Second)
	mu.Lock()
	n := len(asked) - before
	mu.Unlock()
	// One query per poll.min at most, plus one for a poll that straddles each end of the window.
	if limit := int(time.Since(start)/authPoll) + 2; n > limit {
		t.Errorf("the name servers were asked about %s %d times in %s by two mappings, want at most %d (one per poll.min)",
			endpoint, n, time.Since(start).Round(time.Millisecond), limit)
	}
	if n == 0 {
		t.Errorf("the name servers were not asked at all in 3 s: authoritative mode polls every poll.min")
	}
}

func dnsFQDN(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }
