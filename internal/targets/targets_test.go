package targets_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil/motoserver"
)

const goodARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/orders/0123456789abcdef"

func TestRegionFromARN(t *testing.T) {
	for _, tc := range []struct {
		name, arn, region string
		errHas            []string
	}{
		{"target group", goodARN, "eu-west-1", nil},
		{"china partition", "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:targetgroup/db/0123456789abcdef", "cn-north-1", nil},
		{"wrong service", "arn:aws:rds:us-east-1:123456789012:db:orders", "", []string{"service \"rds\"", "arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID"}},
		{"listener", "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/nlb/50dc6c495c0c9188/f2f7dc8efc522ab2", "", []string{"listener", "not a target group"}},
		{"load balancer", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/nlb/50dc6c495c0c9188", "", []string{"loadbalancer"}},
		{"no region", "arn:aws:elasticloadbalancing::123456789012:targetgroup/orders/0123456789abcdef", "", []string{"no region"}},
		{"garbage", "orders-tg", "", []string{"not an ARN", "arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID"}},
		{"empty", "", "", []string{"not an ARN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := targets.RegionFromARN(tc.arn)
			if tc.errHas == nil {
				if err != nil || got != tc.region {
					t.Fatalf("RegionFromARN(%q) = %q, %v; want %q", tc.arn, got, err, tc.region)
				}
				return
			}
			if err == nil {
				t.Fatalf("RegionFromARN(%q) = %q, want an error", tc.arn, got)
			}
			for _, s := range append(tc.errHas, fmt.Sprintf("%q", tc.arn)) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestFactoryCachesClientsPerRegionAndRole(t *testing.T) {
	motoserver.SetAWSEnv(t, "http://127.0.0.1:1") // For makes no call; nothing must reach AWS anyway
	f, err := targets.NewFactory(context.Background(), targets.FactoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const (
		euB   = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/payments/fedcba9876543210"
		us    = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef"
		roleA = "arn:aws:iam::210987654321:role/ipsync"
		roleB = "arn:aws:iam::210987654321:role/other"
	)
	for_ := func(tg, role string) *targets.Client {
		t.Helper()
		c, err := f.For(context.Background(), tg, role)
		if err != nil {
			t.Fatalf("For(%s, %q): %v", tg, role, err)
		}
		return c
	}
	// Concurrent first use must still yield one client per key (run with -race).
	var wg sync.WaitGroup
	got := make([]*targets.Client, 8)
	for i := range got {
		wg.Go(func() { got[i] = for_(goodARN, "") })
	}
	wg.Wait()
	for _, c := range got[1:] {
		if c != got[0] {
			t.Fatal("concurrent For calls for the same region and role returned different clients")
		}
	}
	if for_(euB, "") != got[0] {
		t.Error("two target groups in one region without role got different clients")
	}
	if for_(us, "") == got[0] {
		t.Error("different regions share a client")
	}
	a := for_(goodARN, roleA)
	if a == got[0] || a != for_(euB, roleA) {
		t.Error("role clients not cached per (region, role)")
	}
	if for_(goodARN, roleB) == a {
		t.Error("different roles share a client")
	}

	if _, err := f.For(context.Background(), "arn:aws:rds:us-east-1:123456789012:db:orders", ""); err == nil {
		t.Error("For accepted an RDS ARN")
	}
	if _, err := f.For(context.Background(), goodARN, "ipsync-role"); err == nil || !strings.Contains(err.Error(), "ipsync-role") {
		t.Errorf("For with role_arn %q: %v, want an error naming it", "ipsync-role", err)
	}
}

func TestDraining(t *testing.T) {
	for state, want := range map[string]bool{
		"initial": false, "healthy": false, "unhealthy": false, "unused": false, "unavailable": false,
		"draining": true, "unhealthy.draining": true,
	} {
		if got := (nlb.TargetHealth{State: state}).Draining(); got != want {
			t.Errorf("Draining() for %q = %v, want %v", state, got, want)
		}
	}
}

// stubELB records the exact requests, in the spirit of external-dns's provider stubs.
type stubELB struct {
	mu           sync.Mutex
	registers    [][]elbv2types.TargetDescription
	deregisters  [][]elbv2types.TargetDescription
	health       []elbv2types.TargetHealthDescription
	registerErrs []error // returned by successive RegisterTargets calls
}

var _ targets.ELBv2API = (*stubELB)(nil)

func (s *stubELB) DescribeTargetGroups(context.Context, *elbv2.DescribeTargetGroupsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error) {
	return &elbv2.DescribeTargetGroupsOutput{}, nil
}

func (s *stubELB) DescribeTargetHealth(context.Context, *elbv2.DescribeTargetHealthInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error) {
	return &elbv2.DescribeTargetHealthOutput{TargetHealthDescriptions: s.health}, nil
}

func (s *stubELB) RegisterTargets(_ context.Context, in *elbv2.RegisterTargetsInput, _ ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registers = append(s.registers, in.Targets)
	if len(s.registerErrs) > 0 {
		err := s.registerErrs[0]
		s.registerErrs = s.registerErrs[1:]
		if err != nil {
			return nil, err
		}
	}
	return &elbv2.RegisterTargetsOutput{}, nil
}

func (s *stubELB) DeregisterTargets(_ context.Context, in *elbv2.DeregisterTargetsInput, _ ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deregisters = append(s.deregisters, in.Targets)
	return &elbv2.DeregisterTargetsOutput{}, nil
}

func desc(d elbv2types.TargetDescription) string {
	port, az := "-", "-"
	if d.Port != nil {
		port = fmt.Sprint(*d.Port)
	}
	if d.AvailabilityZone != nil {
		az = *d.AvailabilityZone
	}
	return aws.ToString(d.Id) + ":" + port + "/" + az
}

// I4 at the request level: what Health reported goes back unchanged, AZ "" is omitted.
func TestDeregisterEchoesHealthExactly(t *testing.T) {
	stub := &stubELB{health: []elbv2types.TargetHealthDescription{
		{Target: &elbv2types.TargetDescription{Id: aws.String("192.0.2.7"), Port: aws.Int32(5432), AvailabilityZone: aws.String("all")},
			TargetHealth: &elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumHealthy}},
		{Target: &elbv2types.TargetDescription{Id: aws.String("10.0.0.7"), Port: aws.Int32(6543), AvailabilityZone: aws.String("us-east-1a")},
			TargetHealth: &elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumDraining, Reason: elbv2types.TargetHealthReasonEnumDeregistrationInProgress, Description: aws.String("d")}},
		{Target: &elbv2types.TargetDescription{Id: aws.String("10.0.0.7"), Port: aws.Int32(5432)},
			TargetHealth: &elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumInitial}},
	}}
	c := targets.NewClient(stub)
	hs, err := c.Health(context.Background(), goodARN)
	if err != nil {
		t.Fatal(err)
	}
	want := []nlb.TargetHealth{
		{Target: nlb.Target{IP: netip.MustParseAddr("10.0.0.7"), Port: 5432}, State: "initial"},
		{Target: nlb.Target{IP: netip.MustParseAddr("10.0.0.7"), Port: 6543, AvailabilityZone: "us-east-1a"}, State: "draining", Reason: "Target.DeregistrationInProgress", Description: "d"},
		{Target: nlb.Target{IP: netip.MustParseAddr("192.0.2.7"), Port: 5432, AvailabilityZone: "all"}, State: "healthy"},
	}
	if !slices.Equal(hs, want) {
		t.Fatalf("Health =\n %v\nwant\n %v", hs, want)
	}
	var ts []nlb.Target
	for _, h := range hs {
		ts = append(ts, h.Target)
	}
	if err := c.Deregister(context.Background(), goodARN, ts); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range stub.deregisters[0] {
		got = append(got, desc(d))
	}
	if w := []string{"10.0.0.7:5432/-", "10.0.0.7:6543/us-east-1a", "192.0.2.7:5432/all"}; !slices.Equal(got, w) {
		t.Errorf("DeregisterTargets sent %v, want %v", got, w)
	}
}

// TestHealthOneRowPerTarget (issue 9 item 13): DescribeTargetHealth rows that repeat a target are merged; when
// they disagree, the draining row is kept (I5 errs toward registering again, which changes nothing).
func TestHealthOneRowPerTarget(t *testing.T) {
	row := func(ip string, port int32, state elbv2types.TargetHealthStateEnum) elbv2types.TargetHealthDescription {
		return elbv2types.TargetHealthDescription{Target: &elbv2types.TargetDescription{Id: aws.String(ip), Port: aws.Int32(port)},
			TargetHealth: &elbv2types.TargetHealth{State: state}}
	}
	stub := &stubELB{health: []elbv2types.TargetHealthDescription{
		row("10.0.0.7", 5432, elbv2types.TargetHealthStateEnumHealthy),
		row("10.0.0.8", 5432, elbv2types.TargetHealthStateEnumHealthy),
		row("10.0.0.7", 5432, elbv2types.TargetHealthStateEnumHealthy),
		row("10.0.0.8", 5432, elbv2types.TargetHealthStateEnumDraining),
		row("10.0.0.8", 5432, elbv2types.TargetHealthStateEnumHealthy),
		row("10.0.0.7", 6543, elbv2types.TargetHealthStateEnumInitial),
	}}
	hs, err := targets.NewClient(stub).Health(context.Background(), goodARN)
	if err != nil {
		t.Fatal(err)
	}
	want := []nlb.TargetHealth{
		{Target: nlb.Target{IP: netip.MustParseAddr("10.0.0.7"), Port: 5432}, State: "healthy"},
		{Target: nlb.Target{IP: netip.MustParseAddr("10.0.0.7"), Port: 6543}, State: "initial"},
		{Target: nlb.Target{IP: netip.MustParseAddr("10.0.0.8"), Port: 5432}, State: "draining"},
	}
	if !slices.Equal(hs, want) {
		t.Fatalf("Health =\n %v\nwant\n %v", hs, want)
	}
}

func TestRegisterChunksAndStopsAtFirstError(t *testing.T) {
	var ts []nlb.Target
	for i := range 201 {
		ts = append(ts, nlb.Target{IP: netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}), Port: 5432})
	}
	stub := &stubELB{}
	c := targets.NewClient(stub)
	if err := c.Register(context.Background(), goodARN, ts); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	var sent []string
	for _, r := range stub.registers {
		sizes = append(sizes, len(r))
		for _, d := range r {
			sent = append(sent, aws.ToString(d.Id))
		}
	}
	if !slices.Equal(sizes, []int{100, 100, 1}) {
		t.Errorf("chunk sizes %v, want [100 100 1]", sizes)
	}
	if len(sent) != 201 || sent[0] != "10.0.0.0" || sent[200] != "10.0.0.200" {
		t.Errorf("targets sent out of order or lost: %d sent", len(sent))
	}

	tooMany := &elbv2types.TooManyTargetsException{Message: aws.String("limit")}
	stub = &stubELB{registerErrs: []error{nil, tooMany}}
	c = targets.NewClient(stub)
	err := c.Register(context.Background(), goodARN, ts)
	if !awserr.IsTooManyTargets(err) {
		t.Fatalf("Register error %v, want TooManyTargets", err)
	}
	if len(stub.registers) != 2 {
		t.Errorf("%d RegisterTargets calls, want 2 (stop at the failing chunk)", len(stub.registers))
	}
	for _, s := range []string{"101-200 of 201"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestHealthRejectsNonIPTargets(t *testing.T) {
	stub := &stubELB{health: []elbv2types.TargetHealthDescription{
		{Target: &elbv2types.TargetDescription{Id: aws.String("i-0123456789abcdef0"), Port: aws.Int32(5432)}},
	}}
	_, err := targets.NewClient(stub).Health(context.Background(), goodARN)
	if err == nil || !strings.Contains(err.Error(), "type ip") {
		t.Errorf("Health with an instance target: %v, want an error saying the group must be of type ip", err)
	}
}

// TestStatesMatchTheSDK: package nlb spells the health states it acts on without importing the SDK; they must
// stay the SDK's, or Draining would miss a draining target (I5).
func TestStatesMatchTheSDK(t *testing.T) {
	sdk := elbv2types.TargetHealthStateEnum("").Values()
	for _, s := range []string{nlb.StateInitial, nlb.StateHealthy, nlb.StateDraining, nlb.StateUnhealthyDraining} {
		if !slices.Contains(sdk, elbv2types.TargetHealthStateEnum(s)) {
			t.Errorf("nlb state %q is not one of the SDK's %v", s, sdk)
		}
	}
}

func (s *stubELB) DescribeTags(context.Context, *elbv2.DescribeTagsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTagsOutput, error) {
	return &elbv2.DescribeTagsOutput{}, nil
}

func (s *stubELB) AddTags(context.Context, *elbv2.AddTagsInput, ...func(*elbv2.Options)) (*elbv2.AddTagsOutput, error) {
	return nil, errors.New("not used")
}

func (s *stubELB) RemoveTags(context.Context, *elbv2.RemoveTagsInput, ...func(*elbv2.Options)) (*elbv2.RemoveTagsOutput, error) {
	return nil, errors.New("not used")
}
