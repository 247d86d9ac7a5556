package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip;q=1.0, *;q=0.5": true, "gzip;q=0": false,
		"gzip; q=0.001": true, "identity": false, "x-gzip": false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}

// /metrics?name[]=... keeps the named families only, the per-mapping ones as the others (as promhttp does).
func TestMetricsNameFilter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, BuildInfo{})
	m.Init("orders")
	rec := httptest.NewRecorder()
	m.Handler(reg, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics?name[]=ipsync_in_sync&name[]=ipsync_build_info", nil))
	var families []string
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			families = append(families, strings.Fields(name)[0])
		}
	}
	if strings.Join(families, " ") != "ipsync_build_info ipsync_in_sync" {
		t.Errorf("families %v, want ipsync_build_info and ipsync_in_sync:\n%s", families, rec.Body)
	}
}
