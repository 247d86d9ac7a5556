package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

// members is the engine's RDS seam for these tests: the production factory's RDS client, pointed by the
// standard configuration at the test's backend (moto or the fake), with few retries.
func (e *env) members() engine.MembersFunc {
	factory, err := targets.NewFactory(context.Background(), targets.FactoryOptions{MaxAttempts: 2})
	if err != nil {
		e.t.Fatalf("targets factory: %v", err)
	}
	return engine.MembersFromFactory(factory)
}

// rdsWorld is an RDS cluster or instance set up through the SDK on the test's backend, each instance's
// endpoint served by the test's DNS server with an address of its own.
type rdsWorld struct {
	e      *env
	client *rds.Client
	addrs  map[string]netip.Addr // by instance identifier
	next   int
}

var rdsSeq atomic.Int64

func (e *env) rds() *rdsWorld {
	e.t.Helper()
	factory, err := targets.NewFactory(context.Background(), targets.FactoryOptions{MaxAttempts: 2})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := factory.RDS(context.Background(), e.group.ARN, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return &rdsWorld{e: e, client: c, addrs: map[string]netip.Addr{}}
}

func (w *rdsWorld) cluster() string {
	w.e.t.Helper()
	id := fmt.Sprintf("aurora-%d", rdsSeq.Add(1))
	_, err := w.client.CreateDBCluster(context.Background(), &rds.CreateDBClusterInput{
		DBClusterIdentifier: aws.String(id), Engine: aws.String("aurora-postgresql"),
		MasterUsername: aws.String("admin"), MasterUserPassword: aws.String("password123"),
	})
	if err != nil {
		w.e.t.Fatalf("CreateDBCluster: %v", err)
	}
	return id
}

// aurora creates a cluster with a writer (c-w) and two readers (c-r1, c-r2), each endpoint served with an
// address of its own.
func (w *rdsWorld) aurora() (c string, ipW, ipR1, ipR2 netip.Addr) {
	w.e.t.Helper()
	c = w.cluster()
	return c, w.instance(c+"-w", c, ""), w.instance(c+"-r1", c, ""), w.instance(c+"-r2", c, "")
}

// instance creates a DB instance (in cluster, or a replica of replicaOf, or standalone) and serves its endpoint.
func (w *rdsWorld) instance(id, cluster, replicaOf string) netip.Addr {
	w.e.t.Helper()
	ctx := context.Background()
	var err error
	switch {
	case replicaOf != "":
		_, err = w.client.CreateDBInstanceReadReplica(ctx, &rds.CreateDBInstanceReadReplicaInput{
			DBInstanceIdentifier: aws.String(id), SourceDBInstanceIdentifier: aws.String(replicaOf)})
	case cluster != "":
		_, err = w.client.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String(id),
			DBInstanceClass: aws.String("db.r6g.large"), Engine: aws.String("aurora-postgresql"), DBClusterIdentifier: aws.String(cluster)})
	default:
		_, err = w.client.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String(id),
			DBInstanceClass: aws.String("db.r6g.large"), Engine: aws.String("postgres"), AllocatedStorage: aws.Int32(20),
			MasterUsername: aws.String("admin"), MasterUserPassword: aws.String("password123")})
	}
	if err != nil {
		w.e.t.Fatalf("creating instance %s: %v", id, err)
	}
	out, err := w.client.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	if err != nil || len(out.DBInstances) != 1 || out.DBInstances[0].Endpoint == nil {
		w.e.t.Fatalf("DescribeDBInstances %s: %v", id, err)
	}
	w.next++
	ip := netip.AddrFrom4([4]byte{10, 0, 7, byte(w.next)})
	w.addrs[id] = ip
	w.e.dns.SetA(aws.ToString(out.DBInstances[0].Endpoint.Address), 5, ip.String())
	return ip
}

func (w *rdsWorld) delete(id string) {
	w.e.t.Helper()
	if _, err := w.client.DeleteDBInstance(context.Background(), &rds.DeleteDBInstanceInput{
		DBInstanceIdentifier: aws.String(id), SkipFinalSnapshot: aws.Bool(true)}); err != nil {
		w.e.t.Fatalf("DeleteDBInstance %s: %v", id, err)
	}
}

func (w *rdsWorld) failover(cluster, target string) {
	w.e.t.Helper()
	if _, err := w.client.FailoverDBCluster(context.Background(), &rds.FailoverDBClusterInput{
		DBClusterIdentifier: aws.String(cluster), TargetDBInstanceIdentifier: aws.String(target)}); err != nil {
		w.e.t.Fatalf("FailoverDBCluster: %v", err)
	}
}

