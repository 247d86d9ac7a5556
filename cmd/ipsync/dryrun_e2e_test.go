package main_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/testutil"
)

// childEnv is this test process's environment without its IPSYNC_* variables, plus extra: the environment of an
// ipsync process started by a test. CI sets IPSYNC_REQUIRE_MOTO and IPSYNC_REQUIRE_TOOLS for the tests
// themselves; ipsync reads neither and refuses IPSYNC_* variables that no flag of the command reads.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IPSYNC_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// TestDaemonDryRun (issue 9 item 2): `run` in shadow mode, from IPSYNC_DRY_RUN=true or --dry-run, plans and logs
// what it would do and makes no RegisterTargets or DeregisterTargets call (I8). The difference it never applies
// is logged once per resync_interval (60 s), not at every resolution (1 s TTL).
func TestDaemonDryRun(t *testing.T) {
	w := newWorld(t, true)
	w.dns.SetA(endpoint, 1, "10.0.1.10")
	for name, how := range map[string]struct {
		args []string
		env  []string
	}{
		"IPSYNC_DRY_RUN=true": {env: []string{"IPSYNC_DRY_RUN=true"}},
		"--dry-run":           {args: []string{"--dry-run"}},
	} {
		t.Run(name, func(t *testing.T) {
			queries := w.dns.Queries()
			p := startDaemonWith(t, w.config(""), how.args, how.env...)
			testutil.Eventually(t, 15*time.Second, "three dry passes planning the registration", func() bool {
				if muts := w.fake.MutatingCalls(); len(muts) != 0 {
					t.Fatalf("I8: a dry-run daemon made mutating calls: %v", muts)
				}
				return strings.Contains(p.out.String(), `"target group out of sync"`) && w.dns.Queries() >= queries+3
			})
			if n := strings.Count(p.out.String(), `"target group out of sync"`); n != 1 {
				t.Errorf("%d \"target group out of sync\" lines within a resync_interval, want 1:\n%s", n, p.out.String())
			}
			var started, planned bool
			for _, l := range logLines(p.out.String()) {
				switch l["msg"] {
				case "ipsync started":
					started = l["dry_run"] == true
				case "target group out of sync":
					planned = planned || l["dry_run"] == true
				}
			}
			if !started || !planned {
				t.Errorf("the log does not say dry_run on start (%v) and on the plan (%v):\n%s", started, planned, p.out.String())
			}
		})
	}
}

// TestEnvironmentNoFlagReads (issue 9 item 2): an IPSYNC_* variable that no flag of the command reads is an
// error naming the variable and the command, not silence; an unreadable dry-run setting is an error, never live.
func TestEnvironmentNoFlagReads(t *testing.T) {
	for _, tc := range []struct {
		env  string
		args []string
		want []string
	}{
		{"IPSYNC_DRY_RUNN=true", []string{"sync"}, []string{"IPSYNC_DRY_RUNN", "ipsync sync"}},
		{"IPSYNC_DRY_RUN=true", []string{"status"}, []string{"IPSYNC_DRY_RUN", "ipsync status"}},
		{"IPSYNC_DRY_RUN=true", []string{"validate"}, []string{"IPSYNC_DRY_RUN", "ipsync validate"}},
		{"IPSYNC_DRY_RUN=maybe", []string{"run"}, []string{`IPSYNC_DRY_RUN="maybe"`, "--dry-run"}},
		{"IPSYNC_DRY_RUN=maybe", []string{"sync"}, []string{`IPSYNC_DRY_RUN="maybe"`, "--dry-run"}},
	} {
		code, out := run(t, []string{tc.env}, tc.args...)
		if code != 1 {
			t.Errorf("%s ipsync %v: exit %d, want 1:\n%s", tc.env, tc.args, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s ipsync %v: the error does not name %s:\n%s", tc.env, tc.args, w, out)
			}
		}
	}
	// healthcheck runs in the daemon's environment (an ECS health check): the daemon's variables are fine there.
	code, out := run(t, []string{"IPSYNC_DRY_RUN=true", "IPSYNC_LISTEN=" + freeAddr(t)}, "healthcheck")
	if code != 1 || strings.Contains(out, "IPSYNC_DRY_RUN") {
		t.Errorf("healthcheck with the daemon's IPSYNC_DRY_RUN and no daemon: exit %d, want 1 for the missing daemon alone:\n%s", code, out)
	}
	// version reads no configuration, so nothing in the environment can mislead it.
	if code, out := run(t, []string{"IPSYNC_DRY_RUNN=true"}, "version"); code != 0 {
		t.Errorf("version with a stray variable: exit %d:\n%s", code, out)
	}
}

