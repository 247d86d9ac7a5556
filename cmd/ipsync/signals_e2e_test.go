package main_test

// Signals to the built daemon (issue 9 items 6 and 12): SIGTERM in the middle of a slow pass, SIGHUP to reload the
// configuration.

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

// mappingConfig is a configuration of one mapping per "name endpoint target-group-ARN extra-keys" entry.
func (w *world) mappingConfig(mappings ...[4]string) string {
	cfg := "syncs:\n"
	for _, m := range mappings {
		cfg += fmt.Sprintf("  - {name: %s, endpoint: %s, target_group_arn: %s%s}\n", m[0], m[1], m[2], m[3])
	}
	return cfg + fmt.Sprintf("dns: {servers: [%q], timeout: 500ms}\npoll: {min: 1s, max: 30s}\n", w.dns.Addr())
}

// TestSIGTERMMidSlowPass (issue 9 item 12): ECS sends SIGTERM and kills the task 30 s later. The daemon gets
// SIGTERM while AWS takes 9 s per call, in the pass that registers B and would then deregister A
// (deregister_after 1): that pass alone would take 27 s more. The daemon exits 0 within 20 s, starts no
// deregistration, and its log says which mapping's pass was cut short.
func TestSIGTERMMidSlowPass(t *testing.T) {
	const a, b = "10.0.1.10", "10.0.2.20"
	w := newFakeWorld(t, elbv2fake.Options{})
	w.dns.SetA(endpoint, 1, a)
	p := startDaemon(t, w.mappingConfig([4]string{"orders", endpoint, w.group.ARN, ", deregister_after: 1"}))
	waitFakeLive(t, w, 15*time.Second, a)

	slow := make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	w.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if armed.CompareAndSwap(true, false) {
			close(slow) // the failover pass's first call
		}
		return &elbv2fake.Fault{Delay: 9 * time.Second}
	})
	w.dns.SetA(endpoint, 1, b)
	select {
	case <-slow:
	case <-time.After(15 * time.Second):
		t.Fatal("no AWS call within 15 s of the failover")
	}
	time.Sleep(time.Second) // mid-call
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termed := time.Now()
	select {
	case <-p.done:
	case <-time.After(25 * time.Second):
		t.Fatalf("still running 25 s after SIGTERM; ECS kills it at 30 s")
	}
	if took := time.Since(termed); took > 20*time.Second {
		t.Fatalf("exited %s after SIGTERM, want within 20 s", took.Round(time.Millisecond))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	for _, c := range w.fake.MutatingCalls() {
		if c.Action == "DeregisterTargets" && !c.At.Before(termed) {
			t.Fatalf("DeregisterTargets %v started after SIGTERM", c.TargetIPs())
		}
	}
	if got := fakeLive(w.fake, w.group.ARN); !slices.Contains(got, netip.MustParseAddr(a)) {
		t.Fatalf("the group holds %v after the shutdown: A must still be there", got)
	}
	var cut bool
	for _, l := range logLines(p.out.String()) {
		if l["msg"] == "stopping: passes still in flight after the grace are cut short: their calls are cancelled; the next start reads the target group and finishes the job" &&
			fmt.Sprint(l["syncs"]) == "[orders]" {
			cut = true
		}
	}
	if !cut {
		t.Fatalf("no log line says the pass of orders was cut short:\n%s", p.out.String())
	}
}

// TestSIGHUPReloads (issue 9 item 6): SIGHUP reloads the configuration file. A valid change starts the added
// mapping and keeps the unchanged one with its memory; an invalid change is logged and the running configuration
// stays. orders runs with prune: false, so it deregisters only targets it remembers registering: A leaving after
// the reloads shows that orders kept its memory.
func TestSIGHUPReloads(t *testing.T) {
	const a, b, c = "10.0.1.10", "10.0.2.20", "10.0.3.30"
	w := newFakeWorld(t, elbv2fake.Options{})
	reports := awstest.NewTargetGroup(t, 5432)
	w.dns.SetA(endpoint, 1, a)
	w.dns.SetA("reports.rds.test", 1, b)
	orders := [4]string{"orders", endpoint, w.group.ARN, ", prune: false"}
	path := filepath.Join(t.TempDir(), "ipsync.yaml")
	write := func(cfg string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(w.mappingConfig(orders))
	p := startDaemon(t, path) // IPSYNC_CONFIG is the file's path
	waitFakeLive(t, w, 15*time.Second, a)
	hangup := func(wantMsg string) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 10*time.Second, "the log says "+wantMsg, func() bool {
			return strings.Contains(p.out.String(), wantMsg)
		})
	}

	write(w.mappingConfig(orders, [4]string{"reports", "reports.rds.test", reports.ARN, ""}))
	hangup(`"msg":"SIGHUP: configuration reloaded"`)
	waitFakeLive(t, w, 15*time.Second, a)
	testutil.Eventually(t, 15*time.Second, "reports, added by the reload, registers B", func() bool {
		return slices.Equal(fakeLive(w.fake, reports.ARN), addrs(b))
	})
	if !strings.Contains(p.out.String(), `"kept":["orders"]`) || !strings.Contains(p.out.String(), `"added":["reports"]`) {
		t.Fatalf("the reload line does not say orders was kept and reports added:\n%s", p.out.String())
	}

	write("syncs:\n  - {name: orders, endpoint: " + endpoint + ", target_group_arn: " + w.group.ARN + ", prune: maybe}\n")
	hangup(`"msg":"SIGHUP: configuration not reloaded, the running one stays: fix it and send SIGHUP again"`)

	// Both mappings still run, and orders still knows it registered A.
	w.dns.SetA(endpoint, 1, c)
	waitFakeLive(t, w, 20*time.Second, c)
	select {
	case <-p.done:
		t.Fatalf("the daemon exited:\n%s", p.out.String())
	default:
	}
}
