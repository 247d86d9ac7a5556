package budget_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/targets"
)

const tgARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef"

// burst runs describes DescribeTargetHealth and registers RegisterTargets calls at once through client and returns
// how many failed.
func burst(t *testing.T, client *targets.Client, arns []string, describes, registers int) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	note := func(err error) {
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			failed++
		}
	}
	for i := range describes {
		wg.Go(func() { _, err := client.Health(context.Background(), arns[i%len(arns)]); note(err) })
	}
	for i := range registers {
		ip := netip.AddrFrom4([4]byte{10, 0, 1, byte(1 + i)})
		wg.Go(func() { note(client.Register(context.Background(), arns[i%len(arns)], []nlb.Target{{IP: ip}})) })
	}
	wg.Wait()
	return failed
}

func fleet(t *testing.T, n int) (*elbv2fake.Server, []string) {
	t.Helper()
	lim := elbv2fake.PublishedLimits()
	fake := elbv2fake.Start(t, elbv2fake.Options{Limits: &lim})
	if err := fake.AddVPC("vpc-1", "10.0.0.0/16"); err != nil {
		t.Fatal(err)
	}
	var arns []string
	for i := range n {
		arns = append(arns, fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: fmt.Sprintf("tg-%d", i), Port: 5432, VPCID: "vpc-1"}))
	}
	return fake, arns
}

// I11: a burst of calls far above AWS's limits, at once, gets no Throttling answer when the budget is at those
// very limits; the same burst without a budget does. Retries are off, so every throttled call shows.
func TestI11BudgetKeepsCallsUnderAWSLimits(t *testing.T) {
	fake, arns := fleet(t, 8)
	b := budget.New(budget.Rates{Describe: 10, Mutate: 4}, nil)
	client := fake.ClientWith(targets.FactoryOptions{Budget: b, MaxAttempts: 1})
	if failed := burst(t, client, arns, 30, 8); failed != 0 || fake.ThrottledCalls() != 0 {
		t.Errorf("with the budget: %d calls failed, %d throttled; want 0", failed, fake.ThrottledCalls())
	}

	fake, arns = fleet(t, 8)
	client = fake.ClientWith(targets.FactoryOptions{MaxAttempts: 1})
	if failed := burst(t, client, arns, 30, 8); failed == 0 || fake.ThrottledCalls() == 0 {
		t.Errorf("without a budget the same burst was not throttled (%d failed): the test shows nothing", failed)
	}
}

// Every attempt takes a token, retries included: one call that fails twice with a 500 before it succeeds
// waits for the budget three times.
func TestI11RetriesWaitForTheBudget(t *testing.T) {
	fake, arns := fleet(t, 1)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	b := budget.New(budget.Rates{Describe: 10, Mutate: 4}, m)
	client := fake.ClientWith(targets.FactoryOptions{Budget: b, MaxAttempts: 3})
	fake.FailNext("DescribeTargetHealth", 2, elbv2fake.InternalFailure())
	if _, err := client.Health(context.Background(), arns[0]); err != nil {
		t.Fatal(err)
	}
	if got := budgetWaits(t, reg, "describe"); got != 3 {
		t.Errorf("budget waits for one call with two retries = %d, want 3 (one per attempt)", got)
	}
	if got := budgetWaits(t, reg, "mutate"); got != 0 {
		t.Errorf("mutate budget waits = %d, want 0", got)
	}
}