// TestLambdaDryRunFromEnvironment (issue 9 item 2): IPSYNC_DRY_RUN=true makes the Lambda function plan only, for
// every event (a direct invocation's "dry_run": false included); an unreadable value fails init.
func TestLambdaDryRunFromEnvironment(t *testing.T) {
	w := newWorld(t, true)
	w.dns.SetA(endpoint, 1, "10.0.1.10")
	cfg := "IPSYNC_CONFIG=" + w.config("")

	rt := newRuntimeAPI(t)
	startFunction(t, binary, rt, cfg, "IPSYNC_DRY_RUN=true")
	for what, payload := range map[string][]byte{
		"scheduled":                 readFixture(t, "lambda-scheduled.json"),
		`direct {"dry_run": false}`: []byte(`{"dry_run": false}`),
	} {
		r := decodeResponse(t, what, rt.invoke(t, payload, 30*time.Second))
		if !r.DryRun || len(r.Syncs) != 1 || strings.Join(ips(r.Syncs[0].Registered), ",") != "10.0.1.10" {
			t.Errorf("%s: %+v, want a dry run that would register 10.0.1.10", what, r)
		}
	}
	if muts := w.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: IPSYNC_DRY_RUN=true, yet mutating calls: %v", muts)
	}

	initFails(t, binary, "IPSYNC_DRY_RUN", cfg, "IPSYNC_DRY_RUN=maybe")
}

// TestDryRunAmbiguousRefused is I8: contradictory dry-run settings (the flag twice with different values, or the
// flag and IPSYNC_DRY_RUN disagreeing) are a usage error naming both, and nothing is registered; before, the last
// value or the command line's won, and `sync --dry-run --dry-run=false` registered for real.
func TestDryRunAmbiguousRefused(t *testing.T) {
	w := newWorld(t, true)
	w.dns.SetA(endpoint, 1, "10.0.1.10")
	cfg := "IPSYNC_CONFIG=" + w.config("")
	for _, tc := range []struct {
		env  []string
		args []string
		want []string
	}{
		{nil, []string{"sync", "--dry-run", "--dry-run=false"}, []string{`for -dry-run: --dry-run was already given as true`}},
		{nil, []string{"sync", "--dry-run=true", "--dry-run=0"}, []string{`for -dry-run: --dry-run was already given as true`}},
		{[]string{"IPSYNC_DRY_RUN=true"}, []string{"sync", "--dry-run=false"}, []string{`IPSYNC_DRY_RUN="true"`, "--dry-run=false", "disagree"}},
		{nil, []string{"run", "--dry-run", "--dry-run=false"}, []string{`for -dry-run: --dry-run was already given as true`}},
		{[]string{"IPSYNC_DRY_RUN=true"}, []string{"run", "--dry-run=false"}, []string{`IPSYNC_DRY_RUN="true"`, "--dry-run=false", "disagree"}},
	} {
		code, out := run(t, append([]string{cfg, "IPSYNC_LISTEN="}, tc.env...), tc.args...)
		if code != 1 {
			t.Errorf("%v ipsync %v: exit %d, want 1 (a usage error):\n%s", tc.env, tc.args, code, out)
		}
		for _, want := range append(tc.want, "never run live") {
			if !strings.Contains(out, want) {
				t.Errorf("%v ipsync %v: the error does not say %q:\n%s", tc.env, tc.args, want, out)
			}
		}
		if muts := w.fake.MutatingCalls(); len(muts) != 0 {
			t.Fatalf("I8: %v ipsync %v made mutating calls: %v", tc.env, tc.args, muts)
		}
	}
	// The same setting twice is no ambiguity: a dry run.
	code, out := run(t, []string{cfg, "IPSYNC_DRY_RUN=true"}, "sync", "--dry-run", "--dry-run=1")
	if code != 0 || !strings.Contains(out, "would register") {
		t.Errorf("IPSYNC_DRY_RUN=true ipsync sync --dry-run --dry-run=1: exit %d, want 0 and a plan:\n%s", code, out)
	}
	if muts := w.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: an agreeing dry run made mutating calls: %v", muts)
	}
}
