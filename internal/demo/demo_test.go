package demo_test

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/demo"
	"github.com/ipsync/ipsync/internal/elbv2fake"
)

// fast is a short demo: a failover every 3s, the databases in turn. A database followed by name converges within
// ~2.5s (TTL for the engine to see it, one more TTL before the old address goes (deregister_after 2), then
// draining); the cluster followed through the RDS API needs up to rds.refresh (5s) more.
func fast() demo.Options {
	return demo.Options{
		TTL:           time.Second,
		FailoverEvery: 3 * time.Second,
		HealthyAfter:  500 * time.Millisecond,
		DrainFor:      500 * time.Millisecond,
	}
}

// run runs the demo to its end and returns its output and summary.
func run(t *testing.T, ctx context.Context, opts demo.Options) (string, demo.Summary, time.Duration) {
	t.Helper()
	var out bytes.Buffer
	var sum *demo.Summary
	opts.OnSummary = func(s demo.Summary) { sum = &s }
	start := time.Now()
	err := demo.Run(ctx, &out, opts)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	if sum == nil {
		t.Fatalf("Run returned without calling OnSummary\noutput:\n%s", out.String())
	}
	return out.String(), *sum, took
}

// desiredAt is what the demo's history says the mapping's source stood for at t: what DNS served, or the
// addresses of the members RDS listed in the group's role.
func desiredAt(history []demo.SourceChange, t time.Time) []netip.Addr {
	var desired []netip.Addr
	for _, c := range history {
		if c.At.After(t) {
			break
		}
		desired = c.Addrs
	}
	return desired
}

// The Aurora cluster followed through the RDS API (rds: mappings inventory-writer and inventory-reader).
var (
	inventory1 = netip.MustParseAddr("10.0.1.60") // the writer at the start
	inventory2 = netip.MustParseAddr("10.0.2.61") // the writer after the first failover
	inventory3 = netip.MustParseAddr("10.0.3.62") // a reader throughout the first failover
)

// TestScenario runs the whole demo headless, as a pipe would see it, long enough for every database to fail over
// once and converge: the Multi-AZ instance at 4-5s, the Aurora cluster followed by name at 8-9s, and the Aurora
// cluster followed through the RDS API at 12-13s, which needs up to rds.refresh (5s) to be seen, then a TTL or
// two and the drain. Each database fails over every 12s, so the RDS one converges well before its next
// failover.
func TestScenario(t *testing.T) {
	// The demo must not depend on the user's AWS environment: with these set, anything that loaded the shared
	// configuration would fail (no such profile) or call nowhere (port 1).
	t.Setenv("AWS_PROFILE", "nonexistent")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "eu-west-1")

	opts := fast()
	opts.FailoverEvery = 4 * time.Second
	opts.Duration = 23 * time.Second
	out, sum, took := run(t, context.Background(), opts)
	t.Logf("output:\n%s", out)

	if took > opts.Duration+3*time.Second {
		t.Errorf("Run took %v for a %v demo", took, opts.Duration)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("plain output contains ANSI escape codes")
	}
	byName := map[string]demo.MappingSummary{}
	for _, m := range sum.Mappings {
		byName[m.Name] = m
	}
	for _, name := range []string{"orders", "analytics", "inventory-writer", "inventory-reader"} {
		if _, ok := byName[name]; !ok {
			t.Fatalf("summary has no mapping %s: %+v", name, sum.Mappings)
		}
	}
	t.Run("EveryGroupConvergesSafely", func(t *testing.T) { convergesSafely(t, out, sum) })
	t.Run("AuroraFailoverSwapsRoles", func(t *testing.T) { auroraSwapsRoles(t, out, byName) })
	t.Run("ReadersKeepTheirLiveReader", func(t *testing.T) { readersKeepLiveReader(t, sum, byName["inventory-reader"]) })
}

