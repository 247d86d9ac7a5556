package main_test

// Process-level faults (issue 3): the built binary killed with SIGKILL in the middle of a pass and restarted, two
// daemons on one mapping, and the refusals every command makes before any change. AWS is our ELBv2 fake, so
// every call is in its wire log; DNS is the test server, whose answers are recorded as they are sent.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/testutil"
)

// fakeLive is the group's non-draining addresses, read from the fake itself so that injected faults never hit
// the test's own reads.
func fakeLive(fake *elbv2fake.Server, arn string) []netip.Addr {
	var out []netip.Addr
	for _, t := range fake.Targets(arn) {
		if t.State != elbv2fake.StateDraining && t.State != elbv2fake.StateUnhealthyDraining {
			out = append(out, t.IP)
		}
	}
	return out
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// waitFakeLive waits until the group holds exactly want.
func waitFakeLive(t *testing.T, w *world, d time.Duration, want ...string) {
	t.Helper()
	var got []netip.Addr
	if !testutil.Wait(d, func() bool { got = fakeLive(w.fake, w.group.ARN); return slices.Equal(got, addrs(want...)) }) {
		t.Fatalf("not within %s: the group holds %v, want %v", d, got, want)
	}
}

// readyz returns the daemon's /readyz status and body.
func (p *proc) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.listen + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// logLines parses the daemon's JSON log lines (others are skipped).
func logLines(out string) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// TestKillMidPassThenRestart: the daemon is killed with SIGKILL while a call of its pass is in flight (the call
// held by the fake), then started again. The new process learns the state from AWS and DNS, converges, and at
// no point, across both processes, was an address DNS served deregistered or the old one removed before the new
// one was in (I2, I3 on the wire).
func TestKillMidPassThenRestart(t *testing.T) {
	const a, b = "10.0.1.10", "10.0.2.20"
	for _, tc := range []struct {
		name, action string
		applied      bool     // the held call took effect before the kill (its answer is lost)
		atKill       []string // the group when the process died
	}{
		{"during RegisterTargets", "RegisterTargets", false, []string{a}},
		{"during RegisterTargets that took effect", "RegisterTargets", true, []string{a, b}},
		{"during DeregisterTargets that took effect", "DeregisterTargets", true, []string{b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFakeWorld(t, elbv2fake.Options{Latency: 50 * time.Millisecond})
			w.dns.SetA(endpoint, 1, a)
			cfg := w.config("")
			first := startDaemon(t, cfg)
			waitFakeLive(t, w, 15*time.Second, a)

			held := make(chan struct{})
			var armed atomic.Bool
			armed.Store(true)
			w.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
				if action == tc.action && armed.CompareAndSwap(true, false) {
					close(held)
					return &elbv2fake.Fault{Delay: time.Minute, Applied: tc.applied}
				}
				return nil
			})
			failover := time.Now()
			w.dns.SetA(endpoint, 1, b)
			select {
			case <-held:
			case <-time.After(20 * time.Second):
				t.Fatalf("no %s call within 20 s of the failover", tc.action)
			}
			time.Sleep(100 * time.Millisecond) // the call is in flight
			if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-first.done
			w.fake.SetFault(nil)
			if got := fakeLive(w.fake, w.group.ARN); !slices.Equal(got, addrs(tc.atKill...)) {
				t.Fatalf("after the kill the group holds %v, want %v", got, tc.atKill)
			}

			second := startDaemon(t, cfg)
			waitFakeLive(t, w, 15*time.Second, b)
			testutil.Eventually(t, 10*time.Second, "the restarted daemon is ready", func() bool { code, _ := second.readyz(t); return code == 200 })

			var regB time.Time
			for _, c := range w.fake.MutatingCalls() {
				ts := c.TargetIPs()
				switch {
				case c.Action == "RegisterTargets" && slices.Contains(ts, netip.MustParseAddr(b)) && (c.Code == "" || tc.applied) && regB.IsZero():
					regB = c.At
				case c.Action == "DeregisterTargets" && slices.Contains(ts, netip.MustParseAddr(b)):
					t.Fatalf("I2: DeregisterTargets of %s, which DNS served since %s: %+v", b, failover.Format(time.StampMilli), c)
				case c.Action == "DeregisterTargets" && (regB.IsZero() || c.At.Before(regB)):
					t.Fatalf("I3: DeregisterTargets %v before %s was registered", ts, b)
				}
			}
		})
	}
}

