package members_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/members"
	"github.com/ipsync/ipsync/internal/testutil/motoserver"
)

// The same behaviours run through the real SDK against moto and against elbv2fake; state is set up through the
// SDK on both (CreateDBCluster, CreateDBInstance, ...). What moto cannot do — custom endpoints, instance states
// other than available, faults — runs against the fake only.

// backend is one RDS implementation reachable over HTTP.
type backend struct {
	name   string
	client *rds.Client
	fake   *elbv2fake.Server // nil on moto
}

func TestBackends(t *testing.T) {
	for _, nb := range []struct {
		name string
		url  func(t *testing.T) (string, *elbv2fake.Server)
	}{
		{"moto", func(t *testing.T) (string, *elbv2fake.Server) { return motoserver.Start(t), nil }},
		{"fake", func(t *testing.T) (string, *elbv2fake.Server) {
			f := newFake(t, elbv2fake.Options{})
			return f.URL(), f
		}},
	} {
		t.Run(nb.name, func(t *testing.T) {
			url, fake := nb.url(t)
			b := &backend{name: nb.name, client: newClient(url), fake: fake}
			for _, bh := range behaviours {
				t.Run(bh.name, func(t *testing.T) { bh.fn(t, b) })
			}
		})
	}
}

var behaviours = []struct {
	name string
	fn   func(t *testing.T, b *backend)
}{
	{"ClusterRoles", testClusterRoles},
	{"ReaderAddedAndRemoved", testReaderAddedAndRemoved},
	{"FailoverSwapsRoles", testFailover},
	{"InstanceWithReplicas", testReplicas},
	{"ZeroMembersIsAnError", testZeroMembers},
	{"NotFoundIsAnError", testNotFound},
}

// newClient is a real SDK client for the endpoint at url, with nothing from the process's AWS environment and
// short retry backoffs so that tests of throttling do not sleep for seconds.
func newClient(url string) *rds.Client {
	return rds.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(url),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.Backoff = retry.NewExponentialJitterBackoff(5 * time.Millisecond)
				o.RateLimiter = ratelimit.None
			})
		},
	})
}

