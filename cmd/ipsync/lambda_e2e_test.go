package main_test

// The Lambda function end to end: the binary built as Lambda builds it (`bootstrap`, linux, -tags lambda.norpc,nodemo,
// static), run as the Lambda service runs it — with AWS_LAMBDA_RUNTIME_API pointing at a test server that
// implements the Runtime API — against the loopback DNS server and moto. Every AWS call the process makes goes
// through a recording proxy; the operations it saw are the IAM actions ipsync needs (testdata/aws-operations.txt,
// which deploy/'s template test holds the IAM policies to).

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

var updateOperations = flag.Bool("update", false, "rewrite testdata/aws-operations.txt from the AWS calls TestLambdaRuntimeAPI records")

const operationsFile = "testdata/aws-operations.txt"

// ---- the Lambda Runtime API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) ----

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
}

// invokeResult is what the function posted for one invocation.
type invokeResult struct {
	ok        bool   // /response (true) or /error
	body      []byte // the response, or the error document {"errorMessage", "errorType"}
	errorType string
	at        time.Time
}

// runtimeAPI serves GET .../invocation/next (long poll), POST .../invocation/{id}/response and .../error, and
// .../init/error, as the Lambda service does for one execution environment.
type runtimeAPI struct {
	srv        *httptest.Server
	pending    chan invocation
	seq        atomic.Int64
	nextCalls  atomic.Int64
	mu         sync.Mutex
	results    map[string]chan invokeResult
	initErrors []string
}

func newRuntimeAPI(t *testing.T) *runtimeAPI {
	r := &runtimeAPI{pending: make(chan invocation), results: map[string]chan invokeResult{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", r.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, true)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, req *http.Request) {
		r.finish(w, req, false)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.initErrors = append(r.initErrors, string(body))
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// addr is AWS_LAMBDA_RUNTIME_API: host:port, no scheme.
func (r *runtimeAPI) addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

func (r *runtimeAPI) next(w http.ResponseWriter, req *http.Request) {
	r.nextCalls.Add(1)
	select {
	case inv := <-r.pending:
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:ipsync")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(inv.payload)
	case <-req.Context().Done():
	}
}

func (r *runtimeAPI) finish(w http.ResponseWriter, req *http.Request, ok bool) {
	body, _ := io.ReadAll(req.Body)
	res := invokeResult{ok: ok, body: body, at: time.Now()}
	if !ok {
		var doc struct {
			ErrorType string `json:"errorType"`
		}
		_ = json.Unmarshal(body, &doc)
		res.errorType = doc.ErrorType
	}
	r.mu.Lock()
	ch := r.results[req.PathValue("id")]
	r.mu.Unlock()
	if ch == nil {
		http.Error(w, "unknown request id", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	ch <- res
}

// invoke hands the function one event, as an asynchronous EventBridge or synchronous direct invocation would,
// with Lambda's deadline header set timeout ahead, and waits for its answer.
func (r *runtimeAPI) invoke(t *testing.T, payload []byte, timeout time.Duration) invokeResult {
	t.Helper()
	inv := invocation{id: fmt.Sprintf("req-%d", r.seq.Add(1)), payload: payload, deadline: time.Now().Add(timeout)}
	ch := make(chan invokeResult, 1)
	r.mu.Lock()
	r.results[inv.id] = ch
	r.mu.Unlock()
	select {
	case r.pending <- inv:
	case <-time.After(30 * time.Second):
		t.Fatal("the function did not ask for the next invocation within 30 s")
	}
	select {
	case res := <-ch:
		return res
	case <-time.After(timeout + 10*time.Second):
		t.Fatalf("no answer to invocation %s within its %v deadline", inv.id, timeout)
		return invokeResult{}
	}
}

// ---- the recording proxy in front of moto ----

type awsCall struct {
	at          time.Time
	op          string // IAM action: signing service ":" operation
	targetGroup string
}

type awsRecorder struct {
	url   string
	mu    sync.Mutex
	calls []awsCall
}

// newAWSRecorder proxies to the emulator at upstream. The IAM action of a request is its SigV4 signing service
// (the credential scope's fourth part: elasticloadbalancing, ec2, sts — the IAM prefixes of these services) and
// its operation (the Action of an awsQuery/ec2Query form, or X-Amz-Target for JSON protocols).
func newAWSRecorder(t *testing.T, upstream string) *awsRecorder {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rec := &awsRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		op := form.Get("Action")
		if target := r.Header.Get("X-Amz-Target"); op == "" && target != "" {
			op = target[strings.LastIndexByte(target, '.')+1:]
		}
		service := "unsigned"
		if _, scope, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
			if parts := strings.Split(strings.SplitN(scope, ",", 2)[0], "/"); len(parts) >= 4 {
				service = parts[3]
			}
		}
		if service == "tagging" { // the Resource Groups Tagging API signs as "tagging"; its IAM prefix is "tag"
			service = "tag"
		}
		tg := form.Get("TargetGroupArn")
		if tg == "" {
			tg = form.Get("TargetGroupArns.member.1")
		}
		rec.mu.Lock()
		rec.calls = append(rec.calls, awsCall{at: time.Now(), op: service + ":" + op, targetGroup: tg})
		rec.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL
	return rec
}

func (r *awsRecorder) mark() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.calls) }

// since returns the calls from mark on.
func (r *awsRecorder) since(mark int) []awsCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls[mark:])
}

