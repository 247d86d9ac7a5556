package main_test

// End-to-end tests: the real ipsync binary as a process, a DNS server the test controls, and AWS emulated on
// loopback (moto, or our fake where the wire log is needed), pointed at with AWS_ENDPOINT_URL as a user would.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

const endpoint = "orders.c9abc.us-east-1.rds.test"

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ipsync-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ipsync")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ipsync:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// world is a DNS server and an AWS endpoint with one ip target group, and a client reading it directly.
type world struct {
	t      *testing.T
	dns    *dnstest.Server
	fake   *elbv2fake.Server // nil on moto
	group  awstest.Group
	direct *targets.Client
}

func newWorld(t *testing.T, useFake bool) *world {
	t.Helper()
	if useFake {
		return newFakeWorld(t, elbv2fake.Options{})
	}
	return newWorldAt(t, awstest.Moto(t))
}

// newFakeWorld is a world on our ELBv2 fake with options (latency, health-check and draining times).
func newFakeWorld(t *testing.T, opts elbv2fake.Options) *world {
	t.Helper()
	return newWorldAt(t, awstest.Fake(t, opts))
}

// newWorldAt builds the world around an AWS endpoint; the child processes inherit its AWS_ENDPOINT_URL and
// dummy credentials.
func newWorldAt(t *testing.T, ep awstest.Endpoint) *world {
	t.Helper()
	group := awstest.NewTargetGroup(t, 5432)
	return &world{t: t, dns: dnstest.Start(t), fake: ep.Fake, group: group, direct: awstest.Client(t, group.ARN, targets.FactoryOptions{})}
}

func (w *world) config(extra string) string {
	return fmt.Sprintf(`syncs:
  - name: orders
    endpoint: %s
    target_group_arn: %s
dns:
  servers: [%q]
  timeout: 500ms
poll: {min: 1s, max: 30s}
%s`, endpoint, w.group.ARN, w.dns.Addr(), extra)
}

// live returns the group's registered, non-draining addresses.
func (w *world) live() []netip.Addr { return awstest.LiveAddrs(w.t, w.direct, w.group.ARN) }

// waitLive waits until the group holds exactly want.
func (w *world) waitLive(timeout time.Duration, want ...string) {
	w.t.Helper()
	var wantAddrs []netip.Addr
	for _, s := range want {
		wantAddrs = append(wantAddrs, netip.MustParseAddr(s))
	}
	slices.SortFunc(wantAddrs, netip.Addr.Compare)
	var got []netip.Addr
	if !testutil.Wait(timeout, func() bool { got = w.live(); return slices.Equal(got, wantAddrs) }) {
		w.t.Fatalf("after %s the target group holds %v, want %v", timeout, got, wantAddrs)
	}
}

// proc is a running ipsync process.
type proc struct {
	cmd    *exec.Cmd
	out    *testutil.Buffer // nil when startDaemonTo got another writer
	done   <-chan struct{}  // closed when the process has exited
	listen string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDaemon runs `ipsync run` with the configuration in IPSYNC_CONFIG, as an ECS task definition would.
func startDaemon(t *testing.T, config string) *proc {
	t.Helper()
	return startDaemonWith(t, config, nil)
}

// startDaemonWith is startDaemon with more arguments after "run" and more environment.
func startDaemonWith(t *testing.T, config string, args []string, env ...string) *proc {
	t.Helper()
	out := &testutil.Buffer{}
	// Registered first, so it runs after startRun's cleanup has stopped the daemon.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ipsync output:\n%s", out.String())
		}
	})
	p := startRun(t, config, out, args, env)
	p.out = out
	return p
}

// metric scrapes /metrics and returns the value of the first sample matching name and every label given.
func (p *proc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.listen + "/metrics")
	if err != nil {
		t.Fatalf("scraping /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var sum float64
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			sum += v
		}
	}
	return sum
}