// TestTwoDaemonsSameMapping: two daemons run the same mapping at once (a rolling deployment that overlaps, or
// two tasks by mistake). Both follow every failover, the group ends in the same state either would reach alone,
// and no address DNS served was ever deregistered. The cost is double the API calls.
func TestTwoDaemonsSameMapping(t *testing.T) {
	w := newFakeWorld(t, elbv2fake.Options{Latency: 20 * time.Millisecond, DrainFor: 2 * time.Second})
	var (
		mu     sync.Mutex
		states []dnsState // what DNS served from when
	)
	serve := func(ip string) {
		mu.Lock()
		defer mu.Unlock()
		w.dns.SetA(endpoint, 1, ip)
		states = append(states, dnsState{at: time.Now(), addrs: addrs(ip)})
	}
	serve("10.0.1.10")
	cfg := w.config("")
	daemons := []*proc{startDaemon(t, cfg), startDaemon(t, cfg)}
	waitFakeLive(t, w, 15*time.Second, "10.0.1.10")

	for _, ip := range []string{"10.0.2.20", "10.0.3.30", "10.0.1.10", "10.0.2.20"} { // the last two are fail-backs
		serve(ip)
		waitFakeLive(t, w, 15*time.Second, ip)
	}
	for i, p := range daemons {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("daemon %d in sync and ready", i+1), func() bool {
			code, _ := p.readyz(t)
			return code == 200 && p.metric(t, "ipsync_in_sync", `sync="orders"`) == 1
		})
	}

	mu.Lock()
	defer mu.Unlock()
	regs, deregs := 0, 0
	for _, c := range w.fake.MutatingCalls() {
		if c.Action == "RegisterTargets" {
			regs++
			continue
		}
		deregs++
		if c.Code != "" {
			continue
		}
		for _, ip := range c.TargetIPs() {
			if servedThroughout(states, ip, c.At.Add(-1500*time.Millisecond), c.At) {
				t.Errorf("DeregisterTargets of %s at %s, while DNS had served it for 1.5 s", ip, c.At.Format(time.StampMilli))
			}
		}
	}
	// 5 changes; one daemon alone would make 5 registrations and 4 deregistrations.
	t.Logf("two daemons, 5 address changes: %d RegisterTargets and %d DeregisterTargets calls", regs, deregs)
	for i, p := range daemons {
		t.Logf("daemon %d: %v registrations, %v deregistrations, %v passes", i+1,
			p.metric(t, "ipsync_registrations_total", `sync="orders"`), p.metric(t, "ipsync_deregistrations_total", `sync="orders"`),
			p.metric(t, "ipsync_sync_runs_total", `sync="orders"`))
	}
}

// dnsState is what the test made DNS serve for the endpoint from at on.
type dnsState struct {
	at    time.Time
	addrs []netip.Addr // the authoritative answer
	stale []netip.Addr // also served, by "caches" disagreeing (flapping answers)
}

// servedThroughout reports whether ip was in the authoritative answer during all of [from, to].
func servedThroughout(states []dnsState, ip netip.Addr, from, to time.Time) bool {
	for i, s := range states {
		end := time.Now().Add(time.Hour)
		if i+1 < len(states) {
			end = states[i+1].at
		}
		if !end.After(from) || s.at.After(to) {
			continue // not overlapping [from, to]
		}
		if !slices.Contains(s.addrs, ip) || (i == 0 && s.at.After(from)) {
			return false
		}
	}
	return true
}

