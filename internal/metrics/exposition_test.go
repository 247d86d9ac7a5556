package metrics_test

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipsync/ipsync/internal/metrics"
)

var update = flag.Bool("update", false, "rewrite testdata/exposition.txt from the current exposition")

// TestExposition: what /metrics shows of the per-mapping series, byte for byte, against testdata/exposition.txt.
// The golden file was written by client_golang's own vectors (before the per-mapping series moved to compact
// records), so a difference means a scrape changed: a name, help text, label, bucket or value.
func TestExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "1.2.3", Commit: "abc1234", GoVersion: "go1.26.8"})
	for _, s := range []string{"orders", "billing"} {
		m.Init(s)
		m.SyncRun(s, metrics.ResultChanged, 120*time.Millisecond)
		m.SyncRun(s, metrics.ResultError, 3*time.Second)
		m.SetInSync(s, true)
		m.SetResolvedAddresses(s, 2)
		m.AddressChange(s)
		m.SetTargets(s, map[string]int{"healthy": 1, "draining": 1, "hibernating": 3})
		m.SetTargets(s, map[string]int{"healthy": 2})
		m.Registered(s, 2)
		m.Deregistered(s, 1)
		m.DNSQuery(s, metrics.DNSSuccess, 3*time.Millisecond)
		m.DNSQuery(s, "weird", 30*time.Millisecond)
		m.DNSQuery(s, "timeout", 2*time.Second)
		m.Converged(s, metrics.StageRegistered, 5500*time.Millisecond)
		m.Converged(s, metrics.StageHealthy, 40*time.Second)
		m.SetDNSMode(s, metrics.DNSModeAuthoritative)
	}
	m.InitMembership("orders")
	m.MembershipRead("orders", false)
	m.SetMembers("orders", 2, 1)
	m.Init("idle")
	m.Init("removed")
	m.InitMembership("removed")
	m.Forget("removed")

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got := regexp.MustCompile(`(ipsync_last_success_timestamp_seconds\{sync="(orders|billing)"\}) [0-9.e+]+`).
		ReplaceAll(rec.Body.Bytes(), []byte("$1 NOW"))
	path := filepath.Join("testdata", "exposition.txt")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("/metrics differs from %s (go test -run TestExposition -update rewrites it; review the diff):\n%s", path, got)
	}
}