func count(calls []awsCall, op, targetGroup string) int {
	n := 0
	for _, c := range calls {
		if c.op == op && (targetGroup == "" || c.targetGroup == targetGroup) {
			n++
		}
	}
	return n
}

func operations(calls []awsCall) []string {
	var ops []string
	for _, c := range calls {
		ops = append(ops, c.op)
	}
	slices.Sort(ops)
	return slices.Compact(ops)
}

// ---- the function ----

// buildBootstrap builds the binary the way `make lambda` does, for this machine's architecture so it can run
// here (Lambda's is arm64; the code is the same), and checks that it is static as provided.al2023 needs and
// carries no demo.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc,nodemo", "-trimpath", "-o", out, ".")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building bootstrap: %v\n%s", err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	if f.Section(".interp") != nil || len(libs) > 0 {
		t.Fatalf("bootstrap is dynamically linked (interpreter or libraries %v); build it with CGO_ENABLED=0", libs)
	}
	// nodemo leaves the demo and its test doubles out; the command says where to find it (a demo would run on).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	demo := exec.CommandContext(ctx, out, "demo")
	demo.Stderr = &stderr
	if err := demo.Run(); demo.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "go run ./cmd/ipsync demo") {
		t.Fatalf("bootstrap demo: %v, stderr %q; want exit 1 pointing at go run ./cmd/ipsync demo", err, stderr.String())
	}
	return out
}

type function struct {
	cmd            *exec.Cmd
	stdout, stderr *testutil.Buffer
	done           <-chan struct{} // closed when the process has exited
}

// startFunction starts bootstrap as Lambda's provided.al2023 runtime does: no arguments, the function's
// environment variables, and AWS_LAMBDA_RUNTIME_API.
func startFunction(t *testing.T, bootstrap string, rt *runtimeAPI, env ...string) *function {
	t.Helper()
	f := &function{stdout: &testutil.Buffer{}, stderr: &testutil.Buffer{}}
	f.cmd = exec.Command(bootstrap)
	f.cmd.Env = childEnv(
		"AWS_LAMBDA_RUNTIME_API="+rt.addr(),
		"AWS_LAMBDA_FUNCTION_NAME=ipsync",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"_HANDLER=bootstrap",
	)
	f.cmd.Env = append(f.cmd.Env, env...)
	f.cmd.Stdout, f.cmd.Stderr = f.stdout, f.stderr
	f.done = testutil.StartProcess(t, f.cmd, func() {
		t.Logf("function stderr:\n%s\nfunction stdout:\n%s", f.stderr.String(), f.stdout.String())
	})
	return f
}

// initFails starts a function with env and checks that it fails init: it exits 1, saying want, before asking
// for an invocation.
func initFails(t *testing.T, bootstrap, want string, env ...string) {
	t.Helper()
	rt := newRuntimeAPI(t)
	f := startFunction(t, bootstrap, rt, env...)
	select {
	case <-f.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%q: the function did not fail init", env)
	}
	if code := f.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(f.stderr.String(), want) || rt.nextCalls.Load() != 0 {
		t.Fatalf("%q: exit %d, %d calls to next, want 1 and 0 and %q in stderr:\n%s", env, code, rt.nextCalls.Load(), want, f.stderr.String())
	}
}

