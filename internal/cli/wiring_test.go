package cli

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
	"github.com/ipsync/ipsync/internal/testutil/promtest"
)

// TestDiscoveryDrawsFromTheBudget: the discovery that run, sync, status and the Lambda build searches within the
// factory's AWS API budget (I11), not beside it.
func TestDiscoveryDrawsFromTheBudget(t *testing.T) {
	ep := awstest.Fake(t, elbv2fake.Options{})
	arn := ep.Fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "orders", Port: 5432})
	if err := ep.Fake.SetTags(arn, map[string]string{"ipsync:endpoint": "orders.example.com"}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Discover = config.Discover{TagKey: "ipsync:endpoint", Regions: []string{"us-east-1"}, Interval: config.DefaultDiscoverInterval}
	reg := prometheus.NewRegistry()
	b := newBudget(cfg, metrics.New(reg, metrics.BuildInfo{}))
	factory, err := targets.NewFactory(context.Background(), targets.FactoryOptions{Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	d := newDiscoverer(cfg, factory, b, config.Shard{})
	for range 2 {
		if res := d.Discover(context.Background()); res.Err() != nil || len(res.Mappings) != 1 {
			t.Fatalf("search: %+v, %v", res.Mappings, res.Err())
		}
	}
	waited := promtest.Sum(t, reg, "ipsync_aws_budget_wait_seconds", "budget="+string(budget.Describe))
	// Two searches of 2 calls; the first GetResources goes before the account is known.
	if waited != 3 {
		t.Errorf("%v discovery calls waited for the Describe budget, want 3", waited)
	}
}