// TestRefusedByEveryCommand (issue 3 item 4): a target group that is not of type ip, one that is not a Network
// Load Balancer's, and an address outside the default allowed_cidrs (I10, here in a VPC with a public CIDR
// block) are refused by validate --remote, by sync and by the daemon, each with the same message saying what
// to change, and no mutating call is made.
func TestRefusedByEveryCommand(t *testing.T) {
	w := newFakeWorld(t, elbv2fake.Options{})
	w.dns.SetA(endpoint, 5, "10.0.1.10")
	w.dns.SetA("public.rds.test", 5, "203.0.113.10")
	inst := w.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "inst", Port: 5432, Protocol: "TCP", VPCID: w.group.VPCID, TargetType: "instance"})
	alb := w.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "alb", Port: 5432, Protocol: "HTTP", VPCID: w.group.VPCID, TargetType: "ip"})
	for _, tc := range []struct {
		name, endpoint, arn, az, want string
	}{
		{"not type ip", endpoint, inst, "auto", "needs a target group of type ip"},
		{"not an NLB protocol", endpoint, alb, "auto", "not a Network Load Balancer protocol"},
		{"a public address outside allowed_cidrs", "public.rds.test", w.group.ARN, "auto", "uses a public CIDR block, add the VPC's CIDR to allowed_cidrs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fmt.Sprintf("syncs:\n  - name: orders\n    endpoint: %s\n    target_group_arn: %s\n    availability_zone: %s\n"+
				"dns: {servers: [%q], timeout: 500ms}\npoll: {min: 1s, max: 2s}\n", tc.endpoint, tc.arn, tc.az, w.dns.Addr())
			env := []string{"IPSYNC_CONFIG=" + cfg}
			for _, cmd := range [][]string{{"validate", "--remote"}, {"sync"}, {"sync", "--dry-run"}} {
				code, out := run(t, env, cmd...)
				if code != 1 || !strings.Contains(out, tc.want) || !strings.Contains(out, "orders") {
					t.Errorf("%v: exit %d, want 1 and %q:\n%s", cmd, code, tc.want, out)
				}
			}

			p := startDaemon(t, cfg)
			var body string
			testutil.Eventually(t, 10*time.Second, "/readyz 503 naming the mapping and its state", func() bool {
				var code int
				code, body = p.readyz(t)
				return code == http.StatusServiceUnavailable && strings.Contains(body, "orders: error (hard)")
			})
			// Issue 9 item 7: anyone who reaches --listen reads /readyz; the details stay in the log and `status`.
			for _, detail := range []string{"arn:", "123456789012", "targetgroup/", tc.want} {
				if strings.Contains(body, detail) {
					t.Errorf("/readyz tells anyone %q: %q", detail, body)
				}
			}
			var logged bool
			for _, l := range logLines(p.out.String()) {
				logged = logged || (l["level"] == "error" && l["msg"] == "sync pass failed" && l["fault"] == "hard" &&
					l["sync"] == "orders" && l["endpoint"] == tc.endpoint && l["target_group"] == tc.arn &&
					strings.Contains(fmt.Sprint(l["error"]), tc.want))
			}
			if !logged {
				t.Errorf("no error line naming sync, endpoint, target_group and saying %q:\n%s", tc.want, p.out.String())
			}
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			<-p.done
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("a refused mapping is no reason to crash: exit %d after SIGTERM, want 0", code)
			}
		})
	}
	if muts := w.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("refused, yet mutating calls: %v", muts)
	}
}

// startDaemonTo runs `ipsync run` with the configuration in IPSYNC_CONFIG, the output going to out and extra
// environment; the daemon is killed when the test ends.
func startDaemonTo(t *testing.T, config string, out io.Writer, env ...string) *proc {
	t.Helper()
	return startRun(t, config, out, nil, env)
}

// startRun runs `ipsync run args...` with the configuration in IPSYNC_CONFIG and env, its output going to out.
func startRun(t *testing.T, config string, out io.Writer, args, env []string) *proc {
	t.Helper()
	p := &proc{listen: freeAddr(t)}
	p.cmd = exec.Command(binary, append([]string{"run"}, args...)...)
	p.cmd.Env = childEnv(append([]string{"IPSYNC_CONFIG=" + config, "IPSYNC_LISTEN=" + p.listen}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.done = testutil.StartProcess(t, p.cmd, nil)
	return p
}