func newFake(t *testing.T, opts elbv2fake.Options) *elbv2fake.Server {
	t.Helper()
	f, err := elbv2fake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

var seq atomic.Int64

// unique makes identifiers distinct across behaviours sharing one backend.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// ---- setup through the SDK, the same on both backends ----

func (b *backend) cluster(t *testing.T) string {
	t.Helper()
	id := unique("aurora")
	_, err := b.client.CreateDBCluster(context.Background(), &rds.CreateDBClusterInput{
		DBClusterIdentifier: aws.String(id), Engine: aws.String("aurora-postgresql"),
		MasterUsername: aws.String("admin"), MasterUserPassword: aws.String("password123"),
	})
	if err != nil {
		t.Fatalf("CreateDBCluster %s: %v", id, err)
	}
	return id
}

// instance creates an instance, in cluster when it is not "", and returns its endpoint address.
func (b *backend) instance(t *testing.T, id, cluster string) string {
	t.Helper()
	in := &rds.CreateDBInstanceInput{
		DBInstanceIdentifier: aws.String(id), DBInstanceClass: aws.String("db.r6g.large"), Engine: aws.String("aurora-postgresql"),
	}
	if cluster != "" {
		in.DBClusterIdentifier = aws.String(cluster)
	} else {
		in.Engine, in.AllocatedStorage = aws.String("postgres"), aws.Int32(20)
		in.MasterUsername, in.MasterUserPassword = aws.String("admin"), aws.String("password123")
	}
	if _, err := b.client.CreateDBInstance(context.Background(), in); err != nil {
		t.Fatalf("CreateDBInstance %s: %v", id, err)
	}
	return b.address(t, id)
}

func (b *backend) replica(t *testing.T, id, of string) string {
	t.Helper()
	_, err := b.client.CreateDBInstanceReadReplica(context.Background(), &rds.CreateDBInstanceReadReplicaInput{
		DBInstanceIdentifier: aws.String(id), SourceDBInstanceIdentifier: aws.String(of),
	})
	if err != nil {
		t.Fatalf("CreateDBInstanceReadReplica %s of %s: %v", id, of, err)
	}
	return b.address(t, id)
}

// address is the instance's endpoint address as DescribeDBInstances reports it.
func (b *backend) address(t *testing.T, id string) string {
	t.Helper()
	out, err := b.client.DescribeDBInstances(context.Background(), &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	if err != nil || len(out.DBInstances) != 1 || out.DBInstances[0].Endpoint == nil {
		t.Fatalf("DescribeDBInstances %s: %v", id, err)
	}
	addr := aws.ToString(out.DBInstances[0].Endpoint.Address)
	if b.fake != nil && addr != b.fake.DBInstanceAddress(id) {
		t.Fatalf("%s: DescribeDBInstances says %s, DBInstanceAddress %s", id, addr, b.fake.DBInstanceAddress(id))
	}
	return addr
}

func (b *backend) deleteInstance(t *testing.T, id string) {
	t.Helper()
	_, err := b.client.DeleteDBInstance(context.Background(), &rds.DeleteDBInstanceInput{
		DBInstanceIdentifier: aws.String(id), SkipFinalSnapshot: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("DeleteDBInstance %s: %v", id, err)
	}
}

func (b *backend) failover(t *testing.T, cluster, target string) {
	t.Helper()
	_, err := b.client.FailoverDBCluster(context.Background(), &rds.FailoverDBClusterInput{
		DBClusterIdentifier: aws.String(cluster), TargetDBInstanceIdentifier: aws.String(target),
	})
	if err != nil {
		t.Fatalf("FailoverDBCluster %s to %s: %v", cluster, target, err)
	}
}

// ---- reading ----

func read(t *testing.T, c members.API, src config.RDS) members.Members {
	t.Helper()
	m, err := (&members.Reader{API: c}).Read(context.Background(), src)
	if err != nil {
		t.Fatalf("Read(%s): %v", src.String(), err)
	}
	if len(m.Members) == 0 {
		t.Fatalf("Read(%s) succeeded with no member; it must be an error", src.String())
	}
	return m
}

// member is what a test expects of one member: an available instance with its endpoint.
func member(id, address, role string) members.Member {
	return members.Member{InstanceID: id, Address: address, Role: role, Status: members.StatusAvailable}
}

func wantMembers(t *testing.T, c members.API, src config.RDS, want ...members.Member) {
	t.Helper()
	got := read(t, c, src)
	if got.Source != src.String() || !reflect.DeepEqual(got.Members, want) {
		t.Errorf("Read(%s):\n got %+v\nwant %+v", src.String(), got.Members, want)
	}
}

func role(cluster, r string) config.RDS { return config.RDS{Cluster: cluster, Role: r} }

// ---- behaviours on both backends ----

func testClusterRoles(t *testing.T, b *backend) {
	c := b.cluster(t)
	w, r1, r2 := c+"-w", c+"-r1", c+"-r2"
	wAddr, r1Addr, r2Addr := b.instance(t, w, c), b.instance(t, r1, c), b.instance(t, r2, c)
	if wAddr == "" || wAddr == r1Addr {
		t.Fatalf("instance endpoints %q, %q: want distinct addresses", wAddr, r1Addr)
	}

	wantMembers(t, b.client, role(c, config.RoleWriter), member(w, wAddr, members.RoleWriter))
	wantMembers(t, b.client, role(c, config.RoleReader), member(r1, r1Addr, members.RoleReader), member(r2, r2Addr, members.RoleReader))
	wantMembers(t, b.client, role(c, config.RoleAny),
		member(r1, r1Addr, members.RoleReader), member(r2, r2Addr, members.RoleReader), member(w, wAddr, members.RoleWriter))
	// Identifiers as the user may write them: RDS stores and answers them in lower case.
	got := read(t, b.client, role(strings.ToUpper(c), config.RoleWriter))
	if len(got.Members) != 1 || got.Members[0].InstanceID != w {
		t.Errorf("upper-case cluster identifier: %+v, want the writer %s", got.Members, w)
	}
	if avail := got.Available(); len(avail) != 1 || !avail[0].Available() {
		t.Errorf("Available() = %+v, want the writer", avail)
	}
}

func testReaderAddedAndRemoved(t *testing.T, b *backend) {
	c := b.cluster(t)
	w, r1, r2 := c+"-w", c+"-r1", c+"-r2"
	b.instance(t, w, c)
	r1Addr := b.instance(t, r1, c)
	readers := role(c, config.RoleReader)
	wantMembers(t, b.client, readers, member(r1, r1Addr, members.RoleReader))

	r2Addr := b.instance(t, r2, c)
	wantMembers(t, b.client, readers, member(r1, r1Addr, members.RoleReader), member(r2, r2Addr, members.RoleReader))

	b.deleteInstance(t, r1)
	wantMembers(t, b.client, readers, member(r2, r2Addr, members.RoleReader))
}

func testFailover(t *testing.T, b *backend) {
	c := b.cluster(t)
	w, r := c+"-w", c+"-r"
	wAddr, rAddr := b.instance(t, w, c), b.instance(t, r, c)
	writer, readers := role(c, config.RoleWriter), role(c, config.RoleReader)
	wantMembers(t, b.client, writer, member(w, wAddr, members.RoleWriter))
	wantMembers(t, b.client, readers, member(r, rAddr, members.RoleReader))

	b.failover(t, c, r)
	wantMembers(t, b.client, writer, member(r, rAddr, members.RoleWriter))
	wantMembers(t, b.client, readers, member(w, wAddr, members.RoleReader))
}

func testReplicas(t *testing.T, b *backend) {
	p := unique("legacy")
	pAddr := b.instance(t, p, "")
	only := config.RDS{Instance: p}
	pool := config.RDS{Instance: p, WithReplicas: true}
	wantMembers(t, b.client, pool, member(p, pAddr, members.RoleWriter)) // no replica yet: the primary alone

	r1Addr, r2Addr := b.replica(t, p+"-r1", p), b.replica(t, p+"-r2", p)
	wantMembers(t, b.client, only, member(p, pAddr, members.RoleWriter))
	wantMembers(t, b.client, pool,
		member(p, pAddr, members.RoleWriter), member(p+"-r1", r1Addr, members.RoleReader), member(p+"-r2", r2Addr, members.RoleReader))
	// A replica followed on its own is a reader.
	wantMembers(t, b.client, config.RDS{Instance: p + "-r1"}, member(p+"-r1", r1Addr, members.RoleReader))

	b.deleteInstance(t, p+"-r1")
	wantMembers(t, b.client, pool, member(p, pAddr, members.RoleWriter), member(p+"-r2", r2Addr, members.RoleReader))
}

// wantUnknown checks that reading src fails, with no member: the caller must then keep every target (I1).
func wantUnknown(t *testing.T, c members.API, src config.RDS, noMembers bool, inError ...string) {
	t.Helper()
	got, err := (&members.Reader{API: c, CallTimeout: 5 * time.Second}).Read(context.Background(), src)
	if err == nil {
		t.Fatalf("Read(%s) = %+v, want an error", src.String(), got)
	}
	if got.Members != nil || got.Source != "" {
		t.Errorf("Read(%s) failed (%v) but returned %+v", src.String(), err, got)
	}
	if errors.Is(err, members.ErrNoMembers) != noMembers {
		t.Errorf("Read(%s): errors.Is(%v, ErrNoMembers) = %t, want %t", src.String(), err, !noMembers, noMembers)
	}
	for _, want := range append(inError, src.String()) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Read(%s): error %q does not contain %q", src.String(), err, want)
		}
	}
}

func testZeroMembers(t *testing.T, b *backend) {
	empty := b.cluster(t)
	wantUnknown(t, b.client, role(empty, config.RoleAny), true, "the cluster has no instance")
	wantUnknown(t, b.client, role(empty, config.RoleWriter), true)

	c := b.cluster(t)
	b.instance(t, c+"-w", c)
	wantUnknown(t, b.client, role(c, config.RoleReader), true, "the cluster has no reader")
}

func testNotFound(t *testing.T, b *backend) {
	wantUnknown(t, b.client, role(unique("missing"), config.RoleWriter), false, "DescribeDBClusters", "check rds.cluster")
	wantUnknown(t, b.client, config.RDS{Instance: unique("missing"), WithReplicas: true}, false, "DescribeDBInstances", "check rds.instance")
}

// ---- the fake only: what moto cannot do ----

func newFakeBackend(t *testing.T, opts elbv2fake.Options) *backend {
	f := newFake(t, opts)
	return &backend{name: "fake", client: newClient(f.URL()), fake: f}
}

func TestCustomEndpoint(t *testing.T) {
	b := newFakeBackend(t, elbv2fake.Options{})
	c := b.cluster(t)
	w, r1, r2, r3 := c+"-w", c+"-r1", c+"-r2", c+"-r3"
	addr := map[string]string{}
	for _, id := range []string{w, r1, r2, r3} {
		addr[id] = b.instance(t, id, c)
	}
	custom := func(name, typ string, static, excluded []string) config.RDS {
		t.Helper()
		if err := b.fake.CreateDBClusterEndpoint(elbv2fake.DBClusterEndpointSpec{Cluster: c, ID: name, Type: typ, Static: static, Excluded: excluded}); err != nil {
			t.Fatal(err)
		}
		return config.RDS{Cluster: c, CustomEndpoint: name}
	}
	m := func(id, role string) members.Member { return member(id, addr[id], role) }

	staticAny := custom("static-any", "ANY", []string{w, r2}, nil)
	staticReader := custom("static-reader", "READER", []string{w, r2}, nil)
	excludedReader := custom("excluded-reader", "READER", nil, []string{r3})
	excludedAny := custom("excluded-any", "ANY", nil, []string{r1})
	everyone := custom("everyone", "ANY", nil, nil)

	wantMembers(t, b.client, staticAny, m(r2, members.RoleReader), m(w, members.RoleWriter))
	wantMembers(t, b.client, staticReader, m(r2, members.RoleReader)) // a READER endpoint never has the writer
	wantMembers(t, b.client, excludedReader, m(r1, members.RoleReader), m(r2, members.RoleReader))
	wantMembers(t, b.client, excludedAny, m(r2, members.RoleReader), m(r3, members.RoleReader), m(w, members.RoleWriter))
	wantMembers(t, b.client, everyone, m(r1, members.RoleReader), m(r2, members.RoleReader), m(r3, members.RoleReader), m(w, members.RoleWriter))

	// A new instance joins endpoints that exclude others, not those with static members.
	r4 := c + "-r4"
	addr[r4] = b.instance(t, r4, c)
	wantMembers(t, b.client, excludedReader, m(r1, members.RoleReader), m(r2, members.RoleReader), m(r4, members.RoleReader))
	wantMembers(t, b.client, staticAny, m(r2, members.RoleReader), m(w, members.RoleWriter))

	// After a failover to r1, r1 leaves the READER endpoint and the old writer joins it.
	b.failover(t, c, r1)
	wantMembers(t, b.client, excludedReader, m(r2, members.RoleReader), m(r4, members.RoleReader), m(w, members.RoleReader))

	// A static member that left the cluster is no longer one.
	b.deleteInstance(t, r2)
	wantMembers(t, b.client, staticAny, m(w, members.RoleReader))

	wantUnknown(t, b.client, config.RDS{Cluster: c, CustomEndpoint: "nonesuch"}, false, "has no custom endpoint nonesuch")
	// A READER endpoint whose only static member became the writer selects nobody: unknown, never "remove all".
	writerOnly := custom("writer-only", "READER", []string{r1}, nil)
	wantUnknown(t, b.client, writerOnly, true, "the custom endpoint selects no instance")
}

// TestMemberNotAvailable: a member that is not "available" is listed with its status and not offered for
// adding; one with no endpoint yet has no address.
func TestMemberNotAvailable(t *testing.T) {
	b := newFakeBackend(t, elbv2fake.Options{})
	c := b.cluster(t)
	w, r1, r2 := c+"-w", c+"-r1", c+"-r2"
	wAddr, r1Addr := b.instance(t, w, c), b.instance(t, r1, c)
	b.instance(t, r2, c)
	if err := b.fake.SetDBInstanceStatus(r1, elbv2fake.DBStatusRebooting); err != nil {
		t.Fatal(err)
	}
	if err := b.fake.SetDBInstanceStatus(r2, elbv2fake.DBStatusCreating); err != nil {
		t.Fatal(err)
	}
	got := read(t, b.client, role(c, config.RoleAny))
	want := []members.Member{
		{InstanceID: r1, Address: r1Addr, Role: members.RoleReader, Status: elbv2fake.DBStatusRebooting},
		{InstanceID: r2, Role: members.RoleReader, Status: elbv2fake.DBStatusCreating}, // no endpoint while creating
		member(w, wAddr, members.RoleWriter),
	}
	if !reflect.DeepEqual(got.Members, want) {
		t.Fatalf("members:\n got %+v\nwant %+v", got.Members, want)
	}
	if avail := got.Available(); !reflect.DeepEqual(avail, want[2:]) {
		t.Errorf("Available() = %+v, want only the writer", avail)
	}

	// Every reader unavailable is still a membership (not zero members): the caller keeps their targets.
	got = read(t, b.client, role(c, config.RoleReader))
	if len(got.Members) != 2 || len(got.Available()) != 0 {
		t.Errorf("readers: %+v, want both listed and none available", got.Members)
	}
}

// TestFaults: throttling, access denied and timeouts on each of the three calls make the membership unknown,
// never empty; a throttled call that succeeds on a retry is invisible.
func TestFaults(t *testing.T) {
	b := newFakeBackend(t, elbv2fake.Options{})
	c := b.cluster(t)
	b.instance(t, c+"-w", c)
	b.instance(t, c+"-r", c)
	if err := b.fake.CreateDBClusterEndpoint(elbv2fake.DBClusterEndpointSpec{Cluster: c, ID: "reports", Type: "ANY"}); err != nil {
		t.Fatal(err)
	}
	custom := config.RDS{Cluster: c, CustomEndpoint: "reports"}

	for _, op := range []string{"DescribeDBClusters", "DescribeDBClusterEndpoints", "DescribeDBInstances"} {
		t.Run(op, func(t *testing.T) {
			b.fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
				if action == op {
					f := elbv2fake.Throttled()
					return &f
				}
				return nil
			})
			wantUnknown(t, b.client, custom, false, op, "Throttling")

			b.fake.SetFault(nil)
			denied := elbv2fake.RDSAccessDenied(op)
			b.fake.FailNext(op, 1, denied)
			wantUnknown(t, b.client, custom, false, op, "AccessDenied", op)

			b.fake.FailNext(op, 1, elbv2fake.Fault{Delay: 2 * time.Second})
			got, err := (&members.Reader{API: b.client, CallTimeout: 50 * time.Millisecond}).Read(context.Background(), custom)
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || got.Members != nil {
				t.Errorf("a call slower than CallTimeout: Read = %+v, %v; want a deadline error", got, err)
			}

			b.fake.FailNext(op, 1, elbv2fake.Throttled())
			if got := read(t, b.client, custom); len(got.Members) != 2 {
				t.Errorf("throttled once, then answered: %+v, want both members", got.Members)
			}
		})
	}
}

