package metrics_test

import (
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/ipsync/ipsync/internal/metrics"
)

var update = flag.Bool("update", false, "rewrite testdata/exposition.txt from the current exposition")

// TestExposition: what /metrics shows of the per-mapping series, byte for byte, against testdata/exposition.txt.
// The golden file was written by client_golang's own vectors (before the per-mapping series moved to compact
// records), so a difference means a scrape changed: a name, help text, label, bucket or value. Both ways of
// serving them are checked: the registry's Gather (promhttp, and what Push sends) and the daemon's /metrics,
// which writes them one family at a time; the latter also compressed, and in the protobuf format.
func TestExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "1.2.3", Commit: "abc1234", GoVersion: "go1.26.8"})
	recordScenario(m)
	path := filepath.Join("testdata", "exposition.txt")
	gathered := scrape(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil)
	if *update {
		if err := os.WriteFile(path, gathered, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(gathered) != string(want) {
		t.Errorf("the registry's exposition differs from %s (go test -run TestExposition -update rewrites it; review the diff):\n%s", path, gathered)
	}

	h := m.Handler(reg, nil)
	if got := scrape(t, h, nil); string(got) != string(want) {
		t.Errorf("/metrics, written family by family, differs from %s:\n%s", path, got)
	}
	if got := scrape(t, h, http.Header{"Accept-Encoding": {"gzip, deflate"}}); string(got) != string(want) {
		t.Errorf("/metrics with gzip differs from %s:\n%s", path, got)
	}
	proto := http.Header{"Accept": {"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"}}
	if got := scrape(t, h, proto); string(got) != string(want) {
		t.Errorf("/metrics in the protobuf format, as text, differs from %s:\n%s", path, got)
	}
	// Written once: the registry's Gather leaves them out from then on.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if slices.ContainsFunc(mf.GetMetric()[0].GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "sync" }) {
			t.Errorf("after /metrics took over the per-mapping series, Gather still has %s", mf.GetName())
		}
	}
}

// recordScenario records a bit of everything, including a state and a DNS result outside the fixed lists, a
// mapping with membership series, an idle one and a removed one.
func recordScenario(m *metrics.Metrics) {
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
}

// scrape GETs /metrics from h with header and returns the body as text (decompressed, protobuf turned into the
// text format), the last success times replaced by NOW.
func scrape(t *testing.T, h http.Handler, header http.Header) []byte {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	maps.Copy(req.Header, header)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := io.Reader(rec.Body)
	if header.Get("Accept-Encoding") != "" && rec.Header().Get("Content-Encoding") != "gzip" {
		t.Errorf("Accept-Encoding %q: answered with Content-Encoding %q, want gzip", header.Get("Accept-Encoding"), rec.Header().Get("Content-Encoding"))
	}
	if rec.Header().Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(body)
		if err != nil {
			t.Fatal(err)
		}
		body = gz
	}
	format := expfmt.ResponseFormat(rec.Header())
	var text bytes.Buffer
	if format.FormatType() == expfmt.TypeProtoDelim {
		dec := expfmt.NewDecoder(body, format)
		enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if err := enc.Encode(&mf); err != nil {
				t.Fatal(err)
			}
		}
	} else if _, err := io.Copy(&text, body); err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(ipsync_last_success_timestamp_seconds\{sync="(orders|billing)"\}) [0-9.e+]+`).
		ReplaceAll(text.Bytes(), []byte("$1 NOW"))
}
