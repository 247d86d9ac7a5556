package metrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipsync/ipsync/internal/metrics"
)

// TestScrapeWhileRecording: passes record while /metrics is scraped, through the registry and through the
// daemon's handler in the text and protobuf formats at once (their label pairs are shared), and mappings come and
// go (run with -race); every scrape answers 200 and a recorded count is never lost.
func TestScrapeWhileRecording(t *testing.T) {
	m, reg := newMetrics(t)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
	other, otherReg := newMetrics(t)
	daemon := other.Handler(otherReg, nil)
	const passes = 200
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			sync := fmt.Sprintf("db%d", w)
			for _, m := range []*metrics.Metrics{m, other} {
				m.Init(sync)
			}
			for range passes {
				for _, m := range []*metrics.Metrics{m, other} {
					m.SyncRun(sync, metrics.ResultUnchanged, time.Millisecond)
					m.DNSQuery(sync, metrics.DNSSuccess, time.Millisecond)
					m.SetTargets(sync, map[string]int{"healthy": 1, "hibernating": 1})
					m.Init("churn")
					m.Forget("churn")
				}
			}
		})
	}
	scraper := func(h http.Handler, accept string) {
		for range 20 {
			req := httptest.NewRequest("GET", "/metrics", nil)
			req.Header.Set("Accept", accept)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Errorf("/metrics = %d: %s", rec.Code, rec.Body)
			}
		}
	}
	const protobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
	wg.Go(func() { scraper(h, "text/plain") })
	wg.Go(func() { scraper(daemon, "text/plain") })
	wg.Go(func() { scraper(daemon, protobuf) })
	wg.Go(func() { scraper(daemon, protobuf) })
	wg.Wait()
	for w := range 4 {
		wantValue(t, reg, "ipsync_sync_runs_total", l("sync", fmt.Sprintf("db%d", w), "result", "unchanged"), passes)
		wantValue(t, reg, "ipsync_dns_query_duration_seconds", l("sync", fmt.Sprintf("db%d", w)), passes)
	}
}

// BenchmarkMappings3000 measures what the per-mapping series of 3,000 mappings cost: the heap they hold between
// scrapes (live-MiB), and one scrape of /metrics through the registry (promhttp): the series it holds at once
// (gathered-MiB), what it allocates (scrape-alloc-MiB) and its size (body-MiB); then one through the daemon's
// handler, which writes the per-mapping series a family at a time: what it allocates (stream-alloc-MiB) and the
// most one family holds (largest-family-MiB).
//
//	go test -run='^$' -bench=Mappings3000 -benchtime=1x ./internal/metrics/
func BenchmarkMappings3000(b *testing.B) {
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	for range b.N {
		reg := prometheus.NewRegistry()
		before := heap()
		m := metrics.New(reg, metrics.BuildInfo{})
		for i := range 3000 {
			sync := fmt.Sprintf("db%04d", i)
			m.Init(sync)
			m.SyncRun(sync, metrics.ResultUnchanged, time.Millisecond)
			m.DNSQuery(sync, metrics.DNSSuccess, time.Millisecond)
			m.SetTargets(sync, map[string]int{"healthy": 1})
		}
		live := heap()
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		gathered := heap()
		runtime.KeepAlive(mfs)
		mfs = nil

		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		alloc := ms.TotalAlloc
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		runtime.ReadMemStats(&ms)
		mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
		b.ReportMetric(mib(ms.TotalAlloc-alloc), "scrape-alloc-MiB")
		b.ReportMetric(mib(uint64(rec.Body.Len())), "body-MiB")

		h := m.Handler(reg, nil)
		runtime.ReadMemStats(&ms)
		alloc = ms.TotalAlloc
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		runtime.ReadMemStats(&ms)
		b.ReportMetric(mib(ms.TotalAlloc-alloc), "stream-alloc-MiB")
		var largest uint64
		liveBytes := func() int64 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			return int64(ms.HeapAlloc)
		}
		for _, name := range []string{"ipsync_convergence_seconds", "ipsync_targets", "ipsync_dns_queries_total"} {
			held := liveBytes()
			fam := metrics.GatherFamily(m, name)
			largest = max(largest, uint64(max(liveBytes()-held, 0)))
			runtime.KeepAlive(fam)
		}
		b.ReportMetric(mib(largest), "largest-family-MiB")
		b.ReportMetric(mib(live-before), "live-MiB")
		b.ReportMetric(mib(gathered-live), "gathered-MiB")
	}
}