// TestDaemonFollowsFailover is the product in one test: the daemon fills an empty group, follows an A-record
// failover and a CNAME failover, touches nothing while DNS is down, and exits 0 on SIGTERM.
func TestDaemonFollowsFailover(t *testing.T) {
	w := newWorld(t, false)
	w.dns.SetA(endpoint, 1, "10.0.1.10")
	w.dns.SetA("db-2.c9abc.us-east-1.rds.test", 1, "10.0.3.30")
	p := startDaemon(t, w.config(""))

	w.waitLive(10*time.Second, "10.0.1.10")

	w.dns.SetA(endpoint, 1, "10.0.2.20") // Multi-AZ failover: the A record changes
	w.waitLive(10*time.Second, "10.0.2.20")

	w.dns.SetCNAME(endpoint, 1, "db-2.c9abc.us-east-1.rds.test") // Aurora: the CNAME moves to another instance
	w.waitLive(10*time.Second, "10.0.3.30")

	if got := p.metric(t, "ipsync_address_changes_total", `sync="orders"`); got < 2 {
		t.Errorf("ipsync_address_changes_total = %v, want >= 2", got)
	}

	// DNS stops answering: for more than five TTLs nothing may change, and the metrics must say why.
	regs := p.metric(t, "ipsync_aws_api_calls_total", `operation="RegisterTargets"`)
	deregs := p.metric(t, "ipsync_aws_api_calls_total", `operation="DeregisterTargets"`)
	w.dns.SetFault(dnstest.FaultDrop)
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); {
		if got := w.live(); len(got) != 1 || got[0] != netip.MustParseAddr("10.0.3.30") {
			t.Fatalf("I1: the target group changed while DNS was down: %v", got)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := p.metric(t, "ipsync_dns_queries_total", `sync="orders"`, `result="timeout"`); got < 3 {
		t.Errorf("ipsync_dns_queries_total{result=timeout} = %v, want >= 3 after six seconds of outage", got)
	}
	if got := p.metric(t, "ipsync_sync_runs_total", `sync="orders"`, `result="error"`); got < 3 {
		t.Errorf("ipsync_sync_runs_total{result=error} = %v, want >= 3", got)
	}
	if r, d := p.metric(t, "ipsync_aws_api_calls_total", `operation="RegisterTargets"`),
		p.metric(t, "ipsync_aws_api_calls_total", `operation="DeregisterTargets"`); r != regs || d != deregs {
		t.Errorf("mutating calls during the DNS outage: register %v -> %v, deregister %v -> %v", regs, r, deregs, d)
	}

	// DNS comes back with a new address: converge without help.
	w.dns.SetFault(dnstest.FaultNone)
	w.dns.SetA(endpoint, 1, "10.0.1.10")
	w.waitLive(10*time.Second, "10.0.1.10")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("ipsync did not exit within 15 s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
	for _, msg := range []string{"address change detected", "registered targets", "deregistered targets"} {
		if !strings.Contains(p.out.String(), msg) {
			t.Errorf("the log has no %q line", msg)
		}
	}
}

// run runs the binary to completion and returns its exit code and combined output.
func run(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = childEnv(env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running ipsync %v: %v", args, err)
		}
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestSyncExitCodesAndDryRun: sync --detailed-exitcode gives 2 / 0 / 1, and --dry-run makes no mutating call
// (checked on the fake's wire log).
func TestSyncExitCodesAndDryRun(t *testing.T) {
	w := newWorld(t, true)
	w.dns.SetA(endpoint, 5, "10.0.1.10")
	cfg := []string{"IPSYNC_CONFIG=" + w.config("")}

	code, out := run(t, cfg, "sync", "--dry-run", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "would register") || !strings.Contains(out, "10.0.1.10:5432") ||
		!strings.Contains(out, "zone:         10.0.1.10 decided by AWS at registration") {
		t.Fatalf("dry run: exit %d, want 2 and the plan, with the zone left to AWS (availability_zone auto):\n%s", code, out)
	}
	if muts := w.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: --dry-run made mutating calls: %v", muts)
	}
	if len(w.live()) != 0 {
		t.Fatal("--dry-run changed the group")
	}

	if code, out := run(t, cfg, "sync", "--detailed-exitcode"); code != 2 {
		t.Fatalf("sync with changes: exit %d, want 2:\n%s", code, out)
	}
	w.waitLive(time.Second, "10.0.1.10")
	if code, out := run(t, cfg, "sync", "--detailed-exitcode", "--output", "json"); code != 0 || !strings.Contains(out, `"in_sync": true`) {
		t.Fatalf("sync in sync: exit %d, want 0 and JSON:\n%s", code, out)
	}
	if code, _ := run(t, cfg, "sync"); code != 0 {
		t.Fatalf("plain sync in sync: exit %d, want 0", code)
	}

	w.dns.SetFault(dnstest.FaultServFail)
	code, out = run(t, cfg, "sync", "--detailed-exitcode")
	if code != 1 || !strings.Contains(out, "orders") || !strings.Contains(out, "SERVFAIL") {
		t.Fatalf("sync with DNS failing: exit %d, want 1 naming the mapping and the error:\n%s", code, out)
	}
	w.waitLive(time.Second, "10.0.1.10")
}

// TestBadConfiguration: every problem is named, the exit code is 1, and no AWS call is made.
func TestBadConfiguration(t *testing.T) {
	w := newWorld(t, true)
	w.fake.ResetCalls()
	bad := `syncs:
  - name: orders
    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/x/1
    port: 0
`
	for _, cmd := range [][]string{{"run"}, {"sync"}, {"validate"}, {"validate", "--remote"}} {
		code, out := run(t, []string{"IPSYNC_CONFIG=" + bad}, cmd...)
		if code != 1 {
			t.Fatalf("%v: exit %d, want 1:\n%s", cmd, code, out)
		}
		for _, want := range []string{"endpoint", "target_group_arn", "port"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: the error does not name %q:\n%s", cmd, want, out)
			}
		}
	}
	code, out := run(t, []string{"IPSYNC_CONFIG=" + w.config("unknown_key: 1\n")}, "run")
	if code != 1 || !strings.Contains(out, "unknown_key") {
		t.Fatalf("unknown key: exit %d, want 1 naming it:\n%s", code, out)
	}
	code, out = run(t, nil, "sync", "--endpoint", endpoint, "--target-group-arn", "nonsense")
	if code != 1 || !strings.Contains(out, "nonsense") {
		t.Fatalf("malformed ARN from flags: exit %d:\n%s", code, out)
	}
	if calls := w.fake.Calls(); len(calls) != 0 {
		t.Fatalf("bad configuration made AWS calls: %v", calls)
	}
}

// TestValidateWarnsRotatingEndpoint: validate accepts an Aurora reader endpoint followed through DNS (exit 0)
// but warns that it rotates and names the rds: form to use instead. No AWS call is needed.
func TestValidateWarnsRotatingEndpoint(t *testing.T) {
	cfg := `syncs:
  - endpoint: orders-aurora.cluster-ro-c9abc.us-east-1.rds.amazonaws.com
    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/readers/0123456789abcdef
`
	code, out := run(t, []string{"IPSYNC_CONFIG=" + cfg}, "validate")
	if code != 0 || !strings.Contains(out, "warning: syncs[0] (orders-aurora): endpoint") ||
		!strings.Contains(out, "use rds: {cluster: orders-aurora, role: reader} instead") || !strings.Contains(out, "configuration is valid") {
		t.Fatalf("validate: exit %d, want 0 with the reader-endpoint warning:\n%s", code, out)
	}
}

// TestValidateRemoteAndStatus: validate --remote checks the group; status shows DNS and targets; healthcheck
// follows the daemon's readiness.
func TestValidateRemoteAndStatus(t *testing.T) {
	w := newWorld(t, true)
	w.dns.SetA(endpoint, 5, "10.0.1.10")
	cfg := []string{"IPSYNC_CONFIG=" + w.config("")}
	if code, out := run(t, cfg, "validate", "--remote"); code != 0 || !strings.Contains(out, "ok   orders") {
		t.Fatalf("validate --remote: exit %d:\n%s", code, out)
	}
	inst := w.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "inst", Port: 5432, Protocol: "TCP", VPCID: w.group.VPCID, TargetType: "instance"})
	code, out := run(t, nil, "validate", "--remote", "--endpoint", endpoint, "--target-group-arn", inst, "--dns-server", w.dns.Addr())
	if code != 1 || !strings.Contains(out, "type ip") {
		t.Fatalf("validate --remote on an instance group: exit %d:\n%s", code, out)
	}
	code, out = run(t, cfg, "status")
	if code != 0 || !strings.Contains(out, "10.0.1.10") || !strings.Contains(out, "targets:      none") {
		t.Fatalf("status: exit %d:\n%s", code, out)
	}
	if muts := w.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("validate/status made mutating calls: %v", muts)
	}

	p := startDaemon(t, w.config(""))
	hc := []string{"IPSYNC_LISTEN=" + p.listen}
	if !testutil.Wait(10*time.Second, func() bool { code, out = run(t, hc, "healthcheck"); return code == 0 }) {
		t.Fatalf("healthcheck never passed: %s", out)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if code, _ := run(t, hc, "healthcheck"); code != 1 {
		t.Fatalf("healthcheck with no daemon: exit %d, want 1", code)
	}
}

