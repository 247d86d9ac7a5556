package targets_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

// The same behaviours run, through the real SDK and NewFactory, against every backend. A backend differs only
// in how it creates the VPC and in what it can observe (the fake's call log).

const tgPort = 5432

// backend is one ELBv2/EC2 implementation reachable over HTTP through AWS_ENDPOINT_URL.
type backend struct {
	name string
	url  string
	// newGroup creates a VPC (primary 10.0.0.0/16, secondary 100.64.0.0/16) and an ip target group (TCP 5432)
	// in it.
	newGroup func(t *testing.T) fixture
	// calls returns the wire log of action names and params, or nil when the backend cannot observe them.
	calls func() []call
	// resetCalls forgets the call log (no-op where there is none).
	resetCalls func()
	// drains: deregistered targets pass through draining before they are gone.
	drains bool
	// storesAZ: the backend keeps and reports a target's AvailabilityZone.
	storesAZ bool
	// matchesPort: deregistration matches on IP and port, as ELBv2 does (not IP only).
	matchesPort bool
	// accounts: an assumed role in another account sees that account's resources, not the caller's.
	accounts bool
	// maxTargets is the backend's per-group target limit (TooManyTargets beyond it); 0 = none.
	maxTargets int
	// setFault makes the backend answer matching calls with a fault; nil where unsupported.
	setFault func(fn func(action string) (code string, delay time.Duration, ok bool))
}

// call is one request seen by the backend.
type call struct {
	Action      string
	Params      map[string][]string
	Code        string
	AccessKeyID string // that signed the call
}

type fixture struct {
	ARN, Name, VPCID string
}

