package discover_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/discover"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

const tagKey = "ipsync:endpoint"

// awsConfig is the SDK's standard configuration, which awstest points at the emulator; one attempt per call, so
// that an injected fault is seen as it is.
func awsConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRetryer(func() aws.Retryer {
		return retry.AddWithMaxAttempts(retry.NewStandard(), 1)
	}))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func noBackoff(int, error) (time.Duration, error) { return 0, nil }

func discoverer(t *testing.T, cfg aws.Config, regions []string, opts discover.Options) *discover.Discoverer {
	t.Helper()
	dc := config.Discover{TagKey: tagKey, Regions: regions, Interval: config.DefaultDiscoverInterval}
	return discover.New(dc, discover.NewAWSClients(cfg, ""), opts)
}

// fleet creates target groups through the SDK, as Terraform would.
type fleet struct {
	t     *testing.T
	elb   *elbv2.Client
	vpcID string
}

func newFleet(t *testing.T, cfg aws.Config) *fleet {
	t.Helper()
	vpc, err := ec2.NewFromConfig(cfg).CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	return &fleet{t: t, elb: elbv2.NewFromConfig(cfg), vpcID: aws.ToString(vpc.Vpc.VpcId)}
}

func (f *fleet) create(name string, typ elbv2types.TargetTypeEnum, kv ...string) string {
	f.t.Helper()
	out, err := f.elb.CreateTargetGroup(context.Background(), &elbv2.CreateTargetGroupInput{
		Name: aws.String(name), Protocol: elbv2types.ProtocolEnumTcp, Port: aws.Int32(5432), VpcId: aws.String(f.vpcID),
		TargetType: typ, Tags: tagList(kv...),
	})
	if err != nil {
		f.t.Fatalf("CreateTargetGroup %s: %v", name, err)
	}
	return aws.ToString(out.TargetGroups[0].TargetGroupArn)
}

func (f *fleet) tag(arn string, kv ...string) {
	f.t.Helper()
	if _, err := f.elb.AddTags(context.Background(), &elbv2.AddTagsInput{ResourceArns: []string{arn}, Tags: tagList(kv...)}); err != nil {
		f.t.Fatalf("AddTags: %v", err)
	}
}

func (f *fleet) untag(arn string, keys ...string) {
	f.t.Helper()
	if _, err := f.elb.RemoveTags(context.Background(), &elbv2.RemoveTagsInput{ResourceArns: []string{arn}, TagKeys: keys}); err != nil {
		f.t.Fatalf("RemoveTags: %v", err)
	}
}

func (f *fleet) delete(arn string) {
	f.t.Helper()
	if _, err := f.elb.DeleteTargetGroup(context.Background(), &elbv2.DeleteTargetGroupInput{TargetGroupArn: &arn}); err != nil {
		f.t.Fatalf("DeleteTargetGroup: %v", err)
	}
}