// TestValidateRemoteWarnsIPv6: an ipv6 target group with the default allowed_cidrs (no IPv6 range outside ULA) is
// warned about, since AWS VPC IPv6 addresses are global unicast; the refusal of the address says so too (I10).
func TestValidateRemoteWarnsIPv6(t *testing.T) {
	w := newWorld(t, true)
	const vpc = "vpc-0000000000000abcd"
	if err := w.fake.AddVPC(vpc, "10.0.0.0/16", "2600:1f18:1234:5600::/56"); err != nil {
		t.Fatal(err)
	}
	arn := w.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "v6", Port: 5432, Protocol: "TCP", VPCID: vpc, IPAddressType: "ipv6"})
	w.dns.SetAAAA(endpoint, 5, "2600:1f18:1234:5601::10")
	code, out := run(t, nil, "validate", "--remote", "--endpoint", endpoint, "--target-group-arn", arn, "--dns-server", w.dns.Addr())
	if code != 1 || !strings.Contains(out, "warning: orders: target group "+arn+" is ipv6, but allowed_cidrs allows no IPv6 range outside ULA") ||
		!strings.Contains(out, "FAIL") || !strings.Contains(out, "AWS VPC IPv6 addresses are global unicast") {
		t.Fatalf("validate --remote on an ipv6 group with the default allowed_cidrs: exit %d, want 1 with the ipv6 warning and hint:\n%s", code, out)
	}
}

