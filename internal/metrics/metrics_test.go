package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/testutil/promtest"
)

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return metrics.New(reg, metrics.BuildInfo{Version: "1.2.3", Commit: "abc1234", GoVersion: "go1.26.8"}), reg
}

// find returns the series of family name whose labels are exactly labels, or nil.
func find(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's sample count; the series must exist.
func value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, g, name, labels)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	return promtest.Value(m)
}

// wantValue fails the test unless value(name, labels) is want (for a histogram: want samples).
func wantValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	if v := value(t, g, name, labels); v != want {
		t.Errorf("%s%v = %v, want %v", name, labels, v, want)
	}
}

func histSum(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, g, name, labels)
	if m == nil || m.Histogram == nil {
		t.Fatalf("no histogram %s%v", name, labels)
	}
	return m.GetHistogram().GetSampleSum()
}

func l(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func allStates() []string {
	return []string{"initial", "healthy", "unhealthy", "unhealthy.draining", "unused", "draining", "unavailable"}
}

// touchAll moves every metric, so lint and contract tests see every family with data.
func touchAll(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	m.Init("orders")
	m.SyncRun("orders", metrics.ResultChanged, 120*time.Millisecond)
	m.SetInSync("orders", true)
	m.SetResolvedAddresses("orders", 1)
	m.AddressChange("orders")
	m.SetTargets("orders", map[string]int{"healthy": 1, "draining": 1})
	m.Registered("orders", 1)
	m.Deregistered("orders", 1)
	m.DNSQuery("orders", metrics.DNSSuccess, 3*time.Millisecond)
	m.Converged("orders", metrics.StageRegistered, 5500*time.Millisecond)
	m.Converged("orders", metrics.StageHealthy, 40*time.Second)
	m.SetDNSMode("orders", metrics.DNSModeAuthoritative)
	m.DNSServerQuery(metrics.DNSModeAuthoritative, "ns-1.awsdns-01.org", metrics.DNSSuccess)
	m.InitMembership("orders")
	m.MembershipRead("orders", true)
	m.SetMembers("orders", 2, 1)
	m.BudgetWait("describe", 200*time.Millisecond)
	callDescribeTargetHealth(t, m, 0)
}

// TestMembership: an rds: mapping's membership series exist from InitMembership on; a failed read counts an
// error and marks the membership unknown until a read succeeds; members are counted by state.
func TestMembership(t *testing.T) {
	m, reg := newMetrics(t)
	m.InitMembership("readers")
	sync := map[string]string{"sync": "readers"}
	wantValue(t, reg, "ipsync_membership_known", sync, 0)
	wantValue(t, reg, "ipsync_membership_refresh_errors_total", sync, 0)
	m.MembershipRead("readers", true)
	m.SetMembers("readers", 2, 1)
	wantValue(t, reg, "ipsync_membership_known", sync, 1)
	wantValue(t, reg, "ipsync_members", map[string]string{"sync": "readers", "state": metrics.MemberAvailable}, 2)
	wantValue(t, reg, "ipsync_members", map[string]string{"sync": "readers", "state": metrics.MemberUnavailable}, 1)
	m.MembershipRead("readers", false)
	m.MembershipRead("readers", false)
	wantValue(t, reg, "ipsync_membership_known", sync, 0)
	wantValue(t, reg, "ipsync_membership_refresh_errors_total", sync, 2)
	wantValue(t, reg, "ipsync_members", map[string]string{"sync": "readers", "state": metrics.MemberAvailable}, 2)
	m.MembershipRead("readers", true)
	wantValue(t, reg, "ipsync_membership_known", sync, 1)
}

func TestContract(t *testing.T) {
	m, reg := newMetrics(t)
	touchAll(t, m)
	want := map[string]struct {
		typ    dto.MetricType
		labels []string
	}{
		"ipsync_build_info":                      {dto.MetricType_GAUGE, []string{"commit", "goversion", "version"}},
		"ipsync_sync_runs_total":                 {dto.MetricType_COUNTER, []string{"result", "sync"}},
		"ipsync_sync_duration_seconds":           {dto.MetricType_HISTOGRAM, []string{"sync"}},
		"ipsync_last_success_timestamp_seconds":  {dto.MetricType_GAUGE, []string{"sync"}},
		"ipsync_in_sync":                         {dto.MetricType_GAUGE, []string{"sync"}},
		"ipsync_resolved_addresses":              {dto.MetricType_GAUGE, []string{"sync"}},
		"ipsync_address_changes_total":           {dto.MetricType_COUNTER, []string{"sync"}},
		"ipsync_targets":                         {dto.MetricType_GAUGE, []string{"state", "sync"}},
		"ipsync_registrations_total":             {dto.MetricType_COUNTER, []string{"sync"}},
		"ipsync_deregistrations_total":           {dto.MetricType_COUNTER, []string{"sync"}},
		"ipsync_dns_queries_total":               {dto.MetricType_COUNTER, []string{"result", "sync"}},
		"ipsync_dns_query_duration_seconds":      {dto.MetricType_HISTOGRAM, []string{"sync"}},
		"ipsync_aws_api_calls_total":             {dto.MetricType_COUNTER, []string{"code", "operation"}},
		"ipsync_aws_api_call_duration_seconds":   {dto.MetricType_HISTOGRAM, []string{"operation"}},
		"ipsync_convergence_seconds":             {dto.MetricType_HISTOGRAM, []string{"stage", "sync"}},
		"ipsync_dns_mode":                        {dto.MetricType_GAUGE, []string{"mode", "sync"}},
		"ipsync_dns_server_queries_total":        {dto.MetricType_COUNTER, []string{"mode", "result", "server"}},
		"ipsync_members":                         {dto.MetricType_GAUGE, []string{"state", "sync"}},
		"ipsync_membership_known":                {dto.MetricType_GAUGE, []string{"sync"}},
		"ipsync_membership_refresh_errors_total": {dto.MetricType_COUNTER, []string{"sync"}},
		"ipsync_aws_budget_wait_seconds":         {dto.MetricType_HISTOGRAM, []string{"budget"}},
		"ipsync_aws_budget_deferred_calls_total": {dto.MetricType_COUNTER, []string{"budget"}},
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
		w, ok := want[mf.GetName()]
		if !ok {
			t.Errorf("unexpected metric %s", mf.GetName())
			continue
		}
		if mf.GetType() != w.typ {
			t.Errorf("%s: type %v, want %v", mf.GetName(), mf.GetType(), w.typ)
		}
		for _, s := range mf.GetMetric() {
			var names []string
			for _, lp := range s.GetLabel() {
				names = append(names, lp.GetName())
			}
			sort.Strings(names)
			if !slices.Equal(names, w.labels) {
				t.Errorf("%s: labels %v, want %v", mf.GetName(), names, w.labels)
			}
		}
	}
	for name := range want {
		if !got[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

func TestPromlint(t *testing.T) {
	m, reg := newMetrics(t)
	touchAll(t, m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestBuildInfo(t *testing.T) {
	_, reg := newMetrics(t)
	wantValue(t, reg, "ipsync_build_info", l("version", "1.2.3", "commit", "abc1234", "goversion", "go1.26.8"), 1)

	reg2 := prometheus.NewRegistry()
	metrics.New(reg2, metrics.BuildInfo{})
	wantValue(t, reg2, "ipsync_build_info", l("version", "unknown", "commit", "unknown", "goversion", runtime.Version()), 1)
}

// TestForget: a mapping removed by a reload leaves no series behind; the others keep theirs.
func TestForget(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	m.Init("orders")
	m.Init("reports")
	m.SetInSync("reports", true)
	m.Forget("reports")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var orders int
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "sync" && l.GetValue() == "reports" {
					t.Fatalf("%s still has a series for the forgotten mapping", mf.GetName())
				}
				if l.GetName() == "sync" && l.GetValue() == "orders" {
					orders++
				}
			}
		}
	}
	if orders == 0 {
		t.Fatal("Forget(reports) removed orders' series too")
	}
}

func TestInitPreCreatesZeroSeries(t *testing.T) {
	m, reg := newMetrics(t)
	m.Init("orders")
	for _, r := range []string{"unchanged", "changed", "error"} {
		wantValue(t, reg, "ipsync_sync_runs_total", l("sync", "orders", "result", r), 0)
	}
	for _, s := range allStates() {
		wantValue(t, reg, "ipsync_targets", l("sync", "orders", "state", s), 0)
	}
	for _, r := range []string{"success", "nxdomain", "servfail", "refused", "timeout", "no_address", "cname_loop", "chain_too_long", "error"} {
		value(t, reg, "ipsync_dns_queries_total", l("sync", "orders", "result", r))
	}
	for _, name := range []string{"ipsync_sync_duration_seconds", "ipsync_last_success_timestamp_seconds", "ipsync_in_sync",
		"ipsync_resolved_addresses", "ipsync_address_changes_total", "ipsync_registrations_total",
		"ipsync_deregistrations_total", "ipsync_dns_query_duration_seconds"} {
		wantValue(t, reg, name, l("sync", "orders"), 0)
	}
	for _, st := range []string{"registered", "healthy"} {
		value(t, reg, "ipsync_convergence_seconds", l("sync", "orders", "stage", st))
	}

	// Init again (e.g. a config reload) must not reset anything.
	m.Registered("orders", 3)
	m.SetInSync("orders", true)
	m.Init("orders")
	wantValue(t, reg, "ipsync_registrations_total", l("sync", "orders"), 3)
	wantValue(t, reg, "ipsync_in_sync", l("sync", "orders"), 1)
}

func TestSyncRun(t *testing.T) {
	m, reg := newMetrics(t)
	m.Init("orders")

	m.SyncRun("orders", metrics.ResultError, time.Second)
	wantValue(t, reg, "ipsync_sync_runs_total", l("sync", "orders", "result", "error"), 1)
	wantValue(t, reg, "ipsync_last_success_timestamp_seconds", l("sync", "orders"), 0) // an error run is no success

	before := float64(time.Now().UnixNano()) / 1e9
	m.SyncRun("orders", metrics.ResultUnchanged, 250*time.Millisecond)
	m.SyncRun("orders", metrics.ResultChanged, 250*time.Millisecond)
	after := float64(time.Now().UnixNano()) / 1e9
	for _, r := range []string{"unchanged", "changed"} {
		wantValue(t, reg, "ipsync_sync_runs_total", l("sync", "orders", "result", r), 1)
	}
	if ts := value(t, reg, "ipsync_last_success_timestamp_seconds", l("sync", "orders")); ts < before-1 || ts > after+1 {
		t.Errorf("last success = %v, want within [%v, %v]", ts, before, after)
	}
	wantValue(t, reg, "ipsync_sync_duration_seconds", l("sync", "orders"), 3)
	if s := histSum(t, reg, "ipsync_sync_duration_seconds", l("sync", "orders")); s != 1.5 {
		t.Errorf("duration sum = %v, want 1.5", s)
	}
}

func TestSetInSync(t *testing.T) {
	m, reg := newMetrics(t)
	m.SetInSync("orders", true)
	wantValue(t, reg, "ipsync_in_sync", l("sync", "orders"), 1)
	m.SetInSync("orders", false)
	wantValue(t, reg, "ipsync_in_sync", l("sync", "orders"), 0)
}

func TestSetResolvedAddresses(t *testing.T) {
	m, reg := newMetrics(t)
	m.SetResolvedAddresses("orders", 2)
	wantValue(t, reg, "ipsync_resolved_addresses", l("sync", "orders"), 2)
}

func TestAddressChange(t *testing.T) {
	m, reg := newMetrics(t)
	m.AddressChange("orders")
	m.AddressChange("orders")
	wantValue(t, reg, "ipsync_address_changes_total", l("sync", "orders"), 2)
}

func TestSetTargets(t *testing.T) {
	m, reg := newMetrics(t)
	m.SetTargets("orders", map[string]int{"healthy": 2, "draining": 1})
	wantStates := func(want map[string]float64) {
		t.Helper()
		for _, s := range allStates() {
			wantValue(t, reg, "ipsync_targets", l("sync", "orders", "state", s), want[s])
		}
	}
	wantStates(map[string]float64{"healthy": 2, "draining": 1})

	// A state no longer reported goes back to 0 rather than keeping its old count.
	m.SetTargets("orders", map[string]int{"initial": 1})
	wantStates(map[string]float64{"initial": 1})
	m.SetTargets("orders", nil)
	wantStates(nil)

	// A state ELBv2 might add later is exported, and zeroed when gone; garbage keys never become labels.
	m.SetTargets("orders", map[string]int{"healthy": 1, "hibernating": 2, "10.0.0.1": 1, "Weird State": 1})
	wantValue(t, reg, "ipsync_targets", l("sync", "orders", "state", "hibernating"), 2)
	m.SetTargets("orders", map[string]int{"healthy": 1})
	wantValue(t, reg, "ipsync_targets", l("sync", "orders", "state", "hibernating"), 0)
	for _, bad := range []string{"10.0.0.1", "Weird State"} {
		if find(t, reg, "ipsync_targets", l("sync", "orders", "state", bad)) != nil {
			t.Errorf("state %q became a label value", bad)
		}
	}
}

func TestRegisteredDeregistered(t *testing.T) {
	m, reg := newMetrics(t)
	m.Init("orders")
	m.Registered("orders", 3)
	m.Registered("orders", 0)
	m.Registered("orders", -1) // a counter cannot go down; must not panic either
	m.Deregistered("orders", 2)
	m.Deregistered("orders", -5)
	wantValue(t, reg, "ipsync_registrations_total", l("sync", "orders"), 3)
	wantValue(t, reg, "ipsync_deregistrations_total", l("sync", "orders"), 2)
}

func TestDNSQuery(t *testing.T) {
	m, reg := newMetrics(t)
	m.DNSQuery("orders", metrics.DNSSuccess, 2*time.Millisecond)
	m.DNSQuery("orders", "", 2*time.Millisecond) // resolver.KindOf(nil) == ""
	m.DNSQuery("orders", "servfail", 4*time.Millisecond)
	wantValue(t, reg, "ipsync_dns_queries_total", l("sync", "orders", "result", "success"), 2)
	wantValue(t, reg, "ipsync_dns_queries_total", l("sync", "orders", "result", "servfail"), 1)
	if find(t, reg, "ipsync_dns_queries_total", l("sync", "orders", "result", "")) != nil {
		t.Error("empty result label exported")
	}
	wantValue(t, reg, "ipsync_dns_query_duration_seconds", l("sync", "orders"), 3)
	if s := histSum(t, reg, "ipsync_dns_query_duration_seconds", l("sync", "orders")); s < 0.0079 || s > 0.0081 {
		t.Errorf("duration sum = %v, want 0.008", s)
	}
}

func TestConverged(t *testing.T) {
	m, reg := newMetrics(t)
	m.Converged("orders", metrics.StageRegistered, 5500*time.Millisecond)
	m.Converged("orders", metrics.StageHealthy, 90*time.Second)
	m.Converged("orders", metrics.StageHealthy, -time.Second) // clamped to 0, sum must not go down
	wantValue(t, reg, "ipsync_convergence_seconds", l("sync", "orders", "stage", "registered"), 1)
	if s := histSum(t, reg, "ipsync_convergence_seconds", l("sync", "orders", "stage", "healthy")); s != 90 {
		t.Errorf("healthy sum = %v, want 90", s)
	}
	// Buckets must resolve the 0.1 s .. 10 min range and the TTL+1 s goal.
	h := find(t, reg, "ipsync_convergence_seconds", l("sync", "orders", "stage", "registered")).GetHistogram()
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	for _, want := range []float64{0.1, 2, 6, 600} {
		if !slices.Contains(bounds, want) {
			t.Errorf("convergence buckets %v lack %v", bounds, want)
		}
	}
}

func TestDNSMode(t *testing.T) {
	m, reg := newMetrics(t)
	m.Init("orders")
	for _, mode := range []string{metrics.DNSModeRecursive, metrics.DNSModeAuthoritative, metrics.DNSModeFallback} {
		if v := value(t, reg, "ipsync_dns_mode", l("sync", "orders", "mode", mode)); v != 0 {
			t.Errorf("before any answer, mode %s = %v, want 0", mode, v)
		}
	}
	m.SetDNSMode("orders", metrics.DNSModeAuthoritative)
	m.SetDNSMode("orders", metrics.DNSModeFallback)
	for mode, want := range map[string]float64{metrics.DNSModeRecursive: 0, metrics.DNSModeAuthoritative: 0, metrics.DNSModeFallback: 1} {
		if v := value(t, reg, "ipsync_dns_mode", l("sync", "orders", "mode", mode)); v != want {
			t.Errorf("mode %s = %v, want %v: only the mode in use is 1", mode, v, want)
		}
	}
}

func TestDNSServerQuery(t *testing.T) {
	m, reg := newMetrics(t)
	m.DNSServerQuery(metrics.DNSModeAuthoritative, "ns1.example.com", metrics.DNSSuccess)
	m.DNSServerQuery(metrics.DNSModeAuthoritative, "ns1.example.com", metrics.DNSSuccess)
	m.DNSServerQuery(metrics.DNSModeRecursive, metrics.DNSServerRecursive, "timeout")
	if v := value(t, reg, "ipsync_dns_server_queries_total", l("mode", "authoritative", "server", "ns1.example.com", "result", "success")); v != 2 {
		t.Errorf("authoritative queries to ns1 = %v, want 2", v)
	}
	if v := value(t, reg, "ipsync_dns_server_queries_total", l("mode", "recursive", "server", "recursive", "result", "timeout")); v != 1 {
		t.Errorf("recursive timeouts = %v, want 1", v)
	}
}

func TestNilMetricsIsNoOp(t *testing.T) {
	var m *metrics.Metrics
	m.Init("orders")
	m.SyncRun("orders", metrics.ResultChanged, time.Second)
	m.SetInSync("orders", true)
	m.SetResolvedAddresses("orders", 1)
	m.AddressChange("orders")
	m.SetTargets("orders", map[string]int{"healthy": 1})
	m.Registered("orders", 1)
	m.Deregistered("orders", 1)
	m.DNSQuery("orders", metrics.DNSSuccess, time.Millisecond)
	m.Converged("orders", metrics.StageHealthy, time.Second)

	stack := middleware.NewStack("DescribeTargetHealth", nil)
	if err := m.AWSMiddleware()(stack); err != nil {
		t.Fatalf("nil middleware: %v", err)
	}
	if ids := stack.Deserialize.List(); len(ids) != 0 {
		t.Errorf("nil middleware added %v", ids)
	}
	// And a real SDK call through it works.
	callDescribeTargetHealth(t, m, 0)
}

func TestNewTwiceOnOneRegistryShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := metrics.New(reg, metrics.BuildInfo{Version: "1"})
	b := metrics.New(reg, metrics.BuildInfo{Version: "1"})
	a.Registered("orders", 1)
	b.Registered("orders", 1)
	wantValue(t, reg, "ipsync_registrations_total", l("sync", "orders"), 2)
}

func TestNilRegistererWorks(t *testing.T) {
	m := metrics.New(nil, metrics.BuildInfo{})
	touchAll(t, m)
}

// TestNoAddressLikeLabelValues runs a realistic scenario, including caller mistakes, and checks that no label
// value is an IP, an address:port, an ARN, a URL or a hostname of the endpoint.
func TestNoAddressLikeLabelValues(t *testing.T) {
	m, reg := newMetrics(t)
	for _, sync := range []string{"orders", "billing-reader"} {
		m.Init(sync)
		m.DNSQuery(sync, metrics.DNSSuccess, time.Millisecond)
		m.DNSQuery(sync, "timeout", 2*time.Second)
		m.SetResolvedAddresses(sync, 2)
		m.AddressChange(sync)
		m.SetTargets(sync, map[string]int{"healthy": 1, "initial": 1, "10.1.2.3": 1, "2001:db8::1": 1,
			"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef": 1})
		m.Registered(sync, 1)
		m.Deregistered(sync, 1)
		m.SyncRun(sync, metrics.ResultChanged, 80*time.Millisecond)
		m.SetInSync(sync, true)
		m.Converged(sync, metrics.StageRegistered, 4*time.Second)
		m.Converged(sync, metrics.StageHealthy, 35*time.Second)
		m.SetDNSMode(sync, metrics.DNSModeFallback)
	}
	m.DNSServerQuery(metrics.DNSModeAuthoritative, "ns-1.awsdns-01.org", metrics.DNSSuccess)
	m.DNSServerQuery(metrics.DNSModeRecursive, metrics.DNSServerRecursive, "timeout")
	callDescribeTargetHealth(t, m, 2)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				v := lp.GetValue()
				_, addrErr := netip.ParseAddr(v)
				_, apErr := netip.ParseAddrPort(v)
				if addrErr == nil || apErr == nil || strings.HasPrefix(v, "arn:") || strings.Contains(v, "://") ||
					strings.Contains(v, "amazonaws.com") || strings.Contains(v, "127.0.0.1") {
					t.Errorf("%s{%s=%q}: address-like label value", mf.GetName(), lp.GetName(), v)
				}
			}
		}
	}
}