func tagList(kv ...string) []elbv2types.Tag {
	var out []elbv2types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, elbv2types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func dnsMapping(name, arn, endpoint string) config.Sync {
	s := config.DefaultSync()
	s.Name, s.TargetGroupARN, s.Endpoint = name, arn, endpoint
	return s
}

func syncs(ms []discover.Mapping) []config.Sync {
	var out []config.Sync
	for _, m := range ms {
		out = append(out, m.Sync)
	}
	return out
}

// Tagged groups are found with their overrides; a group of the wrong type or with a bad override is skipped with
// an error naming it and the tag; retagging, removing the tag and deleting the group are followed; a group that
// is also in syncs: is refused. Against moto and our fake, through the real SDK.
func TestDiscoverFollowsTags(t *testing.T) {
	awstest.Backends(t, func(t *testing.T, ep awstest.Endpoint) {
		cfg := awsConfig(t)
		f := newFleet(t, cfg)
		orders := f.create("orders", elbv2types.TargetTypeEnumIp, tagKey, "orders.example.com", "team", "db")
		readers := f.create("readers", elbv2types.TargetTypeEnumIp, tagKey, "rds:cluster/orders/reader",
			config.TagPort, "6432", config.TagPrune, "false", config.TagDeregisterAfter, "3")
		instances := f.create("instances", elbv2types.TargetTypeEnumInstance, tagKey, "inst.example.com")
		badPort := f.create("badport", elbv2types.TargetTypeEnumIp, tagKey, "bad.example.com", config.TagPort, "54x")
		f.create("untagged", elbv2types.TargetTypeEnumIp)
		f.create("other", elbv2types.TargetTypeEnumIp, "team", "db")
		d := discoverer(t, cfg, []string{"us-east-1"}, discover.Options{})

		res := d.Discover(context.Background())
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		readerSync := config.DefaultSync()
		readerSync.Name, readerSync.TargetGroupARN = "readers", readers
		readerSync.Port, readerSync.Prune, readerSync.DeregisterAfter = 6432, false, 3
		readerSync.RDS = &config.RDS{Cluster: "orders", Role: "reader", Refresh: config.DefaultRDSRefresh}
		want := []discover.Mapping{
			{Sync: dnsMapping("orders", orders, "orders.example.com"), Source: discover.Source{Endpoint: "orders.example.com"}, Region: "us-east-1"},
			{Sync: readerSync, Source: discover.Source{RDS: &discover.RDSSource{Cluster: "orders", Role: "reader"}}, Region: "us-east-1"},
		}
		if orders > readers {
			want[0], want[1] = want[1], want[0]
		}
		if !reflect.DeepEqual(res.Mappings, want) {
			t.Errorf("mappings:\n got %+v\nwant %+v", res.Mappings, want)
		}
		valid := config.Defaults()
		valid.Syncs = syncs(res.Mappings)
		if err := valid.Validate(); err != nil {
			t.Errorf("discovered mappings are not a valid configuration: %v", err)
		}
		skipped := map[string]string{}
		for _, e := range res.Skipped {
			skipped[e.TargetGroupARN] = e.Error()
		}
		if len(skipped) != 2 ||
			!strings.Contains(skipped[instances], "target group "+instances+`: has target type "instance"; ipsync registers IP addresses`) ||
			!strings.Contains(skipped[badPort], "target group "+badPort+`: tag ipsync:port: "54x": expected a port 1-65535`) {
			t.Errorf("skipped: %q", skipped)
		}

		// Retagged, tag removed, bad tag fixed, wrong-type group deleted.
		f.tag(orders, tagKey, "orders-v2.example.com")
		f.untag(readers, tagKey)
		f.tag(badPort, config.TagPort, "5433")
		f.delete(instances)
		res2 := d.Discover(context.Background())
		fixed := dnsMapping("badport", badPort, "bad.example.com")
		fixed.Port = 5433
		wantSyncs := map[string]config.Sync{orders: dnsMapping("orders", orders, "orders-v2.example.com"), badPort: fixed}
		got := map[string]config.Sync{}
		for _, s := range syncs(res2.Mappings) {
			got[s.TargetGroupARN] = s
		}
		if res2.Err() != nil || len(res2.Skipped) != 0 || !reflect.DeepEqual(got, wantSyncs) {
			t.Errorf("after retagging: %+v (skipped %v, err %v), want %+v", got, res2.Skipped, res2.Err(), wantSyncs)
		}
		if applied := res2.Apply(res.Mappings); !reflect.DeepEqual(applied, res2.Mappings) {
			t.Errorf("Apply after a successful search kept %+v", applied)
		}

		// A group in both syncs: and discovery runs as configured; the discovered one is refused.
		static := []config.Sync{dnsMapping("orders-static", orders, "orders.example.com")}
		merged, refused := discover.Merge(static, res2.Mappings)
		if !reflect.DeepEqual(merged, []config.Sync{static[0], fixed}) || len(refused) != 1 ||
			!strings.Contains(refused[0].Error(), "target group "+orders+": is also syncs[0] (orders-static) in the configuration; a target group belongs to one mapping") {
			t.Errorf("Merge = %+v, %v", merged, refused)
		}
	})
}

// A search that fails is unknown: the region's mappings are kept, and the error says what to allow.
func TestDiscoverFailureKeepsMappings(t *testing.T) {
	ep := awstest.Fake(t, elbv2fake.Options{})
	cfg := awsConfig(t)
	f := newFleet(t, cfg)
	orders := f.create("orders", elbv2types.TargetTypeEnumIp, tagKey, "orders.example.com")
	d := discoverer(t, cfg, []string{"us-east-1"}, discover.Options{CallTimeout: 200 * time.Millisecond})
	before := d.Discover(context.Background())
	if before.Err() != nil || len(before.Mappings) != 1 {
		t.Fatalf("first search: %+v", before)
	}

	for name, fail := range map[string]func(){
		"GetResources denied": func() { ep.Fake.FailNext("GetResources", 1, elbv2fake.AccessDenied("GetResources")) },
		"DescribeTargetGroups failing": func() {
			ep.Fake.FailNext("DescribeTargetGroups", 1, elbv2fake.ServiceUnavailable())
		},
		"GetResources past its deadline": func() {
			ep.Fake.FailNext("GetResources", 1, elbv2fake.Fault{Delay: 5 * time.Second})
		},
	} {
		t.Run(name, func(t *testing.T) {
			fail()
			res := d.Discover(context.Background())
			if res.Failed["us-east-1"] == nil || len(res.Mappings) != 0 {
				t.Fatalf("failed search: %+v", res)
			}
			if kept := res.Apply(before.Mappings); !reflect.DeepEqual(kept, before.Mappings) {
				t.Errorf("Apply after a failed search = %+v, want the mappings kept: %+v", kept, before.Mappings)
			}
			t.Log(res.Err())
		})
	}
	res := d.Discover(context.Background())
	if res.Err() != nil || len(res.Mappings) != 1 {
		t.Errorf("search after the faults: %+v", res)
	}

	ep.Fake.FailNext("GetResources", 1, elbv2fake.AccessDenied("GetResources"))
	err := d.Discover(context.Background()).Err()
	if err == nil || !strings.Contains(err.Error(), "allow tag:GetResources in the IAM policy") ||
		!strings.Contains(err.Error(), "discovering target groups tagged ipsync:endpoint in us-east-1") {
		t.Errorf("denied search: %v", err)
	}

	// A bad tag on a group that ran keeps its mapping as it was; the error is still reported.
	f.tag(orders, config.TagPrune, "yes")
	res = d.Discover(context.Background())
	if len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Error(), `tag ipsync:prune: "yes": expected true or false`) {
		t.Errorf("skipped: %v", res.Skipped)
	}
	if kept := res.Apply(before.Mappings); !reflect.DeepEqual(kept, before.Mappings) {
		t.Errorf("Apply with a bad tag = %+v, want %+v", kept, before.Mappings)
	}
	if fresh := res.Apply(nil); len(fresh) != 0 {
		t.Errorf("a group never seen with good tags got a mapping: %+v", fresh)
	}
}

