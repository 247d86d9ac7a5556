package lambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/discover"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/lambda"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

// The event fixtures are shared with the end-to-end test of the built bootstrap.
var fixtures = filepath.Join("..", "..", "cmd", "ipsync", "testdata")

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	ordersEndpoint  = "orders.c9abc.us-east-1.rds.test"                  // instance endpoint: DB "orders"
	reportsEndpoint = "reports-cluster.cluster-c9abc.us-east-1.rds.test" // cluster endpoint: DB "reports-cluster"
)

type world struct {
	t               *testing.T
	dns             *dnstest.Server
	fake            *elbv2fake.Server
	orders, reports string           // target group ARNs
	metrics         *testutil.Buffer // the EMF output
	h               *lambda.Handler
}

func newWorld(t *testing.T, window time.Duration) *world {
	fake, dns := awstest.Fake(t, elbv2fake.Options{}).Fake, dnstest.Start(t)
	w := &world{t: t, dns: dns, fake: fake, metrics: &testutil.Buffer{},
		orders: awstest.NewTargetGroup(t, 5432).ARN, reports: awstest.NewTargetGroup(t, 5432).ARN}
	dns.SetA(ordersEndpoint, 1, "10.0.1.10")
	dns.SetA("reports-1.c9abc.us-east-1.rds.test", 1, "10.0.5.50")
	dns.SetA("reports-2.c9abc.us-east-1.rds.test", 1, "10.0.6.60")
	dns.SetCNAME(reportsEndpoint, 1, "reports-1.c9abc.us-east-1.rds.test")

	cfg := config.Defaults()
	orders, reports := config.DefaultSync(), config.DefaultSync()
	orders.Name, orders.Endpoint, orders.TargetGroupARN = "orders", ordersEndpoint, w.orders
	reports.Name, reports.Endpoint, reports.TargetGroupARN = "reports", reportsEndpoint, w.reports
	cfg.Syncs = []config.Sync{orders, reports}
	cfg.DNS.Servers = []string{dns.Addr()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := resolver.New(resolver.Config{Servers: cfg.DNS.Servers, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	factory, err := targets.NewFactory(context.Background(), targets.FactoryOptions{MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	w.h = lambda.New(lambda.Options{Config: cfg, Resolver: res, Clients: engine.FromFactory(factory),
		Metrics: w.metrics, Window: window, Interval: 100 * time.Millisecond})
	fake.ResetCalls() // the fixtures' CreateVpc and CreateTargetGroup
	return w
}

func (w *world) invoke(payload []byte) (map[string]any, error) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := w.h.Invoke(ctx, payload)
	if err != nil {
		return nil, err
	}
	var resp map[string]any
	if err := json.Unmarshal(out, &resp); err != nil {
		w.t.Fatalf("response is not JSON: %v: %s", err, out)
	}
	return resp, nil
}

func (w *world) mustInvoke(payload []byte) map[string]any {
	w.t.Helper()
	resp, err := w.invoke(payload)
	if err != nil {
		w.t.Fatalf("invocation failed: %v", err)
	}
	return resp
}

func (w *world) live(arn string) []string {
	var out []string
	for _, ts := range w.fake.Targets(arn) {
		if ts.State != "draining" {
			out = append(out, ts.IP.String())
		}
	}
	slices.Sort(out)
	return out
}

func syncsOf(t *testing.T, resp map[string]any) []map[string]any {
	t.Helper()
	list, ok := resp["syncs"].([]any)
	if !ok {
		t.Fatalf("response has no syncs list: %v", resp)
	}
	out := make([]map[string]any, len(list))
	for i, s := range list {
		out[i] = s.(map[string]any)
	}
	return out
}

func callsOf(fake *elbv2fake.Server, action, arn string) int {
	n := 0
	for _, c := range fake.Calls() {
		if (action == "" || c.Action == action) && (arn == "" || c.Params.Get("TargetGroupArn") == arn || c.Params.Get("TargetGroupArns.member.1") == arn) {
			n++
		}
	}
	return n
}

func TestScheduledEventOnePass(t *testing.T) {
	w := newWorld(t, 10*time.Second)
	resp := w.mustInvoke(fixture(t, "lambda-scheduled.json"))
	syncs := syncsOf(t, resp)
	if resp["event"] != "scheduled" || len(syncs) != 2 || syncs[0]["result"] != "changed" || syncs[1]["result"] != "changed" {
		t.Fatalf("scheduled pass: %v", resp)
	}
	if got := w.live(w.orders); !slices.Equal(got, []string{"10.0.1.10"}) {
		t.Fatalf("orders' group: %v", got)
	}
	// The second pass reuses the engine built for the execution environment: in sync, no describe of the groups.
	resp = w.mustInvoke(fixture(t, "lambda-scheduled.json"))
	if s := syncsOf(t, resp); s[0]["result"] != "unchanged" || s[0]["in_sync"] != true {
		t.Fatalf("second scheduled pass: %v", resp)
	}
	if n := callsOf(w.fake, "DescribeTargetGroups", w.orders); n != 1 {
		t.Fatalf("DescribeTargetGroups for orders %d times over two invocations: the engine must be reused", n)
	}
	if lines := w.metrics.Lines(); len(lines) != 4 {
		t.Fatalf("want one EMF line per mapping per invocation, got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// TestScheduledPassSettles: a scheduled pass that sees a new address also removes the old one before it answers
// (deregister_after resolutions, a TTL apart), since the next invocation may find a new execution environment.
func TestScheduledPassSettles(t *testing.T) {
	w := newWorld(t, 10*time.Second)
	w.mustInvoke(fixture(t, "lambda-scheduled.json"))
	w.dns.SetA(ordersEndpoint, 1, "10.0.2.20")
	s := syncsOf(t, w.mustInvoke(fixture(t, "lambda-scheduled.json")))
	reg, _ := s[0]["registered"].([]any)
	dereg, _ := s[0]["deregistered"].([]any)
	if s[0]["result"] != "changed" || len(reg) != 1 || len(dereg) != 1 || dereg[0].(map[string]any)["ip"] != "10.0.1.10" {
		t.Fatalf("scheduled pass after a failover: %v", s[0])
	}
	if got := w.live(w.orders); !slices.Equal(got, []string{"10.0.2.20"}) {
		t.Fatalf("orders' group: %v", got)
	}
}

// TestFailoverEventWatchesLateDNS: the RDS event comes before DNS changes; the handler resolves until it
// changes, syncs it and answers; the cluster's mapping is not touched.
func TestFailoverEventWatchesLateDNS(t *testing.T) {
	w := newWorld(t, 10*time.Second)
	w.mustInvoke(fixture(t, "lambda-scheduled.json"))
	w.fake.ResetCalls()

	change := 700 * time.Millisecond
	timer := time.AfterFunc(change, func() { w.dns.SetA(ordersEndpoint, 1, "10.0.2.20") })
	defer timer.Stop()
	start := time.Now()
	resp := w.mustInvoke(fixture(t, "lambda-rds-instance-0049.json"))
	took := time.Since(start)

	syncs := syncsOf(t, resp)
	if resp["event"] != "rds" || resp["event_id"] != "RDS-EVENT-0049" || resp["db_identifier"] != "orders" || resp["watched"] != true {
		t.Fatalf("response: %v", resp)
	}
	if len(syncs) != 1 || syncs[0]["sync"] != "orders" || syncs[0]["settled"] != true || syncs[0]["address_changed"] != true {
		t.Fatalf("want orders watched and settled: %v", syncs)
	}
	if took < change || took > change+3*time.Second {
		t.Fatalf("the invocation took %v; want it to end soon after the DNS change at %v", took, change)
	}
	if got := w.live(w.orders); !slices.Equal(got, []string{"10.0.2.20"}) {
		t.Fatalf("orders' group after the failover: %v", got)
	}
	if n := len(w.fake.Calls()) - callsOf(w.fake, "", w.orders); n != 0 {
		t.Fatalf("%d calls for other groups: the cluster's mapping must not be touched by an instance event", n)
	}
}

// TestFailoverWatchAuthoritative: with dns.mode authoritative, the failover watch asks the endpoint's zone's name
// servers every poll.min. They publish the new address under a one-day TTL while the recursive server (a VPC's
// resolver with the old answer cached) never changes: only authoritative mode can see the failover.
func TestFailoverWatchAuthoritative(t *testing.T) {
	d, err := dnstest.NewDelegation("us-east-1.rds.test.", "c9abc.us-east-1.rds.test.", 2, 86400)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	d.SetA(ordersEndpoint, 86400, "10.0.1.10")
	d.Recursive.SetA(ordersEndpoint, 86400, "10.0.1.10")
	fake := awstest.Fake(t, elbv2fake.Options{}).Fake
	arn := awstest.NewTargetGroup(t, 5432).ARN

	cfg := config.Defaults()
	orders := config.DefaultSync()
	orders.Name, orders.Endpoint, orders.TargetGroupARN = "orders", ordersEndpoint, arn
	cfg.Syncs = []config.Sync{orders}
	cfg.DNS.Mode, cfg.DNS.Servers, cfg.DNS.Timeout = config.DNSModeAuthoritative, []string{d.Recursive.Addr()}, 300*time.Millisecond
	cfg.Poll.Min = 250 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := engine.NewResolver(cfg, nil, d.Addrs.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	factory, err := targets.NewFactory(context.Background(), targets.FactoryOptions{MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, fake: fake, orders: arn, metrics: &testutil.Buffer{}}
	w.h = lambda.New(lambda.Options{Config: cfg, Resolver: res, Clients: engine.FromFactory(factory), Metrics: w.metrics, Window: 10 * time.Second})
	w.mustInvoke(fixture(t, "lambda-scheduled.json"))
	if got := w.live(arn); !slices.Equal(got, []string{"10.0.1.10"}) {
		t.Fatalf("after the scheduled pass: %v", got)
	}

	timer := time.AfterFunc(700*time.Millisecond, func() { d.SetA(ordersEndpoint, 86400, "10.0.2.20") })
	defer timer.Stop()
	resp := w.mustInvoke(fixture(t, "lambda-rds-instance-0049.json"))
	syncs := syncsOf(t, resp)
	if len(syncs) != 1 || syncs[0]["settled"] != true || syncs[0]["address_changed"] != true || syncs[0]["dns_mode"] != "authoritative" {
		t.Fatalf("want orders watched in authoritative mode and settled: %v", syncs)
	}
	if got := w.live(arn); !slices.Equal(got, []string{"10.0.2.20"}) {
		t.Fatalf("orders' group after the failover: %v", got)
	}
}

// TestClusterEventDNSAlreadyChanged: the event comes after DNS changed; the first pass catches up.
func TestClusterEventDNSAlreadyChanged(t *testing.T) {
	w := newWorld(t, 10*time.Second)
	w.mustInvoke(fixture(t, "lambda-scheduled.json"))
	w.dns.SetCNAME(reportsEndpoint, 1, "reports-2.c9abc.us-east-1.rds.test")
	resp := w.mustInvoke(fixture(t, "lambda-rds-cluster-0071.json"))
	syncs := syncsOf(t, resp)
	if len(syncs) != 1 || syncs[0]["sync"] != "reports" || syncs[0]["settled"] != true || resp["db_identifier"] != "reports-cluster" {
		t.Fatalf("cluster event: %v", resp)
	}
	if got := w.live(w.reports); !slices.Equal(got, []string{"10.0.6.60"}) {
		t.Fatalf("reports' group: %v", got)
	}
}

func TestDirectDryRun(t *testing.T) {
	w := newWorld(t, 10*time.Second)
	resp := w.mustInvoke(fixture(t, "lambda-direct-dry-run.json"))
	syncs := syncsOf(t, resp)
	if resp["event"] != "direct" || resp["dry_run"] != true || len(syncs) != 1 || syncs[0]["sync"] != "orders" {
		t.Fatalf("dry run: %v", resp)
	}
	reg, _ := syncs[0]["registered"].([]any)
	if len(reg) != 1 || reg[0].(map[string]any)["ip"] != "10.0.1.10" || syncs[0]["dry_run"] != true {
		t.Fatalf("the dry run must report what it would register: %v", syncs[0])
	}
	if muts := w.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: a dry run made mutating calls: %v", muts)
	}
	if lines := w.metrics.Lines(); len(lines) != 1 || lines[0] != "" {
		t.Fatalf("a dry run changes nothing and counts nothing; EMF lines: %q", lines)
	}
	// The same invocation for real, for all mappings.
	resp = w.mustInvoke([]byte(`{}`))
	if s := syncsOf(t, resp); len(s) != 2 || s[0]["result"] != "changed" {
		t.Fatalf("direct invocation {}: %v", resp)
	}
}

// refused invokes the handler with payload and checks that it is refused with an *lambda.EventError saying want.
func (w *world) refused(name, payload string, want ...string) {
	w.t.Helper()
	_, err := w.invoke([]byte(payload))
	var ee *lambda.EventError
	if !errors.As(err, &ee) {
		w.t.Errorf("%s: error %v (%T), want *lambda.EventError", name, err, err)
		return
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			w.t.Errorf("%s: error %q does not say %q", name, err, s)
		}
	}
}

func TestBadEvents(t *testing.T) {
	w := newWorld(t, 10*time.Second)
	for _, tc := range []struct {
		name, payload string
		want          []string
	}{
		{"S3 notification", string(fixture(t, "lambda-bad-event.json")), []string{`keys ["Records"]`, "ipsync serves"}},
		{"not JSON", `hello`, []string{"not a JSON object", `"hello"`}},
		{"array", `[1]`, []string{"not a JSON object"}},
		{"typo", `{"dry-run": true}`, []string{`keys ["dry-run"]`, `"dry_run"`}},
		{"wrong type", `{"dry_run": "yes"}`, []string{"malformed", "dry_run"}},
		{"other source", `{"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}`,
			[]string{`source "aws.ec2"`, `detail-type "EC2 Instance State-change Notification"`}},
		{"RDS without ID", `{"source": "aws.rds", "detail-type": "RDS DB Instance Event", "detail": {"SourceIdentifier": "orders"}}`,
			[]string{"detail.EventID"}},
		{"unknown sync", `{"syncs": ["orders", "billing"]}`, []string{`["billing"]`, `["orders" "reports"]`}},
	} {
		w.refused(tc.name, tc.payload, tc.want...)
	}
	if calls := w.fake.Calls(); len(calls) != 0 {
		t.Fatalf("bad events made AWS calls: %v", calls)
	}
}

// TestAmbiguousDryRunRefused (issue 9 item 3): a payload whose dry-run setting is unclear — null, a key given
// twice, dry_run on an EventBridge event that does not read it — is refused, never served live (I8).
func TestAmbiguousDryRunRefused(t *testing.T) {
	w := newWorld(t, time.Second) // the RDS failover event at the end watches for the window
	scheduled := strings.TrimSpace(string(fixture(t, "lambda-scheduled.json")))
	rds := strings.TrimSpace(string(fixture(t, "lambda-rds-instance-0049.json")))
	withKey := func(event, kv string) string { return strings.TrimSuffix(event, "}") + ", " + kv + "}" }
	for _, tc := range []struct {
		name, payload string
		want          []string
	}{
		{"null", `{"dry_run": null}`, []string{`"dry_run" is null`}},
		{"null syncs", `{"syncs": null, "dry_run": true}`, []string{`"syncs" is null`}},
		{"duplicate, last false", `{"dry_run": true, "dry_run": false}`, []string{`"dry_run" twice`}},
		{"duplicate, last true", `{"dry_run": false, "dry_run": true}`, []string{`"dry_run" twice`}},
		{"duplicate, nested", `{"syncs": ["orders"], "dry_run": true, "x": {"a": 1, "a": 2}}`, []string{`"a" twice`}},
		{"scheduled with dry_run", withKey(scheduled, `"dry_run": true`), []string{`key "dry_run"`, "EventBridge"}},
		{"scheduled with dry_run in detail", strings.Replace(scheduled, `"detail": {}`, `"detail": {"dry_run": true}`, 1),
			[]string{"detail", "dry_run"}},
		{"RDS event with dry_run", withKey(rds, `"dry_run": true`), []string{`key "dry_run"`}},
		{"RDS event with dry_run in detail", strings.Replace(rds, `"EventID": "RDS-EVENT-0049"`, `"EventID": "RDS-EVENT-0049", "dry_run": true`, 1),
			[]string{"detail", "dry_run"}},
		{"duplicate source", strings.Replace(scheduled, `"source": "aws.events",`, `"source": "aws.events", "source": "aws.rds",`, 1),
			[]string{`"source" twice`}},
	} {
		w.refused(tc.name, tc.payload, tc.want...)
	}
	if muts := w.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: ambiguous dry-run payloads made mutating calls: %v", muts)
	}
	// The unambiguous forms still work.
	if resp := w.mustInvoke([]byte(`{"dry_run": true}`)); resp["dry_run"] != true {
		t.Fatalf(`{"dry_run": true}: %v`, resp)
	}
	if resp := w.mustInvoke(fixture(t, "lambda-rds-instance-0049.json")); resp["event"] != "rds" {
		t.Fatalf("RDS event: %v", resp)
	}
}

// TestFailedPass: an event invocation whose pass fails is a function error naming the mapping (the Errors
// alarm); a direct invocation returns the report with the error.
func TestFailedPass(t *testing.T) {
	w := newWorld(t, 10*time.Second)
	w.dns.SetFault(dnstest.FaultServFail)
	_, err := w.invoke(fixture(t, "lambda-scheduled.json"))
	var se *lambda.SyncError
	if !errors.As(err, &se) || len(se.Problems) != 2 || !strings.Contains(err.Error(), "orders: resolving") || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Fatalf("scheduled pass with DNS failing: %v", err)
	}
	resp := w.mustInvoke([]byte(`{"syncs": ["orders"]}`))
	if s := syncsOf(t, resp); s[0]["result"] != "error" || !strings.Contains(s[0]["error"].(string), "SERVFAIL") {
		t.Fatalf("direct invocation with DNS failing: %v", resp)
	}
	if muts := w.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I1: mutating calls with DNS failing: %v", muts)
	}
	for _, l := range w.metrics.Lines() {
		if !strings.Contains(l, `"SyncErrors":1`) || strings.Contains(l, "InSync") {
			t.Fatalf("EMF line for a failed pass: %s (want SyncErrors 1 and no InSync)", l)
		}
	}
}

// TestWindowCappedByDeadline: the watch ends in time for the invocation to answer before its deadline.
func TestWindowCappedByDeadline(t *testing.T) {
	w := newWorld(t, time.Hour)
	w.mustInvoke(fixture(t, "lambda-scheduled.json"))
	ctx, cancel := context.WithTimeout(context.Background(), lambda.DeadlineMargin+1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, err := w.h.Invoke(ctx, fixture(t, "lambda-rds-instance-0049.json"))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("watch took %v: the window must be capped at the remaining time minus %v", took, lambda.DeadlineMargin)
	}
	if !strings.Contains(string(out), `"window_seconds":1`) || !strings.Contains(string(out), `"settled":false`) {
		t.Fatalf("response: %s", out)
	}
}

func TestRDSEventsOtherDatabaseOrNotFailover(t *testing.T) {
	w := newWorld(t, 10*time.Second)
	other := bytes.ReplaceAll(fixture(t, "lambda-rds-instance-0049.json"), []byte("orders"), []byte("billing"))
	resp := w.mustInvoke(other)
	if s := syncsOf(t, resp); len(s) != 0 || !strings.Contains(resp["note"].(string), `"billing"`) {
		t.Fatalf("event for a database no mapping follows: %v", resp)
	}
	if calls := w.fake.Calls(); len(calls) != 0 {
		t.Fatalf("calls for another database's event: %v", calls)
	}
	// RDS-EVENT-0006 (instance restarted) is not a failover: one pass, no watch.
	restart := bytes.ReplaceAll(fixture(t, "lambda-rds-instance-0049.json"), []byte("RDS-EVENT-0049"), []byte("RDS-EVENT-0006"))
	resp = w.mustInvoke(restart)
	if s := syncsOf(t, resp); len(s) != 1 || s[0]["sync"] != "orders" || resp["watched"] != nil {
		t.Fatalf("non-failover RDS event: %v", resp)
	}
}

func TestDBIdentifierOfEvents(t *testing.T) {
	for _, tc := range []struct {
		detail lambda.RDSDetail
		want   string
	}{
		{lambda.RDSDetail{SourceArn: "arn:aws:rds:us-east-1:123456789012:db:orders", SourceIdentifier: "rds:orders"}, "orders"},
		{lambda.RDSDetail{SourceArn: "arn:aws:rds:us-east-1:123456789012:cluster:Reports-Cluster"}, "reports-cluster"},
		{lambda.RDSDetail{SourceIdentifier: "rds:orders"}, "orders"}, // AWS's documented examples
		{lambda.RDSDetail{SourceIdentifier: "orders"}, "orders"},     // real events
		{lambda.RDSDetail{SourceArn: "not an arn", SourceIdentifier: "orders"}, "orders"},
	} {
		if got := tc.detail.DBIdentifier(); got != tc.want {
			t.Errorf("%+v: DBIdentifier() = %q, want %q", tc.detail, got, tc.want)
		}
	}
	ids := lambda.FailoverEventIDs()
	if len(ids) != 11 || !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatalf("FailoverEventIDs() = %q: want the eleven RDS failover events, sorted, distinct", ids)
	}
}

// TestScheduledDiscovery: with discover:, a scheduled event searches for tagged target groups, at most once per
// discover.interval in one execution environment, and runs what it found beside syncs:.
func TestScheduledDiscovery(t *testing.T) {
	w := newWorld(t, time.Second)
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.fake.SetTags(w.reports, map[string]string{"ipsync:endpoint": reportsEndpoint}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	orders := config.DefaultSync()
	orders.Name, orders.Endpoint, orders.TargetGroupARN = "orders", ordersEndpoint, w.orders
	cfg.Syncs = []config.Sync{orders}
	cfg.DNS.Servers = []string{w.dns.Addr()}
	cfg.Discover = config.Discover{TagKey: "ipsync:endpoint", Regions: []string{"us-east-1"}, Interval: time.Hour}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := resolver.New(resolver.Config{Servers: cfg.DNS.Servers, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	factory := targets.NewFactoryFromConfig(awsCfg, targets.FactoryOptions{})
	w.h = lambda.New(lambda.Options{Config: cfg, Resolver: res, Clients: engine.FromFactory(factory),
		Discoverer: discover.New(cfg.Discover, discover.NewAWSClients(awsCfg, ""), discover.Options{})})

	scheduled := fixture(t, "lambda-scheduled.json")
	for range 2 {
		if resp := w.mustInvoke(scheduled); len(syncsOf(t, resp)) != 2 {
			t.Fatalf("a scheduled pass must run the static and the discovered mapping: %v", resp)
		}
	}
	if got := w.live(w.reports); !slices.Equal(got, []string{"10.0.5.50"}) {
		t.Fatalf("discovered group: %v, want [10.0.5.50]", got)
	}
	searches := 0
	for _, c := range w.fake.Calls() {
		if c.Action == "GetResources" {
			searches++
		}
	}
	if searches != 1 {
		t.Fatalf("%d searches for two scheduled events within discover.interval, want 1", searches)
	}
}
