package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/discover"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

const discoverTag = "ipsync:endpoint"

// fleetEnv is a daemon with discovery over the env's backend, on wall time with short intervals.
type fleetEnv struct {
	*env
	eng   *engine.Engine
	fleet *engine.Fleet
	logs  *observer.ObservedLogs
}

func newFleetEnv(t *testing.T, e *env, static ...config.Sync) *fleetEnv {
	t.Helper()
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Syncs = static
	cfg.DNS.Servers = []string{e.dns.Addr()}
	cfg.Poll = config.Poll{Min: 100 * time.Millisecond, Max: time.Second}
	cfg.Discover = config.Discover{TagKey: discoverTag, Regions: []string{"us-east-1"}, Interval: config.MinDiscoverInterval}
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	eng := engine.New(cfg, engine.Deps{
		Resolver: e.res,
		Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil },
		Log:      log,
	}, engine.Options{FollowInterval: 100 * time.Millisecond})
	d := discover.New(cfg.Discover, discover.NewAWSClients(awsCfg, ""), discover.Options{})
	f := &fleetEnv{env: e, eng: eng, fleet: engine.NewFleet(eng, d, cfg, log), logs: logs}
	runEngine(t, eng)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.fleet.Run(ctx, 200*time.Millisecond) }() // faster than discover.interval allows
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// eventually waits up to 15 s for cond, then fails with what.
func (f *fleetEnv) eventually(what string, cond func() bool) {
	f.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within 15 s (mappings %v; calls %v)", what, f.eng.Names(), f.rec.Calls(""))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fleetEnv) wantIn(arn string, ips ...netip.Addr) func() bool {
	return func() bool { return slices.Equal(f.liveIn(arn), ips) }
}

func (e *env) tag(arn string, kv map[string]string) {
	e.t.Helper()
	if err := e.direct.AddTags(context.Background(), arn, kv); err != nil {
		e.t.Fatal(err)
	}
}

// TestDiscoveryWhileRunning: target groups tagged, retagged, untagged and deleted while the daemon runs are
// followed within a search; a removed tag stops the mapping and leaves its targets; a group both tagged and in
// syncs: runs as syncs: says. Against moto and our fake, through the real SDK.
func TestDiscoveryWhileRunning(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ipC, ipD := netip.MustParseAddr("10.0.3.30"), netip.MustParseAddr("10.0.4.40")
		e.dns.SetA("orders.example.com", 1, ipA.String())
		e.dns.SetA("orders-v2.example.com", 1, ipC.String())
		e.dns.SetA("reports.example.com", 1, ipB.String())
		e.dns.SetA(endpoint, 1, ipD.String())
		orders := e.group.ARN
		static := awstest.NewTargetGroup(t, port).ARN
		staticSync := config.DefaultSync()
		staticSync.Name, staticSync.Endpoint, staticSync.TargetGroupARN = "static", endpoint, static
		e.tag(orders, map[string]string{discoverTag: "orders.example.com"})
		f := newFleetEnv(t, e, staticSync)
		f.tag(static, map[string]string{discoverTag: "reports.example.com"}) // refused: syncs[0] has it

		f.eventually("the tagged group gets the address of its tag's name", f.wantIn(orders, ipA))
		f.eventually("the static mapping runs as configured", f.wantIn(static, ipD))

		reports := awstest.NewTargetGroup(t, port).ARN
		f.tag(reports, map[string]string{discoverTag: "reports.example.com"})
		f.eventually("a group tagged while running is followed", f.wantIn(reports, ipB))

		f.tag(orders, map[string]string{discoverTag: "orders-v2.example.com"})
		f.eventually("a retagged group follows its new name, old address removed", f.wantIn(orders, ipC))

		// A failover in a discovered mapping is followed like any other.
		e.dns.SetA("reports.example.com", 1, ipA.String())
		f.eventually("a failover in a discovered mapping", f.wantIn(reports, ipA))

		// Untagged: the mapping stops and its targets stay, whatever DNS says after.
		if err := e.direct.RemoveTags(context.Background(), reports, []string{discoverTag}); err != nil {
			t.Fatal(err)
		}
		f.eventually("an untagged group's mapping stops", func() bool { return !slices.Contains(f.eng.Names(), groupName(t, reports)) })
		e.dns.SetA("reports.example.com", 1, ipB.String())
		time.Sleep(time.Second) // several TTLs and searches
		if got := f.liveIn(reports); !slices.Equal(got, []netip.Addr{ipA}) {
			t.Fatalf("an untagged group was touched: %v, want [%v]", got, ipA)
		}

		if got := f.liveIn(static); !slices.Equal(got, []netip.Addr{ipD}) {
			t.Fatalf("the static mapping of a tagged group: %v", got)
		}
		if !slices.ContainsFunc(f.logs.FilterMessage("discovery: tagged target group refused").All(), func(l observer.LoggedEntry) bool {
			return strings.Contains(fmt.Sprint(l.ContextMap()["error"]), "is also syncs[0] (static)")
		}) {
			t.Fatalf("a group both tagged and in syncs: must be refused with a clear error: %v", f.logs.All())
		}

		// Deleted (its targets deregistered first, as Terraform's destroy would see them): the mapping goes.
		if err := e.direct.Deregister(context.Background(), orders, []nlb.Target{{IP: ipC, Port: port}}); err != nil {
			t.Fatal(err)
		}
		deleteGroup(t, orders)
		f.eventually("a deleted group's mapping stops", func() bool { return !slices.Contains(f.eng.Names(), groupName(t, orders)) })
	})
}

// TestDiscoveryFailureKeepsMappings: a search that fails keeps the mappings found before (unknown is never "no
// groups"); the next successful one applies again.
func TestDiscoveryFailureKeepsMappings(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA("orders.example.com", 1, ipA.String())
	e.tag(e.group.ARN, map[string]string{discoverTag: "orders.example.com"})
	f := newFleetEnv(t, e)
	f.eventually("the tagged group is followed", f.wantIn(e.group.ARN, ipA))
	name := groupName(t, e.group.ARN)

	e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action != "GetResources" {
			return nil
		}
		f := elbv2fake.AccessDenied("GetResources")
		return &f
	})
	if err := e.direct.RemoveTags(context.Background(), e.group.ARN, []string{discoverTag}); err != nil {
		t.Fatal(err)
	}
	f.eventually("searches fail", func() bool { return f.logs.FilterMessageSnippet("discovery failed").Len() >= 3 })
	if !slices.Contains(f.eng.Names(), name) {
		t.Fatalf("a failed search stopped a mapping: %v", f.eng.Names())
	}
	e.dns.SetA("orders.example.com", 1, ipB.String())
	f.eventually("the kept mapping still follows a failover", f.wantIn(e.group.ARN, ipB))

	e.fake.SetFault(nil)
	f.eventually("the next successful search applies the removed tag", func() bool { return !slices.Contains(f.eng.Names(), name) })
}

// groupName is the target group's name, which names its discovered mapping.
func groupName(t *testing.T, arn string) string {
	t.Helper()
	_, rest, _ := strings.Cut(arn, ":targetgroup/")
	name, _, _ := strings.Cut(rest, "/")
	return name
}

func deleteGroup(t *testing.T, arn string) {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := elbv2.NewFromConfig(cfg).DeleteTargetGroup(context.Background(), &elbv2.DeleteTargetGroupInput{TargetGroupArn: &arn}); err != nil {
		t.Fatalf("DeleteTargetGroup: %v", err)
	}
}