// The cost of one search at the per-region quota of 3,000 target groups, counted on the fake: 30 GetResources
// (100 tagged groups a page) and 8 DescribeTargetGroups (400 a page). Two shards split the fleet without overlap.
func TestDiscoverCostAndShards(t *testing.T) {
	ep := awstest.Fake(t, elbv2fake.Options{})
	const groups = 3000
	for i := range groups {
		arn := ep.Fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: fmt.Sprintf("db-%d", i), Port: 5432})
		if err := ep.Fake.SetTags(arn, map[string]string{tagKey: fmt.Sprintf("db-%d.example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Retries on, as in production: with this SDK, answers of this size from the fake sometimes lose their
	// connection mid-body ("use of closed network connection", which the SDK retries). Pages are counted once
	// each, by their marker.
	cfg := awsConfig(t)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts, o.Backoff = 10, retry.BackoffDelayerFunc(noBackoff)
			o.RateLimiter = ratelimit.None
		})
	}
	res := discoverer(t, cfg, []string{"us-east-1"}, discover.Options{}).Discover(context.Background())
	if res.Err() != nil || len(res.Mappings) != groups {
		t.Fatalf("found %d of %d groups: %v", len(res.Mappings), groups, res.Err())
	}
	pages := map[string]map[string]bool{}
	for _, c := range ep.Fake.Calls() {
		if pages[c.Action] == nil {
			pages[c.Action] = map[string]bool{}
		}
		pages[c.Action][c.Params.Get("Marker")+c.Params.Get("Body")] = true
	}
	if len(pages["GetResources"]) != 30 || len(pages["DescribeTargetGroups"]) != 8 || len(pages) != 2 {
		t.Errorf("pages for one search of %d groups: %d GetResources, %d DescribeTargetGroups (%d actions); want 30 and 8",
			groups, len(pages["GetResources"]), len(pages["DescribeTargetGroups"]), len(pages))
	}

	owner := map[string]int{}
	for i := range 2 {
		shard := config.Shard{Index: i, Count: 2}
		part := discoverer(t, cfg, []string{"us-east-1"}, discover.Options{Shard: shard}).Discover(context.Background())
		if part.Err() != nil {
			t.Fatal(part.Err())
		}
		for _, m := range part.Mappings {
			if !shard.Owns(m.Sync.TargetGroupARN) {
				t.Fatalf("shard %v found %s", shard, m.Sync.TargetGroupARN)
			}
			owner[m.Sync.TargetGroupARN]++
		}
		if n := len(part.Mappings); n < groups*4/10 || n > groups*6/10 {
			t.Errorf("shard %v has %d of %d groups", shard, n, groups)
		}
	}
	for _, m := range res.Mappings {
		if owner[m.Sync.TargetGroupARN] != 1 {
			t.Fatalf("%s is in %d shards", m.Sync.TargetGroupARN, owner[m.Sync.TargetGroupARN])
		}
	}
}