// TestAuthoritativeFallbackShown: in authoritative mode with DNS servers that know no name server for the
// endpoint's zone (as in a VPC whose resolver is the only DNS it can reach), the mapping falls back to
// recursive mode, and `validate --remote` and `status` say so.
func TestAuthoritativeFallbackShown(t *testing.T) {
	w := newWorld(t, true)
	w.dns.SetA(endpoint, 5, "10.0.1.10")
	cfg := []string{"IPSYNC_CONFIG=" + fmt.Sprintf(`syncs:
  - {name: orders, endpoint: %s, target_group_arn: %s}
dns: {mode: authoritative, servers: [%q], timeout: 500ms}
`, endpoint, w.group.ARN, w.dns.Addr())}
	if code, out := run(t, cfg, "validate", "--remote"); code != 0 || !strings.Contains(out, "ok   orders") || !strings.Contains(out, "falling back") {
		t.Fatalf("validate --remote: exit %d, want 0 and a summary that says it fell back to recursive mode:\n%s", code, out)
	}
	code, out := run(t, cfg, "status")
	if code != 0 || !strings.Contains(out, "10.0.1.10") || !strings.Contains(out, "fallback mode") || !strings.Contains(out, "dns mode:     fallback to recursive") {
		t.Fatalf("status: exit %d, want the fallback shown:\n%s", code, out)
	}
	code, out = run(t, cfg, "status", "--output", "json")
	if code != 0 || !strings.Contains(out, `"dns_mode": "fallback"`) || !strings.Contains(out, `"dns_fallback"`) {
		t.Fatalf("status --output json: exit %d, want dns_mode fallback and its reason:\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	code, out := run(t, nil, "version")
	if code != 0 || !regexp.MustCompile(`^ipsync \S+ \(commit \S+, go1\.`).MatchString(out) {
		t.Fatalf("version: exit %d: %q", code, out)
	}
	if code, _ := run(t, nil, "no-such-command"); code != 1 {
		t.Fatalf("unknown command: exit %d, want 1", code)
	}
}