// rdsMapping is a mapping of src into a new target group of the backend.
func (e *env) rdsMapping(name string, src config.RDS) config.Sync {
	s := config.DefaultSync()
	src.Refresh = config.DefaultRDSRefresh
	s.Name, s.RDS, s.TargetGroupARN = name, &src, awstest.NewTargetGroup(e.t, port).ARN
	return s
}

func (e *env) wantLiveIn(s config.Sync, ips ...netip.Addr) {
	e.t.Helper()
	slices.SortFunc(ips, netip.Addr.Compare)
	if got := e.liveIn(s.TargetGroupARN); !slices.Equal(got, ips) {
		e.t.Fatalf("%s: live targets %v, want %v", s.Name, got, ips)
	}
}

// passes runs n passes of every mapping, the engine's clock a TTL apart, and fails on a failed pass unless
// failing is allowed.
func (e *env) passes(eng *engine.Engine, n int, failing bool) []engine.Report {
	e.t.Helper()
	var reps []engine.Report
	for range n {
		reps = eng.RunOnce(context.Background())
		for _, r := range reps {
			if r.Err() != nil && !failing {
				e.t.Fatalf("%s: pass failed: %v", r.Sync, r.Err())
			}
		}
		e.clock.Advance(5 * time.Second)
	}
	return reps
}

// readersWorld is an Aurora cluster on the fake whose two readers a mapping follows, after a first pass of its
// engine registered both.
type readersWorld struct {
	e          *env
	w          *rdsWorld
	c          string
	readers    config.Sync
	eng        *engine.Engine
	ipR1, ipR2 netip.Addr
}

func newReadersWorld(t *testing.T) readersWorld {
	t.Helper()
	rw := readersWorld{e: newFakeEnv(t, elbv2fake.Options{})}
	rw.w = rw.e.rds()
	rw.c, _, rw.ipR1, rw.ipR2 = rw.w.aurora()
	rw.readers = rw.e.rdsMapping("readers", config.RDS{Cluster: rw.c, Role: config.RoleReader})
	rw.eng = rw.e.engine(engine.Options{}, rw.readers)
	rw.e.passes(rw.eng, 1, false)
	rw.e.wantLiveIn(rw.readers, rw.ipR1, rw.ipR2)
	return rw
}

// TestRDSClusterRoles: a writer group and a reader group follow an Aurora cluster: the reader pool fills, a reader
// added joins it, a reader removed leaves it after deregister_after, and a failover moves both groups.
func TestRDSClusterRoles(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := e.rds()
		c, ipW, ipR1, ipR2 := w.aurora()
		writer := e.rdsMapping("writer", config.RDS{Cluster: c, Role: config.RoleWriter})
		readers := e.rdsMapping("readers", config.RDS{Cluster: c, Role: config.RoleReader})
		eng := e.engine(engine.Options{}, writer, readers)

		reps := e.passes(eng, 1, false)
		e.wantLiveIn(writer, ipW)
		e.wantLiveIn(readers, ipR1, ipR2)
		if src := reps[1].Sources; len(src) != 2 || src[0].InstanceID != c+"-r1" || src[0].Role != config.RoleReader ||
			src[0].State != engine.SourceAnswered || !slices.Equal(src[0].Addresses, []netip.Addr{ipR1}) {
			t.Fatalf("readers' sources: %+v", src)
		}

		ipR3 := w.instance(c+"-r3", c, "")
		e.passes(eng, 6, false) // 30 s: rds.refresh
		e.wantLiveIn(readers, ipR1, ipR2, ipR3)

		w.delete(c + "-r1")
		e.passes(eng, 7, false) // the next read, then two resolutions without it
		e.wantLiveIn(readers, ipR2, ipR3)
		e.wantLiveIn(writer, ipW)

		w.failover(c, c+"-r2")
		e.passes(eng, 9, false)
		e.wantLiveIn(writer, ipR2)
		e.wantLiveIn(readers, ipW, ipR3)
	})
}

// TestRDSReplicas: an instance with its read replicas.
func TestRDSReplicas(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := e.rds()
		id := fmt.Sprintf("orders-%d", rdsSeq.Add(1))
		ipP := w.instance(id, "", "")
		ipR1, ipR2 := w.instance(id+"-rr1", "", id), w.instance(id+"-rr2", "", id)
		pool := e.rdsMapping("pool", config.RDS{Instance: id, WithReplicas: true})
		primary := e.rdsMapping("primary", config.RDS{Instance: id})
		eng := e.engine(engine.Options{}, pool, primary)
		e.passes(eng, 1, false)
		e.wantLiveIn(pool, ipP, ipR1, ipR2)
		e.wantLiveIn(primary, ipP)
	})
}