func (f *function) running() bool {
	select {
	case <-f.done:
		return false
	default:
		return true
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lambdaResponse is the part of the handler's answer the test reads.
type lambdaResponse struct {
	Event   string `json:"event"`
	Watched bool   `json:"watched"`
	DryRun  bool   `json:"dry_run"`
	Syncs   []struct {
		Sync           string                       `json:"sync"`
		Result         string                       `json:"result"`
		InSync         bool                         `json:"in_sync"`
		Settled        bool                         `json:"settled"`
		AddressChanged bool                         `json:"address_changed"`
		Passes         int                          `json:"passes"`
		Registered     []struct{ IP string }        `json:"registered"`
		Deregistered   []struct{ IP string }        `json:"deregistered"`
		Waiting        []string                     `json:"waiting"`
		Error          string                       `json:"error"`
		Targets        []struct{ IP, State string } `json:"targets"`
	} `json:"syncs"`
}

func decodeResponse(t *testing.T, what string, res invokeResult) lambdaResponse {
	t.Helper()
	if !res.ok {
		t.Fatalf("%s: the function answered an error: %s", what, res.body)
	}
	var r lambdaResponse
	if err := json.Unmarshal(res.body, &r); err != nil {
		t.Fatalf("%s: the response is not the handler's JSON: %v: %s", what, err, res.body)
	}
	return r
}

func ips(list []struct{ IP string }) []string {
	var out []string
	for _, x := range list {
		out = append(out, x.IP)
	}
	return out
}

// TestLambdaRuntimeAPI runs one execution environment through its life: a bad configuration fails init; then
// a scheduled pass, a dry-run direct invocation, an RDS instance failover event whose DNS change comes 5 s
// after it, an Aurora cluster failover event (cross-account role) whose DNS changed before it, bad events, and
// a final scheduled pass — all served by one process that built its clients once.
func TestLambdaRuntimeAPI(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bootstrap is a linux binary")
	}
	bootstrap := buildBootstrap(t)

	// A configuration error is an init failure: the process exits before asking for an invocation.
	initFails(t, bootstrap, "target_group_arn", "IPSYNC_CONFIG=syncs:\n  - endpoint: x\n")

	rec := newAWSRecorder(t, awstest.Moto(t).URL)
	dns := dnstest.Start(t)
	orders, reports := awstest.NewTargetGroup(t, 5432), awstest.NewTargetGroup(t, 5432)
	const reportsEndpoint = "reports-cluster.cluster-c9abc.us-east-1.rds.test"
	dns.SetA(endpoint, 1, "10.0.1.10")
	dns.SetA("reports-1.c9abc.us-east-1.rds.test", 1, "10.0.5.50")
	dns.SetA("reports-2.c9abc.us-east-1.rds.test", 1, "10.0.6.60")
	dns.SetCNAME(reportsEndpoint, 1, "reports-1.c9abc.us-east-1.rds.test")
	cfg := fmt.Sprintf(`syncs:
  - name: orders
    endpoint: %s
    target_group_arn: %s
  - name: reports
    endpoint: %s
    target_group_arn: %s
    role_arn: arn:aws:iam::123456789012:role/ipsync-reports
dns: {servers: [%q], timeout: 500ms}
`, endpoint, orders.ARN, reportsEndpoint, reports.ARN, dns.Addr())
	factory, err := targets.NewFactory(context.Background(), targets.FactoryOptions{}) // straight to moto
	if err != nil {
		t.Fatal(err)
	}
	// live reads a group behind the function's back: its registered, non-draining addresses.
	live := func(arn string) []string {
		t.Helper()
		c, err := factory.For(context.Background(), arn, "")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ip := range awstest.LiveAddrs(t, c, arn) {
			out = append(out, ip.String())
		}
		slices.Sort(out)
		return out
	}

	rt := newRuntimeAPI(t)
	fn := startFunction(t, bootstrap, rt, "IPSYNC_CONFIG="+cfg, "AWS_ENDPOINT_URL="+rec.url)

	// 1. Scheduled event: one pass over every mapping.
	r := decodeResponse(t, "scheduled", rt.invoke(t, readFixture(t, "lambda-scheduled.json"), 30*time.Second))
	if r.Event != "scheduled" || len(r.Syncs) != 2 || r.Syncs[0].Result != "changed" || r.Syncs[1].Result != "changed" {
		t.Fatalf("scheduled pass: %+v", r)
	}
	if got := live(orders.ARN); !slices.Equal(got, []string{"10.0.1.10"}) {
		t.Fatalf("orders after the scheduled pass: %v", got)
	}
	if got := live(reports.ARN); !slices.Equal(got, []string{"10.0.5.50"}) {
		t.Fatalf("reports after the scheduled pass: %v", got)
	}

	// 2. Direct dry-run invocation while DNS says something new: the plan comes back, nothing changes (I8).
	dns.SetA(endpoint, 1, "10.0.2.20")
	time.Sleep(time.Second) // the query budget: one query per name per poll.min (1 s), shared by every invocation
	mark := rec.mark()
	r = decodeResponse(t, "dry run", rt.invoke(t, readFixture(t, "lambda-direct-dry-run.json"), 30*time.Second))
	if !r.DryRun || len(r.Syncs) != 1 || r.Syncs[0].Sync != "orders" || !slices.Equal(ips(r.Syncs[0].Registered), []string{"10.0.2.20"}) ||
		!slices.Equal(ips(r.Syncs[0].Deregistered), []string{"10.0.1.10"}) {
		t.Fatalf("dry run: %+v", r)
	}
	if n := count(rec.since(mark), "elasticloadbalancing:RegisterTargets", "") + count(rec.since(mark), "elasticloadbalancing:DeregisterTargets", ""); n != 0 {
		t.Fatalf("I8: the dry-run invocation made %d mutating calls", n)
	}
	if got := live(orders.ARN); !slices.Equal(got, []string{"10.0.1.10"}) {
		t.Fatalf("the dry run changed the group: %v", got)
	}
	dns.SetA(endpoint, 1, "10.0.1.10")
	time.Sleep(time.Second) // the watch's first pass must not get the dry run's answer (query budget, as above)

	// 3. RDS-EVENT-0049 arrives; the DNS record changes 5 s later. The handler resolves every second and syncs.
	mark = rec.mark()
	queriesBefore := dns.Queries()
	var queriesAtChange atomic.Int64
	var changedAt atomic.Int64
	const late = 5 * time.Second
	timer := time.AfterFunc(late, func() {
		queriesAtChange.Store(dns.Queries())
		changedAt.Store(time.Now().UnixNano())
		dns.SetA(endpoint, 1, "10.0.2.20")
	})
	defer timer.Stop()
	start := time.Now()
	res := rt.invoke(t, readFixture(t, "lambda-rds-instance-0049.json"), 3*time.Minute)
	took := time.Since(start)
	r = decodeResponse(t, "RDS-EVENT-0049", res)
	if !r.Watched || len(r.Syncs) != 1 || r.Syncs[0].Sync != "orders" || !r.Syncs[0].Settled || !r.Syncs[0].AddressChanged {
		t.Fatalf("failover event: want orders watched until settled: %s", res.body)
	}
	if !slices.Equal(ips(r.Syncs[0].Registered), []string{"10.0.2.20"}) || !slices.Equal(ips(r.Syncs[0].Deregistered), []string{"10.0.1.10"}) {
		t.Fatalf("failover event: registered %v, deregistered %v", r.Syncs[0].Registered, r.Syncs[0].Deregistered)
	}
	if took < late || took > late+10*time.Second {
		t.Fatalf("the invocation took %v: it must wait for the DNS change at %v and end soon after", took, late)
	}
	if n := queriesAtChange.Load() - queriesBefore; n < int64(late/time.Second)-1 {
		t.Fatalf("%d DNS queries in the %v before the change: the handler must resolve every second", n, late)
	}
	calls := rec.since(mark)
	var registeredAt time.Time
	for _, c := range calls {
		if c.op == "elasticloadbalancing:RegisterTargets" {
			registeredAt = c.at
		}
	}
	if lag := registeredAt.Sub(time.Unix(0, changedAt.Load())); registeredAt.IsZero() || lag > 3*time.Second {
		t.Fatalf("RegisterTargets %v after the DNS change (TTL 1 s): want within about TTL + 1 s", lag)
	}
	if got := live(orders.ARN); !slices.Equal(got, []string{"10.0.2.20"}) {
		t.Fatalf("orders after the failover: %v", got)
	}
	for _, c := range calls {
		if c.targetGroup == reports.ARN {
			t.Fatalf("the instance event touched the cluster's mapping: %+v", c)
		}
	}

	// 4. RDS-EVENT-0071 for the Aurora cluster, after its writer endpoint's CNAME moved.
	dns.SetCNAME(reportsEndpoint, 1, "reports-2.c9abc.us-east-1.rds.test")
	r = decodeResponse(t, "RDS-EVENT-0071", rt.invoke(t, readFixture(t, "lambda-rds-cluster-0071.json"), 3*time.Minute))
	if !r.Watched || len(r.Syncs) != 1 || r.Syncs[0].Sync != "reports" || !r.Syncs[0].Settled {
		t.Fatalf("cluster failover event: %+v", r)
	}
	if got := live(reports.ARN); !slices.Equal(got, []string{"10.0.6.60"}) {
		t.Fatalf("reports after the cluster failover: %v", got)
	}

	// 5. Bad events: a clear error, and the environment lives on.
	mark = rec.mark()
	res = rt.invoke(t, readFixture(t, "lambda-bad-event.json"), 30*time.Second)
	if res.ok || res.errorType != "EventError" || !strings.Contains(string(res.body), `Records`) || !strings.Contains(string(res.body), "ipsync serves an EventBridge scheduled event") {
		t.Fatalf("bad event: ok=%v errorType=%q body %s", res.ok, res.errorType, res.body)
	}
	res = rt.invoke(t, []byte(`{"syncs": ["billing"]}`), 30*time.Second)
	if res.ok || res.errorType != "EventError" || !strings.Contains(string(res.body), `billing`) {
		t.Fatalf("unknown mapping: ok=%v body %s", res.ok, res.body)
	}
	if calls := rec.since(mark); len(calls) != 0 {
		t.Fatalf("bad events made AWS calls: %+v", calls)
	}

	// 6. A last scheduled pass: all in sync, still the same process, clients built once.
	r = decodeResponse(t, "last scheduled", rt.invoke(t, readFixture(t, "lambda-scheduled.json"), 30*time.Second))
	if len(r.Syncs) != 2 || !r.Syncs[0].InSync || !r.Syncs[1].InSync || r.Syncs[0].Result != "unchanged" {
		t.Fatalf("last scheduled pass: %+v", r)
	}
	if !fn.running() || strings.Count(fn.stderr.String(), "ipsync Lambda handler ready") != 1 {
		t.Fatalf("the execution environment must be set up once and live through every invocation")
	}
	all := rec.since(0)
	if n := count(all, "sts:AssumeRole", ""); n != 1 {
		t.Fatalf("sts:AssumeRole called %d times: the assumed role's credentials must be reused across invocations", n)
	}
	// Once by the live engine, once by the dry-run engine (its own memory); never again per invocation.
	if n, m := count(all, "elasticloadbalancing:DescribeTargetGroups", orders.ARN), count(all, "elasticloadbalancing:DescribeTargetGroups", reports.ARN); n != 2 || m != 1 {
		t.Fatalf("DescribeTargetGroups: orders %d, reports %d times; want 2 and 1 (once per engine)", n, m)
	}

	// Metrics: every stdout line is an EMF document; the failover's registration is counted. Stdout reaches the
	// test through a pipe, so end the environment first (as Lambda does) to have all of it.
	_ = fn.cmd.Process.Kill()
	<-fn.done
	registrations := 0.0
	sc := bufio.NewScanner(strings.NewReader(fn.stdout.String()))
	lines := 0
	for sc.Scan() {
		lines++
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("stdout line is not JSON (stdout is for EMF only): %q", sc.Text())
		}
		aws, _ := doc["_aws"].(map[string]any)
		cwm, _ := aws["CloudWatchMetrics"].([]any)
		if len(cwm) != 1 || cwm[0].(map[string]any)["Namespace"] != "ipsync" {
			t.Fatalf("not an EMF line in namespace ipsync: %q", sc.Text())
		}
		if doc["sync"] == "orders" {
			v, _ := doc["Registrations"].(float64)
			registrations += v
		}
	}
	if lines != 6 || registrations != 2 {
		t.Fatalf("%d EMF lines, Registrations for orders %v: want one line per mapping per live invocation (2+1+1+2), and 2 registrations", lines, registrations)
	}

	// The same binary is the command line without AWS_LAMBDA_RUNTIME_API; its read paths go in the record too.
	for _, args := range [][]string{{"validate", "--remote"}, {"status"}} {
		cmd := exec.Command(bootstrap, args...)
		cmd.Env = childEnv("IPSYNC_CONFIG="+cfg, "AWS_ENDPOINT_URL="+rec.url)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bootstrap %v: %v\n%s", args, err, out)
		}
	}

	// 7. A fleet deployment: `sync` with discover: finds a tagged group (prune: false from its tag), registers, and
	// records ownership, removing a hand-made look-alike of the record first; its calls go in the record too.
	fleet := awstest.NewTargetGroup(t, 5432)
	tagger, err := factory.For(context.Background(), fleet.ARN, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tagger.AddTags(context.Background(), fleet.ARN, map[string]string{"ipsync:endpoint": endpoint, "ipsync:prune": "false",
		"ipsync:owned:x": "edited by hand"}); err != nil {
		t.Fatal(err)
	}
	fleetCfg := fmt.Sprintf("discover: {tag_key: \"ipsync:endpoint\", regions: [us-east-1]}\ndns: {servers: [%q], timeout: 500ms}\n", dns.Addr())
	mark = rec.mark()
	cmd := exec.Command(bootstrap, "sync")
	cmd.Env = childEnv("IPSYNC_CONFIG="+fleetCfg, "AWS_ENDPOINT_URL="+rec.url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bootstrap sync with discover: %v\n%s", err, out)
	}
	if got := live(fleet.ARN); !slices.Equal(got, []string{"10.0.2.20"}) {
		t.Fatalf("the discovered group after sync: %v", got)
	}
	for _, op := range []string{"tag:GetResources", "elasticloadbalancing:DescribeTags", "elasticloadbalancing:RemoveTags", "elasticloadbalancing:AddTags"} {
		if count(rec.since(mark), op, "") == 0 {
			t.Fatalf("sync with discover: and prune: false made no %s call: %+v", op, rec.since(mark))
		}
	}

	// 8. rds: mappings, through the one-shot sync of the same binary: their membership reads go in the record
	// too. Against our fake, which serves custom endpoints (moto does not).
	fake := awstest.Fake(t, elbv2fake.Options{})
	rdsRec := newAWSRecorder(t, fake.URL)
	if err := fake.Fake.CreateDBCluster("shop"); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"shop-1", "shop-2", "shop-3"} {
		addr, err := fake.Fake.CreateDBInstance(elbv2fake.DBInstanceSpec{ID: id, Cluster: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		dns.SetA(addr, 5, fmt.Sprintf("10.0.8.%d", i+1))
	}
	if err := fake.Fake.CreateDBClusterEndpoint(elbv2fake.DBClusterEndpointSpec{Cluster: "shop", ID: "reporting", Type: "ANY", Static: []string{"shop-3"}}); err != nil {
		t.Fatal(err)
	}
	readers, reporting := awstest.NewTargetGroup(t, 5432), awstest.NewTargetGroup(t, 5432)
	rdsCfg := fmt.Sprintf(`syncs:
  - rds: {cluster: shop, role: reader}
    target_group_arn: %s
  - rds: {cluster: shop, custom_endpoint: reporting}
    target_group_arn: %s
dns: {servers: [%q], timeout: 500ms}
`, readers.ARN, reporting.ARN, dns.Addr())
	cmd = exec.Command(bootstrap, "sync")
	cmd.Env = childEnv("IPSYNC_CONFIG="+rdsCfg, "AWS_ENDPOINT_URL="+rdsRec.url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bootstrap sync with rds: mappings: %v\n%s", err, out)
	}
	if n := count(rdsRec.since(0), "elasticloadbalancing:RegisterTargets", ""); n != 2 {
		t.Fatalf("rds: mappings: %d RegisterTargets calls, want one per mapping", n)
	}

	checkOperations(t, operations(append(rec.since(0), rdsRec.since(0)...)))
}

// checkOperations compares the recorded operations with testdata/aws-operations.txt, or rewrites it (-update).
func checkOperations(t *testing.T, ops []string) {
	t.Helper()
	header := "# The AWS operations ipsync calls, as IAM actions, recorded on the wire by TestLambdaRuntimeAPI\n" +
		"# (cmd/ipsync/lambda_e2e_test.go) against moto, and against our fake for rds: custom endpoints.\n" +
		"# Do not edit: go test ./cmd/ipsync -run TestLambdaRuntimeAPI -update\n" +
		"# deploy/templates_test.go checks that the IAM policies in deploy/ grant exactly these.\n"
	want := header + strings.Join(ops, "\n") + "\n"
	if *updateOperations {
		if err := os.WriteFile(operationsFile, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(operationsFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("ipsync now calls %q, but %s lists other operations:\n%s\nRun go test ./cmd/ipsync -run TestLambdaRuntimeAPI -update, "+
			"then update the IAM policies in deploy/ (go test ./deploy checks them)", ops, operationsFile, got)
	}
}