func convergesSafely(t *testing.T, out string, sum demo.Summary) {
	for _, m := range sum.Mappings {
		var converged []demo.Failover
		for _, f := range m.Failovers {
			if f.Converged {
				converged = append(converged, f)
			}
		}
		if len(converged) == 0 {
			t.Errorf("%s: no failover converged: %+v", m.Name, m.Failovers)
			continue
		}
		for _, f := range converged {
			if f.Registered <= 0 || f.Healthy < f.Registered || f.Gone < f.Deregistered || f.Deregistered <= 0 {
				t.Errorf("%s: failover #%d has inconsistent stages: %+v", m.Name, f.N, f)
			}
			if slices.Equal(f.From, f.To) {
				t.Errorf("%s: failover #%d did not move: %+v", m.Name, f.N, f)
			}
		}
		// Each failover changed the source once: the history is the start plus one entry per failover.
		if len(m.Desired) != len(m.Failovers)+1 {
			t.Errorf("%s: %d source changes for %d failovers", m.Name, len(m.Desired), len(m.Failovers))
		}
		if !strings.Contains(out, m.Name+" ") || !strings.Contains(out, "converged: failover #1") {
			t.Errorf("%s: the plain output does not report the converged failover", m.Name)
		}
	}
	if !strings.Contains(out, "analytics.cluster.demo.rds.local -> analytics-2.demo.rds.local -> 10.0.3.52") {
		t.Errorf("the Aurora failover did not show the CNAME chain moving to the other instance")
	}

	// I2, checked here from the fake's call log against the DNS and RDS history the demo drove, not from the
	// demo's own verdict (which must agree).
	byName := map[string]demo.MappingSummary{}
	for _, m := range sum.Mappings {
		byName[m.Name] = m
	}
	calls := map[string]int{}
	for _, c := range sum.Calls {
		calls[c.Action]++
		if c.Action != "DeregisterTargets" {
			continue
		}
		m, ok := byName[c.Mapping]
		if !ok {
			t.Errorf("DeregisterTargets of an unknown target group: %+v", c)
			continue
		}
		desired := desiredAt(m.Desired, c.At)
		for _, ip := range c.Targets {
			if slices.Contains(desired, ip) {
				t.Errorf("%s: DeregisterTargets of %s at %v while its source stood for %v", m.Name, ip, c.At.Sub(sum.Start), desired)
			}
		}
	}
	if len(sum.Violations) > 0 {
		t.Errorf("the demo reports I2 violations: %v", sum.Violations)
	}
	if calls["RegisterTargets"] < 8 || calls["DeregisterTargets"] < 4 {
		t.Errorf("calls %v: want the initial registrations plus a register and a deregister per failover", calls)
	}
	for _, c := range sum.Calls {
		if (c.Action == "RegisterTargets" || c.Action == "DeregisterTargets") && c.Code != "" {
			t.Errorf("%s failed with %s", c.Action, c.Code)
		}
	}

	// Steady state costs nothing: between a failover's convergence and the next change of that database,
	// no Register or Deregister call names its target group.
	for _, m := range sum.Mappings {
		for i, f := range m.Failovers {
			if !f.Converged {
				continue
			}
			from, until := f.At.Add(f.Gone), sum.End
			if i+1 < len(m.Failovers) {
				until = m.Failovers[i+1].At
			}
			for _, c := range sum.Calls {
				if c.Mapping == m.Name && (c.Action == "RegisterTargets" || c.Action == "DeregisterTargets") &&
					c.At.After(from) && c.At.Before(until) {
					t.Errorf("%s: %s at %v after failover #%d had converged", m.Name, c.Action, c.At.Sub(sum.Start), f.N)
				}
			}
		}
	}
}

// auroraSwapsRoles: after FailoverDBCluster makes inventory-2 the writer, the writer group holds inventory-2
// alone and the readers group holds the old writer and the reader that stayed, each address once.
func auroraSwapsRoles(t *testing.T, out string, byName map[string]demo.MappingSummary) {
	for _, tc := range []struct {
		name     string
		from, to []netip.Addr
	}{
		{"inventory-writer", []netip.Addr{inventory1}, []netip.Addr{inventory2}},
		{"inventory-reader", []netip.Addr{inventory2, inventory3}, []netip.Addr{inventory1, inventory3}},
	} {
		m := byName[tc.name]
		if src := "rds: {cluster: inventory, role: " + strings.TrimPrefix(tc.name, "inventory-") + "}"; m.Source != src {
			t.Errorf("%s follows %q, want %q", m.Name, m.Source, src)
		}
		if len(m.Failovers) != 1 {
			t.Fatalf("%s: %d failovers, want 1 (at 12-13s, the next at 24s): %+v", m.Name, len(m.Failovers), m.Failovers)
		}
		f := m.Failovers[0]
		if !slices.Equal(f.From, tc.from) || !slices.Equal(f.To, tc.to) {
			t.Errorf("%s: failover %v -> %v, want %v -> %v", m.Name, f.From, f.To, tc.from, tc.to)
		}
		if !f.Converged {
			t.Errorf("%s: the failover did not converge: %+v", m.Name, f)
		}
		// The end state is the swapped one: exactly the new role's addresses, healthy, once each.
		var live []netip.Addr
		for _, ts := range m.Targets {
			if ts.State != "healthy" || ts.Port != m.Port {
				t.Errorf("%s: target %s:%d %s at the end; want every target healthy on port %d", m.Name, ts.IP, ts.Port, ts.State, m.Port)
			}
			live = append(live, ts.IP)
		}
		slices.SortFunc(live, netip.Addr.Compare)
		if !slices.Equal(live, tc.to) {
			t.Errorf("%s: targets %v at the end, want %v", m.Name, live, tc.to)
		}
	}
	if !strings.Contains(out, "inventory #1: Aurora failover (FailoverDBCluster), writer inventory-1 (us-east-1a) -> inventory-2 (us-east-1b)") ||
		!strings.Contains(out, "RDS now lists writer inventory-2, readers inventory-1, inventory-3") {
		t.Errorf("the plain output does not report the Aurora failover and the new roles")
	}
}