// TestRDSCustomEndpoint: a custom endpoint's static members, then excluded members (the fake: moto has no
// custom endpoints).
func TestRDSCustomEndpoint(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	w := e.rds()
	c, ipW, ipR1, ipR2 := w.aurora()
	for _, spec := range []elbv2fake.DBClusterEndpointSpec{
		{Cluster: c, ID: "static", Type: "ANY", Static: []string{c + "-w", c + "-r2"}},
		{Cluster: c, ID: "excluded", Type: "ANY", Excluded: []string{c + "-r1"}},
		{Cluster: c, ID: "readers", Type: "READER"},
	} {
		if err := e.fake.CreateDBClusterEndpoint(spec); err != nil {
			t.Fatal(err)
		}
	}
	static := e.rdsMapping("static", config.RDS{Cluster: c, CustomEndpoint: "static"})
	excluded := e.rdsMapping("excluded", config.RDS{Cluster: c, CustomEndpoint: "excluded"})
	readers := e.rdsMapping("custom-readers", config.RDS{Cluster: c, CustomEndpoint: "readers"})
	eng := e.engine(engine.Options{}, static, excluded, readers)
	e.passes(eng, 1, false)
	e.wantLiveIn(static, ipW, ipR2)
	e.wantLiveIn(excluded, ipW, ipR2)
	e.wantLiveIn(readers, ipR1, ipR2)

	// A new instance joins the endpoint that excludes, not the static one.
	ipR3 := w.instance(c+"-r3", c, "")
	e.passes(eng, 7, false)
	e.wantLiveIn(static, ipW, ipR2)
	e.wantLiveIn(excluded, ipW, ipR2, ipR3)
	e.wantLiveIn(readers, ipR1, ipR2, ipR3)
}

// TestRDSMembershipUnknown: RDS throttled, access denied, or a member list of zero: nothing is deregistered,
// and the pass says why.
func TestRDSMembershipUnknown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(e *env, w *rdsWorld, c string)
		want  string
	}{
		{"throttled", func(e *env, _ *rdsWorld, _ string) {
			e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
				if strings.HasPrefix(action, "DescribeDB") {
					f := elbv2fake.Throttled()
					return &f
				}
				return nil
			})
		}, "Throttling"},
		{"denied", func(e *env, _ *rdsWorld, _ string) {
			e.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
				if action == "DescribeDBClusters" {
					f := elbv2fake.RDSAccessDenied(action)
					return &f
				}
				return nil
			})
		}, "grant the credentials (or role_arn) rds:DescribeDBClusters"},
		{"no members", func(_ *env, w *rdsWorld, c string) {
			w.delete(c + "-r1")
			w.delete(c + "-r2")
		}, "no members"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rw := newReadersWorld(t)
			e, w, c, readers, eng, ipR1, ipR2 := rw.e, rw.w, rw.c, rw.readers, rw.eng, rw.ipR1, rw.ipR2

			tc.fault(e, w, c)
			// Membership unknown from the next read on, for 2 minutes; the readers' names even stop resolving.
			e.dns.SetNameFault(e.fake.DBInstanceAddress(c+"-r1"), dnstest.FaultNXDomain)
			reps := e.passes(eng, 24, true)
			if err := reps[0].Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("last pass: error %v, want one saying %q", err, tc.want)
			}
			e.wantLiveIn(readers, ipR1, ipR2)
			if d := e.rec.Calls("Deregister"); len(d) > 0 {
				t.Fatalf("I1: deregistered %v while the membership was unknown", d)
			}
		})
	}
}

