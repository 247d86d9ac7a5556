package main_test

// End-to-end tests of what ipsync shows Prometheus: a scrape of the running daemon after a failover carries every
// metric of the README's Metrics table with plausible values, and `ipsync sync --pushgateway-url` pushes to Debian's Pushgateway.

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/promtest"
)

// scrape is one parsed /metrics answer plus its text.
type scrape struct {
	text     string
	families map[string]*dto.MetricFamily
}

func scrapeURL(t *testing.T, url string) scrape {
	t.Helper()
	s, err := tryScrape(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryScrape is scrapeURL for polling a process that may not listen yet.
func tryScrape(url string) (scrape, error) {
	resp, err := http.Get(url)
	if err != nil {
		return scrape{}, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("scraping %s: %s %v", url, resp.Status, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return scrape{}, fmt.Errorf("parsing the scrape of %s: %w\n%s", url, err, body)
	}
	return scrape{text: string(body), families: fams}, nil
}

// get sums the series of name carrying every label "k=v" given: counter and gauge values, histogram counts.
func (s scrape) get(name string, labels ...string) float64 {
	v, _ := s.getSum(name, labels...)
	return v
}

// getSum is get plus the summed histogram sample sums.
func (s scrape) getSum(name string, labels ...string) (value, sum float64) {
	mf := s.families[name]
	if mf == nil {
		return math.NaN(), math.NaN()
	}
	for _, m := range promtest.Matching(mf, labels...) {
		value += promtest.Value(m)
		sum += m.GetHistogram().GetSampleSum() // 0 for a series that is no histogram
	}
	return value, sum
}

// trimmed is the scrape's ipsync_* lines without histogram buckets and comments: what a person reads.
func (s scrape) trimmed() string {
	var out []string
	for _, l := range strings.Split(s.text, "\n") {
		if strings.HasPrefix(l, "ipsync_") && !strings.Contains(l, "_bucket{") && !strings.HasSuffix(l, " 0") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDaemonScrapeAfterFailover runs the daemon through a start-up, a DNS blip, a throttled AWS call and a
// failover, then checks that one scrape shows every metric family of the README's Metrics table with values that fit
// what happened.
func TestDaemonScrapeAfterFailover(t *testing.T) {
	const healthyAfter, drainFor = 2 * time.Second, 3 * time.Second
	w := newFakeWorld(t, elbv2fake.Options{HealthyAfter: healthyAfter, DrainFor: drainFor})
	w.dns.SetA(endpoint, 1, "10.0.1.10")
	p := startDaemon(t, w.config(""))
	metricsURL := "http://" + p.listen + "/metrics"

	testutil.Eventually(t, 10*time.Second, "the daemon never registered A and saw it healthy", func() bool {
		s, err := tryScrape(metricsURL)
		return err == nil && s.get("ipsync_in_sync", "sync=orders") == 1 && s.get("ipsync_targets", "sync=orders", "state=healthy") == 1
	})

	// A DNS blip: a few failed resolutions, nothing changes.
	w.dns.SetFault(dnstest.FaultServFail)
	testutil.Eventually(t, 10*time.Second, "no SERVFAIL counted", func() bool {
		return scrapeURL(t, metricsURL).get("ipsync_dns_queries_total", "sync=orders", "result=servfail") >= 2
	})
	w.dns.SetFault(dnstest.FaultNone)

	// The failover, with the first RegisterTargets attempt throttled (the SDK retries it).
	w.fake.FailNext("RegisterTargets", 1, elbv2fake.Fault{Status: 400, Code: "Throttling", Message: "Rate exceeded"})
	changedAt := time.Now()
	w.dns.SetA(endpoint, 1, "10.0.2.20")
	w.waitLive(15*time.Second, "10.0.2.20")
	var s scrape
	testutil.Eventually(t, 20*time.Second, "the new target never converged to healthy and in sync", func() bool {
		s = scrapeURL(t, metricsURL)
		return s.get("ipsync_convergence_seconds", "sync=orders", "stage=healthy") == 1 && s.get("ipsync_in_sync", "sync=orders") == 1
	})
	elapsed := time.Since(changedAt).Seconds()
	t.Logf("scrape after the failover (ipsync_* lines, no buckets, no zero values):\n%s", s.trimmed())
	if path := os.Getenv("IPSYNC_SCRAPE_OUT"); path != "" {
		_ = os.WriteFile(path, []byte(s.text), 0o644)
	}

	check := func(what string, got float64, ok bool) {
		t.Helper()
		if math.IsNaN(got) || !ok {
			t.Errorf("%s = %v: not plausible after this scenario", what, got)
		}
	}
	o := "sync=orders"
	check("build_info{version!=\"\"}", s.get("ipsync_build_info"), s.get("ipsync_build_info") == 1 && len(s.families["ipsync_build_info"].GetMetric()) == 1)
	check("sync_runs_total{changed}", s.get("ipsync_sync_runs_total", o, "result=changed"), s.get("ipsync_sync_runs_total", o, "result=changed") >= 2)
	check("sync_runs_total{unchanged}", s.get("ipsync_sync_runs_total", o, "result=unchanged"), s.get("ipsync_sync_runs_total", o, "result=unchanged") >= 1)
	check("sync_runs_total{error}", s.get("ipsync_sync_runs_total", o, "result=error"), s.get("ipsync_sync_runs_total", o, "result=error") >= 2)
	runs := s.get("ipsync_sync_runs_total", o)
	n, sum := s.getSum("ipsync_sync_duration_seconds", o)
	check("sync_duration_seconds count (one per pass)", n, n == runs)
	check("sync_duration_seconds mean", sum/n, sum > 0 && sum/n < 2)
	last := s.get("ipsync_last_success_timestamp_seconds", o)
	check("last_success_timestamp_seconds age", float64(time.Now().Unix())-last, time.Since(time.Unix(int64(last), 0)) < 10*time.Second)
	check("in_sync", s.get("ipsync_in_sync", o), s.get("ipsync_in_sync", o) == 1)
	check("resolved_addresses", s.get("ipsync_resolved_addresses", o), s.get("ipsync_resolved_addresses", o) == 1)
	check("address_changes_total", s.get("ipsync_address_changes_total", o), s.get("ipsync_address_changes_total", o) == 1)
	check("targets{healthy}", s.get("ipsync_targets", o, "state=healthy"), s.get("ipsync_targets", o, "state=healthy") == 1)
	// A has drained in the fake, but once B is healthy the daemon reads the group again only at resync_interval.
	check("targets{draining}", s.get("ipsync_targets", o, "state=draining"), s.get("ipsync_targets", o, "state=draining") <= 1)
	check("targets (all states)", s.get("ipsync_targets", o), s.get("ipsync_targets", o) == 1+s.get("ipsync_targets", o, "state=draining"))
	check("registrations_total", s.get("ipsync_registrations_total", o), s.get("ipsync_registrations_total", o) == 2)
	check("deregistrations_total", s.get("ipsync_deregistrations_total", o), s.get("ipsync_deregistrations_total", o) == 1)
	resolutions := s.get("ipsync_dns_queries_total", o)
	check("dns_queries_total{success}", s.get("ipsync_dns_queries_total", o, "result=success"), s.get("ipsync_dns_queries_total", o, "result=success") >= 3)
	n, sum = s.getSum("ipsync_dns_query_duration_seconds", o)
	check("dns_query_duration_seconds count (one per resolution)", n, n == resolutions)
	check("dns_query_duration_seconds mean", sum/n, sum > 0 && sum/n < 0.5)
	check("aws_api_calls_total{RegisterTargets,OK}", s.get("ipsync_aws_api_calls_total", "operation=RegisterTargets", "code=OK"),
		s.get("ipsync_aws_api_calls_total", "operation=RegisterTargets", "code=OK") == 2)
	check("aws_api_calls_total{RegisterTargets,Throttling}", s.get("ipsync_aws_api_calls_total", "operation=RegisterTargets", "code=Throttling"),
		s.get("ipsync_aws_api_calls_total", "operation=RegisterTargets", "code=Throttling") == 1)
	check("aws_api_calls_total{DeregisterTargets,OK}", s.get("ipsync_aws_api_calls_total", "operation=DeregisterTargets", "code=OK"),
		s.get("ipsync_aws_api_calls_total", "operation=DeregisterTargets", "code=OK") == 1)
	check("aws_api_calls_total{DescribeTargetGroups,OK}", s.get("ipsync_aws_api_calls_total", "operation=DescribeTargetGroups", "code=OK"),
		s.get("ipsync_aws_api_calls_total", "operation=DescribeTargetGroups", "code=OK") == 1)
	check("aws_api_calls_total{DescribeTargetHealth,OK}", s.get("ipsync_aws_api_calls_total", "operation=DescribeTargetHealth", "code=OK"),
		s.get("ipsync_aws_api_calls_total", "operation=DescribeTargetHealth", "code=OK") >= 3)
	for _, op := range []string{"RegisterTargets", "DeregisterTargets", "DescribeTargetHealth", "DescribeTargetGroups"} {
		n, sum := s.getSum("ipsync_aws_api_call_duration_seconds", "operation="+op)
		check("aws_api_call_duration_seconds{"+op+"} count (one per attempt)", n, n == s.get("ipsync_aws_api_calls_total", "operation="+op))
		check("aws_api_call_duration_seconds{"+op+"} mean", sum/n, sum > 0 && sum/n < 1)
	}
	n, sum = s.getSum("ipsync_convergence_seconds", o, "stage=registered")
	// The SDK's backoff after the throttle (up to 1 s) and a TTL of 1 s to see the change sit in it.
	check("convergence_seconds{registered}", sum, n == 1 && sum >= 0 && sum < 3)
	n, sum = s.getSum("ipsync_convergence_seconds", o, "stage=healthy")
	check("convergence_seconds{healthy}", sum, n == 1 && sum >= healthyAfter.Seconds() && sum <= elapsed)
	// Every ELBv2 Describe attempt waited for a token of the API budget, most of them not at all.
	n, sum = s.getSum("ipsync_aws_budget_wait_seconds", "budget=describe")
	check("aws_budget_wait_seconds{describe}", n, n >= 2 && sum >= 0)

	// Every family of the README's Metrics table, and nothing else under ipsync_.
	want := []string{"ipsync_build_info", "ipsync_sync_runs_total", "ipsync_sync_duration_seconds",
		"ipsync_last_success_timestamp_seconds", "ipsync_in_sync", "ipsync_resolved_addresses",
		"ipsync_address_changes_total", "ipsync_targets", "ipsync_registrations_total", "ipsync_deregistrations_total",
		"ipsync_dns_queries_total", "ipsync_dns_query_duration_seconds", "ipsync_aws_api_calls_total",
		"ipsync_aws_api_call_duration_seconds", "ipsync_convergence_seconds", "ipsync_dns_mode", "ipsync_dns_server_queries_total",
		"ipsync_aws_budget_wait_seconds", "ipsync_aws_budget_deferred_calls_total"}
	var got []string
	for name := range s.families {
		if strings.HasPrefix(name, "ipsync_") {
			got = append(got, name)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ipsync families %v, want %v", got, want)
	}

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready\norders: ok"} {
		resp, err := http.Get("http://" + p.listen + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != want {
			t.Errorf("%s: %s %q, want 200 %q", path, resp.Status, body, want)
		}
	}
}

// startPushgateway runs Debian's prometheus-pushgateway on a free loopback port, without persistence.
func startPushgateway(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-pushgateway")
	if err != nil {
		bin, err = exec.LookPath("pushgateway")
	}
	if err != nil {
		if os.Getenv("IPSYNC_REQUIRE_TOOLS") == "1" {
			t.Fatal("prometheus-pushgateway is required (apt-get install prometheus-pushgateway)")
		}
		t.Skip("prometheus-pushgateway not installed (apt-get install prometheus-pushgateway); IPSYNC_REQUIRE_TOOLS=1 makes this a failure")
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--persistence.file=")
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	testutil.StartProcess(t, cmd, func() { t.Logf("pushgateway output:\n%s", out.String()) })
	url := "http://" + addr
	testutil.Eventually(t, 10*time.Second, "the Pushgateway never became ready", func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// TestSyncPushesToPushgateway: `sync --pushgateway-url` (or IPSYNC_PUSHGATEWAY_URL) pushes the run's metrics;
// a failed run replaces the latest-run group but keeps the last success time; --dry-run pushes nothing; a bad
// or unreachable Pushgateway is exit 1.
func TestSyncPushesToPushgateway(t *testing.T) {
	pg := startPushgateway(t)
	w := newWorld(t, true)
	w.dns.SetA(endpoint, 1, "10.0.1.10")
	cfg := "IPSYNC_CONFIG=" + w.config("")

	if code, out := run(t, []string{cfg}, "sync", "--pushgateway-url", pg); code != 0 {
		t.Fatalf("sync --pushgateway-url: exit %d:\n%s", code, out)
	}
	s := scrapeURL(t, pg+"/metrics")
	job := "job=" + "ipsync-sync"
	if got := s.get("ipsync_sync_runs_total", job, "sync=orders", "result=changed"); got != 1 {
		t.Errorf("pushed sync_runs_total{result=changed} = %v, want 1\n%s", got, s.trimmed())
	}
	if got := s.get("ipsync_registrations_total", job, "sync=orders"); got != 1 {
		t.Errorf("pushed registrations_total = %v, want 1", got)
	}
	if got := s.get("ipsync_build_info", job); got != 1 {
		t.Errorf("pushed build_info = %v, want 1", got)
	}
	firstSuccess := s.get("ipsync_last_success_timestamp_seconds", job, "sync=orders")
	if time.Since(time.Unix(int64(firstSuccess), 0)) > time.Minute {
		t.Errorf("pushed last success time %v is not now", firstSuccess)
	}
	for name, mf := range s.families {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "job" && lp.GetValue() == "ipsync-sync" && !strings.HasPrefix(name, "ipsync_") && !strings.HasPrefix(name, "push_") {
					t.Errorf("pushed %s: only ipsync_* metrics belong in the Pushgateway", name)
				}
			}
		}
	}
	t.Logf("Pushgateway after a successful run:\n%s", s.trimmed())

	// A failed run, with the URL from the environment: the latest-run group shows the failure, the success
	// time stays.
	time.Sleep(1100 * time.Millisecond) // success times have a 1 s resolution
	w.dns.SetFault(dnstest.FaultServFail)
	if code, out := run(t, []string{cfg, "IPSYNC_PUSHGATEWAY_URL=" + pg}, "sync"); code != 1 {
		t.Fatalf("sync with DNS failing: exit %d, want 1:\n%s", code, out)
	}
	s = scrapeURL(t, pg+"/metrics")
	if got := s.get("ipsync_sync_runs_total", job, "sync=orders", "result=error"); got != 1 {
		t.Errorf("after the failed run, sync_runs_total{result=error} = %v, want 1", got)
	}
	if got := s.get("ipsync_sync_runs_total", job, "sync=orders", "result=changed"); got != 0 {
		t.Errorf("after the failed run, sync_runs_total{result=changed} = %v, want 0 (the group shows the latest run)", got)
	}
	if got := s.get("ipsync_dns_queries_total", job, "sync=orders", "result=servfail"); got < 1 {
		t.Errorf("after the failed run, dns_queries_total{result=servfail} = %v, want >= 1", got)
	}
	if got := s.get("ipsync_last_success_timestamp_seconds", job, "sync=orders"); got != firstSuccess {
		t.Errorf("a failed run changed the pushed success time: %v -> %v", firstSuccess, got)
	}

	// --dry-run pushes nothing.
	w.dns.SetFault(dnstest.FaultNone)
	pushTime := func() float64 { return scrapeURL(t, pg+"/metrics").get("push_time_seconds", job) }
	before := pushTime()
	if code, out := run(t, []string{cfg}, "sync", "--dry-run", "--pushgateway-url", pg); code != 0 {
		t.Fatalf("sync --dry-run: exit %d:\n%s", code, out)
	}
	if after := pushTime(); after != before {
		t.Errorf("--dry-run pushed: push_time_seconds %v -> %v", before, after)
	}

	// Exit 1 when the push fails, with the reason; a malformed URL is refused before any AWS call.
	dead := "http://" + freeAddr(t)
	code, out := run(t, []string{cfg}, "sync", "--pushgateway-url", dead)
	if code != 1 || !strings.Contains(out, "Pushgateway") || !strings.Contains(out, dead) {
		t.Errorf("sync pushing to a closed port: exit %d, want 1 naming the Pushgateway:\n%s", code, out)
	}
	w.fake.ResetCalls()
	code, out = run(t, []string{cfg}, "sync", "--pushgateway-url", "pushgateway:9091")
	if code != 1 || !strings.Contains(out, "--pushgateway-url") {
		t.Errorf("sync with a URL without scheme: exit %d, want 1 naming the flag:\n%s", code, out)
	}
	if calls := w.fake.Calls(); len(calls) != 0 {
		t.Errorf("a malformed --pushgateway-url still made AWS calls: %v", calls)
	}
}