// callDescribeTargetHealth makes one DescribeTargetHealth call through the real SDK against a loopback server
// that throttles the first `throttles` attempts.
func callDescribeTargetHealth(t *testing.T, m *metrics.Metrics, throttles int) {
	t.Helper()
	srv := newELBServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= throttles {
			writeXML(w, http.StatusBadRequest, throttlingBody)
			return
		}
		writeXML(w, http.StatusOK, describeTargetHealthBody)
	})
	c := newELBClient(srv.URL, m, 3)
	if _, err := describe(context.Background(), c); err != nil {
		t.Fatalf("DescribeTargetHealth: %v", err)
	}
}

func TestHandler(t *testing.T) {
	_, reg := newMetrics(t)
	ready := metrics.Readiness{Ready: true, Mappings: []metrics.MappingState{{Sync: "orders", State: "ok"}}}
	h := metrics.Handler(reg, func() metrics.Readiness { return ready })
	get := func(method, path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}

	if code, body := get("GET", "/healthz"); code != 200 || body != "ok" {
		t.Errorf("/healthz = %d %q, want 200 \"ok\"", code, body)
	}
	if code, body := get("GET", "/readyz"); code != 200 || body != "ready\norders: ok" {
		t.Errorf("/readyz = %d %q, want 200 \"ready\" and the mapping's state", code, body)
	}
	ready = metrics.Readiness{Mappings: []metrics.MappingState{{Sync: "orders", State: "error (hard)"}, {Sync: "billing", State: "starting"}}}
	want := "not ready\norders: error (hard)\nbilling: starting\n(the errors are in the daemon's log and in `ipsync status`)"
	if code, body := get("GET", "/readyz"); code != 503 || body != want {
		t.Errorf("/readyz = %d %q, want 503 %q", code, body, want)
	}
	code, body := get("GET", "/metrics")
	if code != 200 || !strings.Contains(body, `ipsync_build_info{commit="abc1234",goversion="go1.26.8",version="1.2.3"} 1`) {
		t.Errorf("/metrics = %d, body lacks ipsync_build_info:\n%s", code, body)
	}
	if code, _ := get("POST", "/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", code)
	}
	code, body = get("GET", "/")
	for _, link := range []string{`href="metrics"`, `href="healthz"`, `href="readyz"`} {
		if code != 200 || !strings.Contains(body, link) {
			t.Errorf("/ = %d, want 200 and a page with %s:\n%s", code, link, body)
		}
	}
	if code, _ := get("GET", "/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d, want 404", code)
	}

	// nil ready means ready; nil gatherer serves an empty registry.
	h = metrics.Handler(nil, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Errorf("nil ready: /readyz = %d, want 200", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Errorf("nil gatherer: /metrics = %d, want 200", rec.Code)
	}
}