// TestRDSRestartMemberUnresolved: ipsync restarts (empty memory: also a Lambda cold start, a reload) while a
// reader reboots and its endpoint does not resolve. The reader has not answered since start, so a registered
// address may be its own: nothing is deregistered, however many answers the other reader gives (I1). Once its
// name resolves again, still rebooting, its address is known to be its own and stays.
func TestRDSRestartMemberUnresolved(t *testing.T) {
	rw := newReadersWorld(t)
	e, c, readers, ipR1, ipR2 := rw.e, rw.c, rw.readers, rw.ipR1, rw.ipR2

	if err := e.fake.SetDBInstanceStatus(c+"-r2", elbv2fake.DBStatusRebooting); err != nil {
		t.Fatal(err)
	}
	r2 := e.fake.DBInstanceAddress(c + "-r2")
	e.dns.SetNameFault(r2, dnstest.FaultServFail)
	eng := e.engine(engine.Options{}, readers) // the restart
	reps := e.passes(eng, 4, true)
	if d := e.rec.Calls("Deregister"); len(d) > 0 {
		t.Fatalf("I1: deregistered %v while the rebooting r2 has not answered since the restart", d)
	}
	e.wantLiveIn(readers, ipR1, ipR2)
	if src := reps[0].Sources; len(src) != 2 || src[1].InstanceID != c+"-r2" || src[1].State != engine.SourceHeld || src[1].Error == "" {
		t.Fatalf("sources %+v: want r2 held, with its DNS error", src)
	}

	e.dns.SetNameFault(r2, dnstest.FaultNone)
	e.passes(eng, 4, true)
	e.wantLiveIn(readers, ipR1, ipR2)
}

// TestRDSRestartMemberUnlisted: after a restart, DescribeDBInstances leaves out r2, a registered reader the
// cluster still lists. Without an endpoint it cannot answer, but it is not one being created: it may be the one
// a registered address belongs to, so nothing is deregistered until it answers (I1).
func TestRDSRestartMemberUnlisted(t *testing.T) {
	rw := newReadersWorld(t)
	e, c, readers, ipR1, ipR2 := rw.e, rw.c, rw.readers, rw.ipR1, rw.ipR2

	if err := e.fake.SetDBInstanceListed(c+"-r2", false); err != nil {
		t.Fatal(err)
	}
	eng := e.engine(engine.Options{}, readers) // the restart
	e.passes(eng, 7, true)
	if d := e.rec.Calls("Deregister"); len(d) > 0 {
		t.Fatalf("I1: deregistered %v while r2, left out of DescribeDBInstances, has not answered since the restart", d)
	}
	e.wantLiveIn(readers, ipR1, ipR2)

	if err := e.fake.SetDBInstanceListed(c+"-r2", true); err != nil {
		t.Fatal(err)
	}
	e.passes(eng, 7, true)
	e.wantLiveIn(readers, ipR1, ipR2)
}

// TestRDSMemberBeingCreated: a member RDS gives no endpoint yet (being created) has never answered, but nothing of
// it can be registered: it blocks no deregistration. A reader that leaves the cluster meanwhile goes after
// deregister_after resolutions; the new one joins once it is available.
func TestRDSMemberBeingCreated(t *testing.T) {
	rw := newReadersWorld(t)
	e, w, c, readers, eng, ipR1 := rw.e, rw.w, rw.c, rw.readers, rw.eng, rw.ipR1

	ipR3 := w.instance(c+"-r3", c, "")
	if err := e.fake.SetDBInstanceStatus(c+"-r3", elbv2fake.DBStatusCreating); err != nil {
		t.Fatal(err)
	}
	w.delete(c + "-r2")
	reps := e.passes(eng, 7, false) // the next read, then two resolutions without r2
	if src := reps[0].Sources; len(src) != 2 || src[1].InstanceID != c+"-r3" || src[1].State != engine.SourceHeld {
		t.Fatalf("sources %+v: want r3 held while it has no endpoint", src)
	}
	e.wantLiveIn(readers, ipR1)

	if err := e.fake.SetDBInstanceStatus(c+"-r3", elbv2fake.DBStatusAvailable); err != nil {
		t.Fatal(err)
	}
	e.passes(eng, 7, false)
	e.wantLiveIn(readers, ipR1, ipR3)
}

// TestEndpointsOneNameFails: of three names, one stops resolving: its address stays while the other two are
// followed, a failover of one of them included.
func TestEndpointsOneNameFails(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		names := []string{"proxy-a.rds.test", "proxy-b.rds.test", "proxy-c.rds.test"}
		ips := []netip.Addr{netip.MustParseAddr("10.0.5.1"), netip.MustParseAddr("10.0.5.2"), netip.MustParseAddr("10.0.5.3")}
		for i, n := range names {
			e.dns.SetA(n, 5, ips[i].String())
		}
		s := e.mapping()
		s.Endpoint, s.Endpoints = "", names
		eng := e.engine(engine.Options{}, s)
		mustOK(t, e.pass(eng))
		e.wantLive(ips...)

		e.dns.SetNameFault(names[1], dnstest.FaultServFail)
		moved := netip.MustParseAddr("10.0.5.9")
		e.dns.SetA(names[0], 5, moved.String())
		var r engine.Report
		for range 3 {
			r = e.pass(eng)
		}
		if r.Err() == nil || !strings.Contains(r.Err().Error(), names[1]) || !slices.Equal(r.Held, []netip.Addr{ips[1]}) {
			t.Fatalf("the pass must name the failing source and hold its address: %+v", r)
		}
		e.wantLive(ips[1], ips[2], moved)
		if d := e.rec.Calls("Deregister"); len(d) != 1 || !strings.Contains(d[0], ips[0].String()) {
			t.Fatalf("deregistrations %v: want only the moved name's old address", d)
		}
	})
}