// The RDS client of targets.Factory (membership reads of rds: mappings) draws from the account's RDS Describe
// bucket, the ELBv2 client from its Describe bucket: one budget per account and region covers both services.
func TestI11RDSCallsDrawFromTheirOwnBucket(t *testing.T) {
	fake := elbv2fake.Start(t, elbv2fake.Options{})
	reg := prometheus.NewRegistry()
	b := budget.New(budget.Rates{Describe: 10, Mutate: 4}, metrics.New(reg, metrics.BuildInfo{}))
	f := targets.NewFactoryFromConfig(aws.Config{Credentials: credentials.NewStaticCredentialsProvider("fake", "fake", "")},
		targets.FactoryOptions{Budget: b, EndpointURL: fake.URL(), MaxAttempts: 1})
	c, err := f.RDS(context.Background(), tgARN, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeDBInstances(context.Background(), &rds.DescribeDBInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	if got := budgetWaits(t, reg, "rds_describe"); got != 1 {
		t.Errorf("rds_describe budget waits for one DescribeDBInstances = %d, want 1", got)
	}
	if got := budgetWaits(t, reg, "describe"); got != 0 {
		t.Errorf("describe (ELBv2) budget waits = %d, want 0", got)
	}
}

// A failover's call (Urgent) takes the next token: it does not wait behind calls that are not urgent, which keep a
// token in the bucket for it.
func TestI11UrgentCallsGoFirst(t *testing.T) {
	b := budget.New(budget.Rates{Describe: 2, Mutate: 2}, nil)
	acct, err := b.For(tgARN)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 8)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := acct.Wait(context.Background(), budget.Describe, time.Minute); err != nil {
				t.Error(err)
			}
			done <- fmt.Sprintf("background %d", i)
		})
	}
	<-done // the first background call went at once, the others queue: 1 token in the bucket, kept for urgent calls
	if _, err := acct.Wait(budget.Urgent(context.Background()), budget.Describe, time.Minute); err != nil {
		t.Fatal(err)
	}
	done <- "urgent"
	wg.Wait()
	close(done)
	var order []string
	for s := range done {
		order = append(order, s)
	}
	if order[0] != "urgent" {
		t.Errorf("completion order after the first call: %v; the urgent call waited behind background calls", order)
	}
}

func TestKindOf(t *testing.T) {
	for _, c := range []struct {
		service, op string
		want        budget.Kind
		ok          bool
	}{
		{"Elastic Load Balancing v2", "DescribeTargetHealth", budget.Describe, true},
		{"Elastic Load Balancing v2", "DescribeTargetGroups", budget.Describe, true},
		{"Elastic Load Balancing v2", "DescribeTags", budget.Describe, true},
		{"Elastic Load Balancing v2", "RegisterTargets", budget.Mutate, true},
		{"Elastic Load Balancing v2", "DeregisterTargets", budget.Mutate, true},
		{"Elastic Load Balancing v2", "AddTags", budget.Mutate, true},
		{"Elastic Load Balancing v2", "RemoveTags", budget.Mutate, true},
		{"RDS", "DescribeDBClusters", budget.RDSDescribe, true},
		{"EC2", "DescribeVpcs", "", false},
		{"Resource Groups Tagging API", "GetResources", budget.Describe, true},
		{"Resource Groups Tagging API", "TagResources", "", false},
		{"STS", "AssumeRole", "", false},
	} {
		got, ok := budget.KindOf(c.service, c.op)
		if got != c.want || ok != c.ok {
			t.Errorf("KindOf(%q, %q) = %q, %v; want %q, %v", c.service, c.op, got, ok, c.want, c.ok)
		}
	}
}

func TestKeyOf(t *testing.T) {
	account, region, err := budget.KeyOf(tgARN)
	if err != nil || account != "123456789012" || region != "us-east-1" {
		t.Errorf("KeyOf = %q, %q, %v", account, region, err)
	}
	if _, _, err := budget.KeyOf("not-an-arn"); err == nil {
		t.Error("KeyOf accepted a bad ARN")
	}
}

// budgetWaits is the sample count of ipsync_aws_budget_wait_seconds{budget=kind}.
func budgetWaits(t *testing.T, reg *prometheus.Registry, kind string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ipsync_aws_budget_wait_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "budget" && l.GetValue() == kind {
					return s.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	t.Fatalf("no ipsync_aws_budget_wait_seconds{budget=%q}", kind)
	return 0
}