// TestPaging: every Describe follows Marker to the last page.
func TestPaging(t *testing.T) {
	b := newFakeBackend(t, elbv2fake.Options{RDSPageSize: 2})
	c := b.cluster(t)
	var want []members.Member
	for i := range 5 {
		id := fmt.Sprintf("%s-i%d", c, i)
		r := members.RoleReader
		if i == 0 {
			r = members.RoleWriter
		}
		want = append(want, member(id, b.instance(t, id, c), r))
	}
	b.fake.ResetCalls()
	wantMembers(t, b.client, role(c, config.RoleAny), want...)
	pages := map[string]int{}
	for _, call := range b.fake.Calls() {
		pages[call.Action]++
	}
	if pages["DescribeDBInstances"] != 3 {
		t.Errorf("DescribeDBInstances pages: %d, want 3 (5 instances, 2 a page)", pages["DescribeDBInstances"])
	}
}

// TestMemberBeingCreated: only a member RDS reports as creating, with no endpoint, is being created; one that
// DescribeDBInstances left out (no status, no address) is not, nor is any other state.
func TestMemberBeingCreated(t *testing.T) {
	for _, tc := range []struct {
		m    members.Member
		want bool
	}{
		{members.Member{Status: members.StatusCreating}, true},
		{members.Member{}, false}, // left out of DescribeDBInstances
		{members.Member{Status: members.StatusCreating, Address: "db.example"}, false},
		{members.Member{Status: "rebooting"}, false},
		{members.Member{Status: members.StatusAvailable, Address: "db.example"}, false},
	} {
		if got := tc.m.BeingCreated(); got != tc.want {
			t.Errorf("%+v.BeingCreated() = %v, want %v", tc.m, got, tc.want)
		}
	}
}