// TestReaderEndpointRotation reproduces following an Aurora reader endpoint through DNS: validate warns, and
// the group churns as the endpoint answers one reader per query. The same readers followed through
// rds: {role: reader} for the same 5 minutes of rotation: no live member is ever deregistered.
func TestReaderEndpointRotation(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	w := e.rds()
	c, _, ipR1, ipR2 := w.aurora()
	readerEndpoint := c + ".cluster-ro-c9fake000000.us-east-1.rds.amazonaws.com"
	// One reader per answer, picked at random as the reader endpoint does (a fixed pseudo-random sequence of
	// prime length, so that however many queries a pass makes, its answers do not fall into step).
	var turns [][]string
	for seed, i := uint32(2463534242), 0; i < 101; i++ {
		seed ^= seed << 13
		seed ^= seed >> 17
		seed ^= seed << 5
		turns = append(turns, []string{[]netip.Addr{ipR1, ipR2}[seed%2].String()})
	}
	e.dns.SetAFlapping(readerEndpoint, 1, turns...)

	byDNS := e.mapping()
	byDNS.Name, byDNS.Endpoint = "by-dns", readerEndpoint
	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{byDNS}
	if warnings := cfg.Warnings(); len(warnings) != 1 || !strings.Contains(warnings[0], "rds: {cluster: "+c+", role: reader}") {
		t.Fatalf("warnings %q: want one naming rds: {cluster: %s, role: reader}", warnings, c)
	}
	byRDS := e.rdsMapping("by-rds", config.RDS{Cluster: c, Role: config.RoleReader})

	rotate := func(s config.Sync) (deregistered int) {
		eng := e.engine(engine.Options{}, s)
		for range 300 { // 5 minutes, one pass a second: the reader endpoint's TTL
			for _, r := range eng.RunOnce(context.Background()) {
				if r.Err() != nil {
					t.Fatalf("%s: %v", s.Name, r.Err())
				}
				deregistered += len(r.Deregistered)
			}
			e.clock.Advance(time.Second)
		}
		return deregistered
	}
	if n := rotate(byDNS); n < 20 {
		t.Errorf("following the reader endpoint through DNS: %d deregistrations in 5 minutes; the churn this test reproduces is gone?", n)
	} else {
		t.Logf("reader endpoint through DNS: %d deregistrations of a live reader in 5 minutes", n)
	}
	if n := rotate(byRDS); n != 0 {
		t.Errorf("rds: {role: reader}: %d deregistrations in 5 minutes, want 0", n)
	}
	e.wantLiveIn(byRDS, ipR1, ipR2)
}

// TestRDSCheckRemote: `validate --remote` reads an rds: source's members and resolves each one's endpoint.
func TestRDSCheckRemote(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	w := e.rds()
	c, _, ipR1, ipR2 := w.aurora()
	cfg := config.Defaults()
	cfg.Syncs = []config.Sync{e.rdsMapping("readers", config.RDS{Cluster: c, Role: config.RoleReader})}
	cfg.DNS.Servers = []string{e.dns.Addr()}
	clients := func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil }
	got := engine.CheckRemote(context.Background(), cfg, e.res, clients, e.members())
	if len(got) != 1 || got[0].Err != nil || !strings.Contains(got[0].Summary, ipR1.String()) || !strings.Contains(got[0].Summary, ipR2.String()) {
		t.Fatalf("CheckRemote: %+v; want both readers resolved", got)
	}
	e.fake.FailNext("DescribeDBClusters", 1, elbv2fake.RDSAccessDenied("DescribeDBClusters"))
	if got := engine.CheckRemote(context.Background(), cfg, e.res, clients, e.members()); got[0].Err == nil ||
		!strings.Contains(got[0].Err.Error(), "rds:DescribeDBClusters") {
		t.Fatalf("CheckRemote with RDS denied: %+v", got)
	}
}
