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
)

// fast is a short demo: one failover per database within the first ~7s, each converging within ~2.5s
// (TTL for the engine to see it, one more TTL before the old address goes (deregister_after 2), then draining).
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

// servedAt is what the demo's DNS history says the endpoint resolved to at t.
func servedAt(history []demo.DNSChange, t time.Time) []netip.Addr {
	var served []netip.Addr
	for _, c := range history {
		if c.At.After(t) {
			break
		}
		served = c.Addrs
	}
	return served
}

func TestFailoversConvergeSafely(t *testing.T) {
	// The demo must not depend on the user's AWS environment: with these set, anything that loaded the shared
	// configuration would fail (no such profile) or call nowhere (port 1).
	t.Setenv("AWS_PROFILE", "nonexistent")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "eu-west-1")

	opts := fast()
	opts.Duration = 10 * time.Second // the second database fails over at 6-7s and needs up to ~2.5s
	out, sum, took := run(t, context.Background(), opts)
	t.Logf("output:\n%s", out)

	if took > opts.Duration+3*time.Second {
		t.Errorf("Run took %v for a %v demo", took, opts.Duration)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("plain output contains ANSI escape codes")
	}
	if len(sum.Mappings) != 2 {
		t.Fatalf("summary has %d mappings, want orders and analytics", len(sum.Mappings))
	}

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
			if f.From == f.To {
				t.Errorf("%s: failover #%d did not move: %+v", m.Name, f.N, f)
			}
		}
		// Each failover changed DNS once: the history is the start plus one entry per failover.
		if len(m.DNS) != len(m.Failovers)+1 {
			t.Errorf("%s: %d DNS changes for %d failovers", m.Name, len(m.DNS), len(m.Failovers))
		}
		if !strings.Contains(out, m.Name+" ") || !strings.Contains(out, "converged: failover #1") {
			t.Errorf("%s: the plain output does not report the converged failover", m.Name)
		}
	}
	if !strings.Contains(out, "analytics.cluster.demo.rds.local -> analytics-2.demo.rds.local -> 10.0.3.52") {
		t.Errorf("the Aurora failover did not show the CNAME chain moving to the other instance")
	}

	// I2, checked here from the fake's call log against the DNS history the demo drove, not from the demo's
	// own verdict (which must agree).
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
		served := servedAt(m.DNS, c.At)
		for _, ip := range c.Targets {
			if slices.Contains(served, ip) {
				t.Errorf("%s: DeregisterTargets of %s at %v while DNS served %v", m.Name, ip, c.At.Sub(sum.Start), served)
			}
		}
	}
	if len(sum.Violations) > 0 {
		t.Errorf("the demo reports I2 violations: %v", sum.Violations)
	}
	if calls["RegisterTargets"] < 4 || calls["DeregisterTargets"] < 2 {
		t.Errorf("calls %v: want the initial registrations plus a register and a deregister per failover", calls)
	}
	for _, c := range sum.Calls {
		if (c.Action == "RegisterTargets" || c.Action == "DeregisterTargets") && c.Code != "" {
			t.Errorf("%s failed with %s", c.Action, c.Code)
		}
	}

	// Steady state costs nothing: between a failover's convergence and the next DNS change of that database,
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
	// The initial sync happened before the cancel: both target groups got their first address.
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
		"orders", "analytics",
		"orders.demo.rds.local", "CNAME analytics-1.demo.rds.local -> A",
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
