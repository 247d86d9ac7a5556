package engine_test

// The log lines of a failover (README "The log lines of a failover"): what an operator greps for during an incident, with the same field
// names on every line.

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
)

// Fields every line of a mapping carries, and the names lists of addresses or targets go under. A line naming
// one address or target uses the list fields too, so that a log pipeline sees one type per field.
var (
	mappingFields = []string{"sync", "endpoint", "target_group"}
	listFields    = []string{"addresses", "from", "to", "targets"}
	// Names that would split a field an operator queries on across spellings.
	forbiddenFields = []string{"address", "target", "ip", "ips", "mapping", "tg", "target_group_arn", "err"}
)

// line is the first entry with message msg; the test fails without one.
func line(t *testing.T, logs *observer.ObservedLogs, msg string) (int, map[string]any) {
	t.Helper()
	for i, e := range logs.All() {
		if e.Message == msg {
			return i, e.ContextMap()
		}
	}
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	t.Fatalf("no %q line; the log has %q", msg, msgs)
	return 0, nil
}

// list is a list field's values as strings.
func list(t *testing.T, fields map[string]any, name string) []string {
	t.Helper()
	raw, ok := fields[name].([]any)
	if !ok {
		t.Fatalf("field %q is %T (%v), want a list", name, fields[name], fields[name])
	}
	out := make([]string, len(raw))
	for i, v := range raw {
		out[i], _ = v.(string)
	}
	return out
}

func TestFailoverLogLines(t *testing.T) {
	e := newMetricsEnv(t, elbv2fake.Options{HealthyAfter: 30 * time.Second, DrainFor: 20 * time.Second})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.metricsEngine(engine.Options{}, nil)
	for range 3 {
		mustOK(t, e.pass(eng))
	}
	e.logs.TakeAll() // start-up is not the failover

	e.dns.SetA(endpoint, 5, ipB.String())
	for range 16 { // B healthy after 30 s, seen at the next read of the group
		mustOK(t, e.pass(eng))
	}

	a, b := ipA.String()+":5432", ipB.String()+":5432"
	iDetected, detected := line(t, e.logs, "address change detected")
	if from, to := list(t, detected, "from"), list(t, detected, "to"); !slices.Equal(from, []string{ipA.String()}) || !slices.Equal(to, []string{ipB.String()}) {
		t.Errorf("address change detected: from %v to %v, want [%s] to [%s]", from, to, ipA, ipB)
	}
	iOut, out := line(t, e.logs, "target group out of sync")
	if got := list(t, out, "addresses"); !slices.Equal(got, []string{ipB.String()}) {
		t.Errorf("target group out of sync: addresses %v, want [%s]", got, ipB)
	}
	steps := []struct {
		msg    string
		target string
	}{
		{"registering targets", b},
		{"registered targets", b},
		{"deregistering targets", a},
		{"deregistered targets", a},
		{"target healthy", b},
	}
	prev := iOut
	for _, s := range steps {
		i, fields := line(t, e.logs, s.msg)
		if got := list(t, fields, "targets"); !slices.Equal(got, []string{s.target}) {
			t.Errorf("%s: targets %v, want [%s]", s.msg, got, s.target)
		}
		if s.msg == "target healthy" {
			d, ok := fields["since_change"].(time.Duration)
			if !ok || d < 30*time.Second || d > 95*time.Second {
				t.Errorf("target healthy: since_change %v, want the 30 s health checks plus at most a resync", fields["since_change"])
			}
			if i < prev {
				t.Errorf("target healthy logged before the registration")
			}
			continue
		}
		if i <= prev {
			t.Errorf("%q is line %d, before the previous step (line %d): want detected, out of sync, registering, registered, deregistering, deregistered", s.msg, i, prev)
		}
		prev = i
	}
	if iDetected > iOut {
		t.Error("out of sync logged before the address change")
	}

	for _, entry := range e.logs.All() {
		fields := entry.ContextMap()
		for _, f := range mappingFields {
			if fields[f] == nil || fields[f] == "" {
				t.Errorf("%q has no %s field: %v", entry.Message, f, fields)
			}
		}
		for _, f := range forbiddenFields {
			if _, ok := fields[f]; ok {
				t.Errorf("%q has a %q field: use one of %v", entry.Message, f, append(listFields, "error"))
			}
		}
		for _, f := range listFields {
			if v, ok := fields[f]; ok {
				if _, isList := v.([]any); !isList {
					t.Errorf("%q: field %s is %T, want a list like on every other line", entry.Message, f, v)
				}
			}
		}
	}
}

// TestFailedPassLogLine: a failed pass is logged with the error, the mapping, and the addresses ipsync last
// resolved, so that the line alone says what the target group should hold.
func TestFailedPassLogLine(t *testing.T) {
	e := newMetricsEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.metricsEngine(engine.Options{}, nil)
	mustOK(t, e.pass(eng))
	e.dns.SetFault(dnstest.FaultServFail)
	e.pass(eng)
	_, fields := line(t, e.logs, "sync pass failed")
	if msg, _ := fields["error"].(string); !strings.Contains(msg, "SERVFAIL") {
		t.Errorf("sync pass failed: error %q, want the DNS error", fields["error"])
	}
	if got := list(t, fields, "addresses"); !slices.Equal(got, []string{ipA.String()}) {
		t.Errorf("sync pass failed: addresses %v, want the last resolved [%s]", got, ipA)
	}
	for _, f := range mappingFields {
		if fields[f] == nil {
			t.Errorf("sync pass failed has no %s field", f)
		}
	}
}

// TestFailedRegistrationLoggedOnce: a refused registration is one log line, whose error names the targets and the
// target group once and carries the AWS error (the engine wraps, the AWS adapter does not).
func TestFailedRegistrationLoggedOnce(t *testing.T) {
	e := newMetricsEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.metricsEngine(engine.Options{}, nil)
	mustOK(t, e.pass(eng))
	e.logs.TakeAll()

	registerFails := onActions(elbv2fake.InternalFailure(), "RegisterTargets")
	e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault { return registerFails(action) })
	e.dns.SetA(endpoint, 5, ipB.String())
	e.pass(eng)
	var failures []string
	for _, entry := range e.logs.All() {
		if entry.Level >= zapcore.WarnLevel {
			failures = append(failures, entry.Message)
		}
	}
	if !slices.Equal(failures, []string{"sync pass failed"}) {
		t.Fatalf("warning and error lines %q, want one \"sync pass failed\"", failures)
	}
	_, fields := line(t, e.logs, "sync pass failed")
	msg, _ := fields["error"].(string)
	if n := strings.Count(msg, e.group.ARN); n != 1 || !strings.Contains(msg, "registering ["+ipB.String()+":5432]") ||
		!strings.Contains(msg, "InternalFailure") {
		t.Errorf("error %q: want the targets, the target group once (named %d times) and the AWS error", msg, n)
	}
}