// readersKeepLiveReader: inventory-3 is a reader before, during and after the failover, so the readers group
// never lets it go: no DeregisterTargets names it, the demo never saw it leave the live targets, and it is
// healthy at the end. This is what following the rotating reader endpoint by DNS gets wrong.
func readersKeepLiveReader(t *testing.T, sum demo.Summary, readers demo.MappingSummary) {
	for _, c := range sum.Calls {
		if c.Mapping == readers.Name && c.Action == "DeregisterTargets" && slices.Contains(c.Targets, inventory3) {
			t.Errorf("%s: DeregisterTargets of %s at %v: a live reader was deregistered", readers.Name, inventory3, c.At.Sub(sum.Start))
		}
	}
	for _, v := range sum.Violations {
		if strings.HasPrefix(v, readers.Name+":") {
			t.Errorf("the demo saw the readers group lose a live reader: %s", v)
		}
	}
	if !slices.ContainsFunc(readers.Targets, func(ts elbv2fake.TargetState) bool { return ts.IP == inventory3 && ts.State == "healthy" }) {
		t.Errorf("%s: %s is not a healthy target at the end: %+v", readers.Name, inventory3, readers.Targets)
	}
}

func TestReturnsPromptlyWhenCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	time.AfterFunc(2*time.Second, func() {
		cancelled <- time.Now()
		cancel()
	})
	out, sum, _ := run(t, ctx, fast()) // no Duration: only the cancel ends it
	returned := time.Now()
	if d := returned.Sub(<-cancelled); d > time.Second {
		t.Errorf("Run returned %v after the cancel; want promptly", d)
	}
	if !strings.Contains(out, "summary") {
		t.Errorf("no summary after the cancel:\n%s", out)
	}
	// The initial sync happened before the cancel: every target group got its first addresses.
	for _, m := range sum.Mappings {
		if len(m.Targets) == 0 {
			t.Errorf("%s: no target after 2s", m.Name)
		}
	}
}

func TestLiveView(t *testing.T) {
	t.Parallel()
	opts := fast()
	opts.Live = true
	opts.Duration = 1500 * time.Millisecond
	out, _, _ := run(t, context.Background(), opts)
	for _, want := range []string{
		"\x1b[2J",   // cleared once
		"\x1b[?25l", // cursor hidden while live...
		"\x1b[?25h", // ...and shown again at the end
		"Ctrl-C to stop",
		"orders", "analytics", "inventory-writer", "inventory-reader",
		"orders.demo.rds.local", "CNAME analytics-1.demo.rds.local -> A",
		"rds: {cluster: inventory, role: reader}", "inventory-2 A \x1b[1m10.0.2.61\x1b[0m (us-east-1b)",
		"healthy", "engine log",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("live output lacks %q", want)
		}
	}
	if n := strings.Count(out, "\x1b[H"); n < 3 {
		t.Errorf("%d frames in 1.5s; want about 4 a second", n)
	}
	if strings.Contains(out, `{"level"`) {
		t.Errorf("JSON log lines in the live view")
	}
	if i := strings.LastIndex(out, "\x1b[?25h"); !strings.Contains(out[i:], "summary") {
		t.Errorf("the summary is not printed after the live view ends")
	}
}

func TestRejectsOptionsItCannotShow(t *testing.T) {
	t.Parallel()
	for _, o := range []demo.Options{
		{TTL: 1500 * time.Millisecond},
		{TTL: 500 * time.Millisecond},
		{TTL: 5 * time.Second, FailoverEvery: 2 * time.Second},
		{DrainFor: -time.Second},
		{Duration: -time.Second},
	} {
		var out bytes.Buffer
		if err := demo.Run(context.Background(), &out, o); err == nil {
			t.Errorf("Run(%+v) = nil; want an error", o)
		} else if !strings.Contains(err.Error(), "demo:") {
			t.Errorf("error %q does not say it is the demo's", err)
		}
		if out.Len() != 0 {
			t.Errorf("Run(%+v) wrote output before refusing: %q", o, out.String())
		}
	}
}