func TestBackends(t *testing.T) {
	for _, nb := range []struct {
		name string
		new  func(t *testing.T) *backend
	}{
		{"moto", newMotoBackend},
		{"fake", newFakeBackend},
	} {
		t.Run(nb.name, func(t *testing.T) {
			b := nb.new(t)
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
	{"Group", testGroup},
	{"RegisterInVPC", testRegisterInVPC},
	{"RegisterOutsideVPCWithAZAll", testRegisterOutsideVPC},
	{"DeregisterEchoesPortAndAZ", testDeregisterEchoes},
	{"DeregisterWrongPortKeepsTarget", testDeregisterWrongPort},
	{"ChunksOf100", testChunks},
	{"TooManyTargets", testTooManyTargets},
	{"TargetGroupNotFound", testNotFound},
	{"EndpointURLOption", testEndpointURL},
	{"APIOptionsSeeEveryCall", testAPIOptions},
	{"RoleARN", testRoleARN},
	{"RetryerConfiguredOnce", testRetry},
	{"CallTimeout", testCallTimeout},
	{"Tags", testTags},
}

// ---- moto ----

func newMotoBackend(t *testing.T) *backend {
	return &backend{
		name:       "moto",
		url:        awstest.Moto(t).URL,
		newGroup:   func(t *testing.T) fixture { return motoGroup(t) },
		calls:      func() []call { return nil },
		resetCalls: func() {},
		accounts:   true,
	}
}

func motoGroup(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	cfg := sdkConfig(t)
	ec := ec2.NewFromConfig(cfg)
	vpc, err := ec.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatalf("moto CreateVpc: %v", err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	if _, err := ec.AssociateVpcCidrBlock(ctx, &ec2.AssociateVpcCidrBlockInput{VpcId: aws.String(vpcID), CidrBlock: aws.String("100.64.0.0/16")}); err != nil {
		t.Fatalf("moto AssociateVpcCidrBlock v4: %v", err)
	}
	return createTargetGroup(t, cfg, vpcID)
}

// ---- shared helpers ----

// sdkConfig is the SDK configuration from the environment SetAWSEnv prepared, for test setup calls.
func sdkConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var nameCleaner = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

// createTargetGroup creates the ip target group over the wire (moto and fake both support CreateTargetGroup).
func createTargetGroup(t *testing.T, cfg aws.Config, vpcID string) fixture {
	t.Helper()
	name := nameCleaner.ReplaceAllString(t.Name()[strings.LastIndex(t.Name(), "/")+1:], "-")
	name = strings.Trim(name[:min(len(name), 32)], "-")
	out, err := elbv2.NewFromConfig(cfg).CreateTargetGroup(context.Background(), &elbv2.CreateTargetGroupInput{
		Name:          aws.String(name),
		Port:          aws.Int32(tgPort),
		Protocol:      elbv2types.ProtocolEnumTcp,
		VpcId:         aws.String(vpcID),
		TargetType:    elbv2types.TargetTypeEnumIp,
		IpAddressType: elbv2types.TargetGroupIpAddressTypeEnumIpv4,
	})
	if err != nil {
		t.Fatalf("CreateTargetGroup %s: %v", name, err)
	}
	return fixture{ARN: aws.ToString(out.TargetGroups[0].TargetGroupArn), Name: name, VPCID: vpcID}
}

// groupAndClient creates a target group on b and a client for it built the production way (newClient).
func (b *backend) groupAndClient(t *testing.T) (fixture, *targets.Client) {
	t.Helper()
	f := b.newGroup(t)
	return f, newClient(t, f.ARN, targets.FactoryOptions{})
}

// newClient builds a Client the production way: NewFactory (standard env) and For.
func newClient(t *testing.T, arnStr string, opts targets.FactoryOptions) *targets.Client {
	t.Helper()
	f, err := targets.NewFactory(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.For(context.Background(), arnStr, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustHealth(t *testing.T, c *targets.Client, arnStr string) []nlb.TargetHealth {
	t.Helper()
	hs, err := c.Health(context.Background(), arnStr)
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	if !slices.IsSortedFunc(hs, func(a, b nlb.TargetHealth) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		return int(a.Port - b.Port)
	}) {
		t.Errorf("Health not sorted by IP then port: %v", hs)
	}
	return hs
}

func find(hs []nlb.TargetHealth, ip string) (nlb.TargetHealth, bool) {
	for _, h := range hs {
		if h.IP == netip.MustParseAddr(ip) {
			return h, true
		}
	}
	return nlb.TargetHealth{}, false
}

// registered: present and not draining (I5).
func registered(hs []nlb.TargetHealth, ip string) (nlb.TargetHealth, bool) {
	h, ok := find(hs, ip)
	return h, ok && !h.Draining()
}

func tgt(ip string, port int32, az string) nlb.Target {
	return nlb.Target{IP: netip.MustParseAddr(ip), Port: port, AvailabilityZone: az}
}

// wireTargets returns the targets of each call to action, as sent: "ip:port/az" with "-" for an omitted field.
func wireTargets(b *backend, action string) [][]string {
	var out [][]string
	for _, c := range b.calls() {
		if c.Action != action {
			continue
		}
		var ts []string
		for i := 1; ; i++ {
			p := fmt.Sprintf("Targets.member.%d.", i)
			id, ok := c.Params[p+"Id"]
			if !ok {
				break
			}
			port, az := "-", "-"
			if v := c.Params[p+"Port"]; len(v) > 0 {
				port = v[0]
			}
			if v := c.Params[p+"AvailabilityZone"]; len(v) > 0 {
				az = v[0]
			}
			ts = append(ts, id[0]+":"+port+"/"+az)
		}
		out = append(out, ts)
	}
	return out
}

// ---- behaviours ----

// testTags: the ownership record's round trip, AddTags overwriting a value and RemoveTags leaving other tags.
func testTags(t *testing.T, b *backend) {
	f, c := b.groupAndClient(t)
	ctx := context.Background()
	if tags, err := c.Tags(ctx, f.ARN); err != nil || len(tags) != 0 {
		t.Fatalf("Tags of a new group = %v, %v; want none", tags, err)
	}
	if err := c.AddTags(ctx, f.ARN, map[string]string{"ipsync:owned": "5432=10.0.1.5", "team": "db"}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddTags(ctx, f.ARN, map[string]string{"ipsync:owned": "5432=10.0.1.5+10.0.2.7", "ipsync:owned:1": "6432=10.0.1.5"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveTags(ctx, f.ARN, []string{"ipsync:owned:1"}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.Tags(ctx, f.ARN)
	want := map[string]string{"ipsync:owned": "5432=10.0.1.5+10.0.2.7", "team": "db"}
	if err != nil || !maps.Equal(tags, want) {
		t.Errorf("Tags = %v, %v; want %v", tags, err, want)
	}
}

func testGroup(t *testing.T, b *backend) {
	f, c := b.groupAndClient(t)
	g, err := c.Group(context.Background(), f.ARN)
	if err != nil {
		t.Fatal(err)
	}
	want := targets.Group{ARN: f.ARN, Name: f.Name, TargetType: "ip", Protocol: "TCP", VPCID: f.VPCID, IPAddressType: "ipv4", Port: tgPort}
	if g != want {
		t.Errorf("Group =\n %+v\nwant\n %+v", g, want)
	}
}

func testRegisterInVPC(t *testing.T, b *backend) {
	f, c := b.groupAndClient(t)
	b.resetCalls()
	// Port 0 is left out: the group's port applies. The secondary CIDR counts as inside the VPC.
	ts := []nlb.Target{tgt("10.0.1.10", tgPort, ""), tgt("10.0.1.11", 0, ""), tgt("100.64.0.5", 6543, "")}
	if err := c.Register(context.Background(), f.ARN, ts); err != nil {
		t.Fatal(err)
	}
	hs := mustHealth(t, c, f.ARN)
	for _, w := range []nlb.Target{tgt("10.0.1.10", tgPort, ""), tgt("10.0.1.11", tgPort, ""), tgt("100.64.0.5", 6543, "")} {
		h, ok := registered(hs, w.IP.String())
		if !ok {
			t.Errorf("%s not registered; Health = %v", w.IP, hs)
			continue
		}
		if h.Port != w.Port || h.AvailabilityZone == "all" {
			t.Errorf("%s: Health reports port %d AZ %q, want port %d and AZ not all", w.IP, h.Port, h.AvailabilityZone, w.Port)
		}
		if h.State != "initial" && h.State != "healthy" {
			t.Errorf("%s: state %q, want initial or healthy", w.IP, h.State)
		}
	}
	if len(hs) != 3 {
		t.Errorf("Health has %d targets, want 3: %v", len(hs), hs)
	}
	if b.calls() != nil {
		got := wireTargets(b, "RegisterTargets")
		want := [][]string{{"10.0.1.10:5432/-", "10.0.1.11:-/-", "100.64.0.5:6543/-"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("RegisterTargets on the wire = %v, want %v", got, want)
		}
	}
}

func testRegisterOutsideVPC(t *testing.T, b *backend) {
	f, c := b.groupAndClient(t)
	if err := c.Register(context.Background(), f.ARN, []nlb.Target{tgt("192.0.2.10", tgPort, "all")}); err != nil {
		t.Fatal(err)
	}
	hs := mustHealth(t, c, f.ARN)
	h, ok := registered(hs, "192.0.2.10")
	if !ok {
		t.Fatalf("192.0.2.10 not registered; Health = %v", hs)
	}
	if h.Port != tgPort {
		t.Errorf("port %d, want %d", h.Port, tgPort)
	}
	if !b.storesAZ {
		t.Logf("%s does not store AvailabilityZone (reported %q); AZ check skipped", b.name, h.AvailabilityZone)
		return
	}
	if h.AvailabilityZone != "all" {
		t.Errorf("AZ %q, want all", h.AvailabilityZone)
	}
	// ELBv2 refuses an outside-VPC address without AZ all; the error must come back to the caller.
	err := c.Register(context.Background(), f.ARN, []nlb.Target{tgt("192.0.2.11", tgPort, "")})
	if err == nil {
		t.Errorf("registering 192.0.2.11 (outside the VPC) without AZ all succeeded; want an error")
	} else if code := awserr.Code(err); code != "ValidationError" {
		t.Errorf("error %v has code %q, want ValidationError (what awserr explains)", err, code)
	}
}

func testDeregisterEchoes(t *testing.T, b *backend) {
	f, c := b.groupAndClient(t)
	ctx := context.Background()
	// A port other than the group's, so a deregistration without it would miss (I4).
	keep := tgt("10.0.1.21", tgPort, "")
	if err := c.Register(ctx, f.ARN, []nlb.Target{tgt("10.0.1.20", 6543, ""), tgt("192.0.2.20", tgPort, "all"), keep}); err != nil {
		t.Fatal(err)
	}
	var stale []nlb.Target
	for _, h := range mustHealth(t, c, f.ARN) {
		if h.IP != keep.IP {
			stale = append(stale, h.Target) // exactly as reported
		}
	}
	if len(stale) != 2 {
		t.Fatalf("want 2 targets to deregister, got %v", stale)
	}
	b.resetCalls()
	if err := c.Deregister(ctx, f.ARN, stale); err != nil {
		t.Fatal(err)
	}
	hs := mustHealth(t, c, f.ARN)
	for _, ip := range []string{"10.0.1.20", "192.0.2.20"} {
		if h, ok := registered(hs, ip); ok {
			t.Errorf("%s still registered after Deregister: %+v", ip, h)
		}
		if h, ok := find(hs, ip); ok {
			if !b.drains {
				t.Errorf("%s still listed (%s); %s removes deregistered targets at once", ip, h.State, b.name)
			} else {
				t.Logf("%s: %s (draining counts as deregistered)", ip, h.State)
			}
		}
	}
	if _, ok := registered(hs, keep.IP.String()); !ok {
		t.Errorf("%s was not deregistered but is gone: %v", keep.IP, hs)
	}
	if b.calls() != nil {
		got := wireTargets(b, "DeregisterTargets")
		want := [][]string{{"10.0.1.20:6543/-", "192.0.2.20:5432/all"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("DeregisterTargets on the wire = %v, want %v (Port and AZ as Health reported them)", got, want)
		}
	}
}

func testDeregisterWrongPort(t *testing.T, b *backend) {
	if !b.matchesPort {
		t.Skipf("%s keys targets by IP only: a deregistration with any port removes the target", b.name)
	}
	f, c := b.groupAndClient(t)
	ctx := context.Background()
	if err := c.Register(ctx, f.ARN, []nlb.Target{tgt("10.0.1.30", tgPort, "")}); err != nil {
		t.Fatal(err)
	}
	// ELBv2 answers success and does nothing (why ipsync names the registered port: I4 in docs/safety.md);
	// the target stays.
	if err := c.Deregister(ctx, f.ARN, []nlb.Target{tgt("10.0.1.30", 6543, "")}); err != nil {
		t.Fatalf("Deregister with a port that is not registered: %v", err)
	}
	if _, ok := registered(mustHealth(t, c, f.ARN), "10.0.1.30"); !ok {
		t.Errorf("10.0.1.30:5432 deregistered by a request naming port 6543")
	}
}

func testChunks(t *testing.T, b *backend) {
	f, c := b.groupAndClient(t)
	ctx := context.Background()
	var ts []nlb.Target
	for i := range 250 {
		ts = append(ts, tgt(fmt.Sprintf("10.0.%d.%d", 2+i/200, 1+i%200), tgPort, ""))
	}
	b.resetCalls()
	if err := c.Register(ctx, f.ARN, ts); err != nil {
		t.Fatal(err)
	}
	hs := mustHealth(t, c, f.ARN)
	if len(hs) != len(ts) {
		t.Fatalf("Health has %d targets after registering %d", len(hs), len(ts))
	}
	for i, h := range hs {
		if h.IP != ts[i].IP || h.Port != ts[i].Port {
			t.Fatalf("Health[%d] = %v, want %v", i, h.Target, ts[i])
		}
	}
	var reported []nlb.Target
	for _, h := range hs {
		reported = append(reported, h.Target)
	}
	if err := c.Deregister(ctx, f.ARN, reported); err != nil {
		t.Fatal(err)
	}
	for _, h := range mustHealth(t, c, f.ARN) {
		if !h.Draining() {
			t.Fatalf("%v still registered (%s) after deregistering all", h.Target, h.State)
		}
	}
	if b.calls() != nil {
		for _, action := range []string{"RegisterTargets", "DeregisterTargets"} {
			var sizes []int
			for _, w := range wireTargets(b, action) {
				sizes = append(sizes, len(w))
			}
			if !slices.Equal(sizes, []int{100, 100, 50}) {
				t.Errorf("%s calls carried %v targets, want [100 100 50]", action, sizes)
			}
		}
	}
}

func testTooManyTargets(t *testing.T, b *backend) {
	if b.maxTargets == 0 {
		t.Skipf("%s has no target limit", b.name)
	}
	f, c := b.groupAndClient(t)
	var ts []nlb.Target
	for i := range b.maxTargets + 1 {
		ts = append(ts, tgt(netip.AddrFrom4([4]byte{10, 0, byte(2 + i/250), byte(1 + i%250)}).String(), tgPort, ""))
	}
	err := c.Register(context.Background(), f.ARN, ts)
	if !awserr.IsTooManyTargets(err) {
		t.Fatalf("registering %d targets into a group limited to %d: %v, want TooManyTargets", len(ts), b.maxTargets, err)
	}
}

func testNotFound(t *testing.T, b *backend) {
	f := b.newGroup(t)
	a, err := arn.Parse(f.ARN)
	if err != nil {
		t.Fatal(err)
	}
	a.Resource = "targetgroup/does-not-exist/0123456789abcdef"
	missing := a.String()
	c := newClient(t, missing, targets.FactoryOptions{})
	_, gerr := c.Group(context.Background(), missing)
	_, herr := c.Health(context.Background(), missing)
	for op, err := range map[string]error{"Group": gerr, "Health": herr} {
		// The code is what awserr explains: a hard error that says to check target_group_arn.
		if code := awserr.Code(err); code != "TargetGroupNotFound" {
			t.Errorf("%s: code %q (%v), want TargetGroupNotFound", op, code, err)
		}
		if fix, hard := awserr.Hard(err); !hard || !strings.Contains(fix, "target_group_arn") {
			t.Errorf("%s: awserr.Hard = %q, %v; want a hard error naming target_group_arn", op, fix, hard)
		}
	}
}

func testEndpointURL(t *testing.T, b *backend) {
	f := b.newGroup(t)
	// Nothing listens on port 1: only the option can make the call succeed.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	c := newClient(t, f.ARN, targets.FactoryOptions{EndpointURL: b.url})
	if _, err := c.Group(context.Background(), f.ARN); err != nil {
		t.Fatalf("with EndpointURL %s: %v", b.url, err)
	}
	c = newClient(t, f.ARN, targets.FactoryOptions{MaxAttempts: 1})
	if _, err := c.Group(context.Background(), f.ARN); err == nil {
		t.Fatalf("without EndpointURL the call reached a backend; AWS_ENDPOINT_URL was ignored")
	}
}

// opRecorder is middleware that records every operation, as a metrics middleware would see them.
type opRecorder struct {
	mu  sync.Mutex
	ops []string
}

func (r *opRecorder) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("opRecorder",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			r.mu.Lock()
			r.ops = append(r.ops, awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx))
			r.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

func (r *opRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

func testAPIOptions(t *testing.T, b *backend) {
	f := b.newGroup(t)
	rec := &opRecorder{}
	c := newClient(t, f.ARN, targets.FactoryOptions{APIOptions: []func(*middleware.Stack) error{rec.add}})
	ctx := context.Background()
	if _, err := c.Group(ctx, f.ARN); err != nil {
		t.Fatal(err)
	}
	ts := []nlb.Target{tgt("10.0.1.40", tgPort, "")}
	if err := c.Register(ctx, f.ARN, ts); err != nil {
		t.Fatal(err)
	}
	mustHealth(t, c, f.ARN)
	if err := c.Deregister(ctx, f.ARN, ts); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Elastic Load Balancing v2.DescribeTargetGroups", "Elastic Load Balancing v2.RegisterTargets",
		"Elastic Load Balancing v2.DescribeTargetHealth", "Elastic Load Balancing v2.DeregisterTargets",
	}
	if got := rec.seen(); !slices.Equal(got, want) {
		t.Errorf("middleware saw %q, want %q", got, want)
	}
}

func testRoleARN(t *testing.T, b *backend) {
	f := b.newGroup(t)
	a, _ := arn.Parse(f.ARN)
	role := "arn:aws:iam::" + a.AccountID + ":role/ipsync-test"
	rec := &opRecorder{}
	fac, err := targets.NewFactory(context.Background(), targets.FactoryOptions{APIOptions: []func(*middleware.Stack) error{rec.add}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := fac.For(context.Background(), f.ARN, role)
	if err != nil {
		t.Fatal(err)
	}
	b.resetCalls()
	for range 2 {
		if _, err := c.Group(context.Background(), f.ARN); err != nil {
			t.Fatalf("Group as %s: %v", role, err)
		}
	}
	// Assumed once, then the cached credentials serve the second call. (The middleware sees DescribeTargetGroups
	// before the credentials are resolved, hence the sort.)
	got := rec.seen()
	slices.Sort(got)
	if want := []string{"Elastic Load Balancing v2.DescribeTargetGroups", "Elastic Load Balancing v2.DescribeTargetGroups", "STS.AssumeRole"}; !slices.Equal(got, want) {
		t.Errorf("calls as %s: %q, want %q", role, got, want)
	}
	if b.accounts {
		// The assumed credentials, not the base ones, sign the calls: as a role in another account the
		// target group is not visible.
		other := "arn:aws:iam::210987654321:role/ipsync-test"
		c, err := fac.For(context.Background(), f.ARN, other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Group(context.Background(), f.ARN); awserr.Code(err) != "TargetGroupNotFound" {
			t.Errorf("Group as %s (another account): %v, want TargetGroupNotFound", other, err)
		}
	}
	if b.calls() != nil {
		var found bool
		for _, c := range b.calls() {
			if c.Action == "AssumeRole" {
				found = true
				if got := c.Params["RoleArn"]; !slices.Equal(got, []string{role}) {
					t.Errorf("AssumeRole RoleArn = %q, want %q", got, role)
				}
				if got := c.Params["RoleSessionName"]; !slices.Equal(got, []string{targets.RoleSessionName}) {
					t.Errorf("AssumeRole RoleSessionName = %q, want %q", got, targets.RoleSessionName)
				}
			}
		}
		if !found {
			t.Errorf("backend saw no AssumeRole call")
		}
		// The assumed credentials, not the base ones ("test"), sign the ELBv2 calls.
		for _, c := range b.calls() {
			if c.Action == "DescribeTargetGroups" && (c.AccessKeyID == "" || c.AccessKeyID == "test") {
				t.Errorf("DescribeTargetGroups signed with access key %q, want the assumed role's", c.AccessKeyID)
			}
		}
	}
}

func testRetry(t *testing.T, b *backend) {
	if b.setFault == nil {
		t.Skipf("%s cannot inject faults", b.name)
	}
	f := b.newGroup(t)
	ctx := context.Background()
	var mu sync.Mutex
	throttled := 0
	b.setFault(func(action string) (string, time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		if action != "DescribeTargetHealth" || throttled >= 1 {
			return "", 0, false
		}
		throttled++
		return "Throttling", 0, true
	})
	// One Throttling answer: the SDK retryer absorbs it.
	c := newClient(t, f.ARN, targets.FactoryOptions{})
	b.resetCalls()
	if _, err := c.Health(ctx, f.ARN); err != nil {
		t.Fatalf("Health after one Throttling answer: %v", err)
	}
	if n := countCalls(b, "DescribeTargetHealth"); n != 2 {
		t.Errorf("DescribeTargetHealth sent %d times, want 2 (one retry)", n)
	}
	// Throttled every time: MaxAttempts bounds the attempts and the error says Throttling.
	b.setFault(func(action string) (string, time.Duration, bool) {
		return "Throttling", 0, action == "DescribeTargetHealth"
	})
	defer b.setFault(nil)
	c = newClient(t, f.ARN, targets.FactoryOptions{MaxAttempts: 2})
	b.resetCalls()
	_, err := c.Health(ctx, f.ARN)
	if _, throttle := retry.DefaultThrottleErrorCodes[awserr.Code(err)]; !throttle || awserr.Code(err) != "Throttling" {
		t.Fatalf("Health when always throttled: err %v, want Throttling", err)
	}
	if n := countCalls(b, "DescribeTargetHealth"); n != 2 {
		t.Errorf("DescribeTargetHealth sent %d times with MaxAttempts 2", n)
	}
}

func testCallTimeout(t *testing.T, b *backend) {
	if b.setFault == nil {
		t.Skipf("%s cannot inject delays", b.name)
	}
	f := b.newGroup(t)
	b.setFault(func(action string) (string, time.Duration, bool) {
		return "", 2 * time.Second, action == "DescribeTargetHealth"
	})
	defer b.setFault(nil)
	c := newClient(t, f.ARN, targets.FactoryOptions{CallTimeout: 200 * time.Millisecond, MaxAttempts: 1})
	start := time.Now()
	_, err := c.Health(context.Background(), f.ARN)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Health against a 2s answer with CallTimeout 200ms: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Health returned after %v, want about 200ms", d)
	}
}

func countCalls(b *backend, action string) int {
	n := 0
	for _, c := range b.calls() {
		if c.Action == action {
			n++
		}
	}
	return n
}