// Several regions: each is searched in its own region, and names carry the region so that they stay unique.
func TestDiscoverRegions(t *testing.T) {
	awstest.Fake(t, elbv2fake.Options{}) // its groups are all in us-east-1
	cfg := awsConfig(t)
	f := newFleet(t, cfg)
	orders := f.create("orders", elbv2types.TargetTypeEnumIp, tagKey, "orders.example.com")
	res := discoverer(t, cfg, []string{"us-east-1", "eu-west-1"}, discover.Options{}).Discover(context.Background())
	if res.Err() != nil || len(res.Mappings) != 1 || res.Mappings[0].Sync.Name != "orders.us-east-1" ||
		res.Mappings[0].Sync.TargetGroupARN != orders || res.Mappings[0].Region != "us-east-1" {
		t.Errorf("two regions: %+v, %v", res.Mappings, res.Err())
	}
}

// I11: a search's calls draw from the Describe bucket of the API budget, every attempt (retries too), as the
// mappings' reads do: GetResources and DescribeTargetGroups alike. Only the very first GetResources page of a
// region searched without role_arn goes before the account is known (from the groups it finds).
func TestDiscoverDrawsFromTheBudget(t *testing.T) {
	ep := awstest.Fake(t, elbv2fake.Options{})
	cfg := awsConfig(t)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts, o.Backoff, o.RateLimiter = 3, retry.BackoffDelayerFunc(noBackoff), ratelimit.None
		})
	}
	newFleet(t, cfg).create("orders", elbv2types.TargetTypeEnumIp, tagKey, "orders.example.com")
	reg := prometheus.NewRegistry()
	b := budget.New(budget.Rates{Describe: 1000, Mutate: 1000}, metrics.New(reg, metrics.BuildInfo{}))
	waits := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "ipsync_aws_budget_wait_seconds" && m.GetLabel()[0].GetValue() == string(budget.Describe) {
					return int(m.GetHistogram().GetSampleCount())
				}
			}
		}
		return 0
	}
	search := func(d *discover.Discoverer) (attempts, waited int) {
		t.Helper()
		ep.Fake.ResetCalls()
		before := waits()
		if res := d.Discover(context.Background()); res.Err() != nil || len(res.Mappings) != 1 {
			t.Fatalf("search: %+v, %v", res.Mappings, res.Err())
		}
		for _, c := range ep.Fake.Calls() {
			if c.Action == "GetResources" || c.Action == "DescribeTargetGroups" {
				attempts++
			}
		}
		return attempts, waits() - before
	}

	d := discoverer(t, cfg, []string{"us-east-1"}, discover.Options{Budget: b})
	if attempts, waited := search(d); attempts != 2 || waited != 1 {
		t.Errorf("first search: %d attempts, %d waited for the budget; want 2, and 1 (the first GetResources page "+
			"goes before the account is known)", attempts, waited)
	}
	ep.Fake.FailNext("DescribeTargetGroups", 1, elbv2fake.ServiceUnavailable())
	if attempts, waited := search(d); attempts != 3 || waited != attempts {
		t.Errorf("second search, one DescribeTargetGroups retried: %d attempts, %d waited for the budget; want 3 and 3", attempts, waited)
	}

	const role = "arn:aws:iam::123456789012:role/ipsync-discovery"
	dc := config.Discover{TagKey: tagKey, Regions: []string{"us-east-1"}, Interval: config.DefaultDiscoverInterval, RoleARN: role}
	withRole := discover.New(dc, discover.NewAWSClients(cfg, role), discover.Options{Budget: b})
	if attempts, waited := search(withRole); attempts != 2 || waited != 2 {
		t.Errorf("first search with role_arn: %d attempts, %d waited for the budget; want 2 and 2", attempts, waited)
	}
}
