package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
)

// urgency records, for each call, whether it was marked as a failover's (budget.Urgent).
type urgency struct {
	engine.TargetGroup
	rec *recorder
}

func (u urgency) mark(ctx context.Context, call string) {
	u.rec.log(fmt.Sprintf("%s urgent=%v", call, budget.IsUrgent(ctx)))
}

func (u urgency) Health(ctx context.Context, arn string) ([]nlb.TargetHealth, error) {
	u.mark(ctx, "Health")
	return u.TargetGroup.Health(ctx, arn)
}

func (u urgency) Register(ctx context.Context, arn string, ts []nlb.Target) error {
	u.mark(ctx, "Register "+fmt.Sprint(ts))
	return u.TargetGroup.Register(ctx, arn, ts)
}

func (u urgency) Deregister(ctx context.Context, arn string, ts []nlb.Target) error {
	u.mark(ctx, "Deregister "+fmt.Sprint(ts))
	return u.TargetGroup.Deregister(ctx, arn, ts)
}

// I11: the calls of a mapping whose addresses changed go first in the API budget, until its group is in sync;
// the first registration at start-up and drift re-reads wait their turn.
func TestI11FailoverCallsAreUrgent(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	rec := &recorder{}
	e.rec.TargetGroup = urgency{TargetGroup: e.direct, rec: rec}
	eng := e.engine(engine.Options{})

	mustOK(t, e.pass(eng))
	e.clock.Advance(config.DefaultResyncInterval) // a drift re-read is due
	mustOK(t, e.pass(eng))
	start := rec.Calls("")
	want := []string{"Health urgent=false", fmt.Sprintf("Register [%s:%d] urgent=false", ipA, port), "Health urgent=false"}
	if fmt.Sprint(start) != fmt.Sprint(want) {
		t.Fatalf("start-up and drift calls: %v, want %v", start, want)
	}

	e.dns.SetA(endpoint, 5, ipB.String())
	mustOK(t, e.pass(eng)) // registers B
	mustOK(t, e.pass(eng)) // deregisters A (deregister_after 2)
	failover := rec.Calls("")[len(start):]
	for _, c := range failover {
		if c[len(c)-len("urgent=true"):] != "urgent=true" {
			t.Errorf("failover call not urgent: %s (all: %v)", c, failover)
		}
	}
	if len(failover) < 3 {
		t.Fatalf("failover calls %v: want a read, Register B, Deregister A", failover)
	}

	// The next read finds the group in sync, which ends the failover: the read after it is a drift re-read.
	e.clock.Advance(config.DefaultResyncInterval)
	mustOK(t, e.pass(eng))
	e.clock.Advance(config.DefaultResyncInterval)
	mustOK(t, e.pass(eng))
	if last := rec.Calls(""); last[len(last)-1] != "Health urgent=false" {
		t.Errorf("after the failover, the group in sync: %v; the drift re-read must not be urgent", last[len(start)+len(failover):])
	}
}

// I11: when the mappings of one account and region would ask more DescribeTargetHealth a second than the budget
// affords, their drift re-reads are spaced out (and logged once), instead of queueing behind the budget.
func TestI11ResyncStretchesToFitTheBudget(t *testing.T) {
	const n = 100 // at aws.describe_rps 1: 100 / 0.8 = 125 s between re-reads instead of 60 s
	e := newFakeEnv(t, elbv2fake.Options{})
	var syncs []config.Sync
	for i := range n {
		s := config.DefaultSync()
		s.Name, s.Endpoint = fmt.Sprintf("db%d", i), fmt.Sprintf("db%d.c9abc.us-east-1.rds.test", i)
		s.TargetGroupARN = e.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: s.Name, Port: port, VPCID: e.group.VPCID})
		e.dns.SetA(s.Endpoint, 30, fmt.Sprintf("10.0.3.%d", i+1))
		syncs = append(syncs, s)
	}
	eng := e.engineWith(func(cfg *config.Config) { cfg.AWS.DescribeRPS = 1 }, engine.Options{}, syncs...)
	stretched := e.logs.FilterMessage("resync_interval stretched to keep drift re-reads within the AWS API budget").All()
	if len(stretched) != 1 || stretched[0].ContextMap()["effective_resync_interval"] != 125*time.Second ||
		stretched[0].ContextMap()["mappings"] != int64(n) {
		t.Fatalf("stretch logged %d times: %v", len(stretched), stretched)
	}

	healthCalls := func() int {
		count := 0
		for _, c := range e.fake.Calls() {
			if c.Action == "DescribeTargetHealth" {
				count++
			}
		}
		e.fake.ResetCalls()
		return count
	}
	eng.RunOnce(context.Background())
	healthCalls()
	e.clock.Advance(90 * time.Second) // past resync_interval, before the stretched interval
	eng.RunOnce(context.Background())
	if got := healthCalls(); got != 0 {
		t.Errorf("%d DescribeTargetHealth 90 s after the first pass; the stretched interval is 125 s", got)
	}
	e.clock.Advance(40 * time.Second)
	eng.RunOnce(context.Background())
	if got := healthCalls(); got != n {
		t.Errorf("%d DescribeTargetHealth 130 s after the first pass, want one per mapping (%d)", got, n)
	}
}

// The stretch of drift re-reads is logged when it starts, changes or ends, not at every reload: discovery reloads
// the engine after each search, and the same line every few minutes would only bury the others.
func TestI11StretchLoggedOncePerChange(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	var syncs []config.Sync
	for i := range 100 { // at aws.describe_rps 1: 125 s
		s := config.DefaultSync()
		s.Name, s.Endpoint = fmt.Sprintf("db%d", i), fmt.Sprintf("db%d.c9abc.us-east-1.rds.test", i)
		s.TargetGroupARN = e.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: s.Name, Port: port, VPCID: e.group.VPCID})
		syncs = append(syncs, s)
	}
	eng := e.engineWith(func(cfg *config.Config) { cfg.AWS.DescribeRPS = 1 }, engine.Options{}, syncs...)
	reload := func(n int) {
		cfg := config.Defaults()
		cfg.Syncs = syncs[:n]
		eng.Reload(cfg)
	}
	lines := func(msg string) []time.Duration {
		var out []time.Duration
		for _, l := range e.logs.FilterMessage(msg).All() {
			d, _ := l.ContextMap()["effective_resync_interval"].(time.Duration)
			out = append(out, d)
		}
		return out
	}
	const stretched, ended = "resync_interval stretched to keep drift re-reads within the AWS API budget",
		"resync_interval no longer stretched: the drift re-reads fit the AWS API budget"
	for range 3 {
		reload(100) // discovery found the same groups
	}
	reload(60) // 75 s
	reload(60)
	reload(10) // fits in 60 s
	reload(10)
	if got, want := lines(stretched), []time.Duration{125 * time.Second, 75 * time.Second}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stretch logged with %v, want once per change: %v", got, want)
	}
	if got := len(lines(ended)); got != 1 {
		t.Errorf("end of the stretch logged %d times, want 1", got)
	}
}
