package elbv2fake_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/testutil"
	"github.com/ipsync/ipsync/internal/testutil/fakeclock"
)

// sdkConfig is how ipsync's factory builds its clients: static credentials, a region, the endpoint override,
// and the standard retryer (without backoff sleeps, to keep tests fast).
func sdkConfig(s *elbv2fake.Server, maxAttempts int) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(s.URL()),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
}

func elbClient(s *elbv2fake.Server, maxAttempts int) *elbv2.Client {
	return elbv2.NewFromConfig(sdkConfig(s, maxAttempts))
}

// setup makes a server with VPC 10.0.0.0/16 and a TCP:5432 ip target group created through the SDK.
func setup(t *testing.T, opts elbv2fake.Options) (*elbv2fake.Server, *elbv2.Client, string) {
	t.Helper()
	s := elbv2fake.Start(t, opts)
	if err := s.AddVPC("vpc-0123456789abcdef0", "10.0.0.0/16"); err != nil {
		t.Fatal(err)
	}
	c := elbClient(s, 1)
	out, err := c.CreateTargetGroup(context.Background(), &elbv2.CreateTargetGroupInput{
		Name: aws.String("orders"), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(5432),
		VpcId: aws.String("vpc-0123456789abcdef0"), TargetType: types.TargetTypeEnumIp,
	})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	arn := aws.ToString(out.TargetGroups[0].TargetGroupArn)
	if !strings.HasPrefix(arn, "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/") {
		t.Fatalf("ARN = %q", arn)
	}
	return s, c, arn
}

func tgt(ip string, port int32, az string) types.TargetDescription {
	d := types.TargetDescription{Id: aws.String(ip)}
	if port != 0 {
		d.Port = aws.Int32(port)
	}
	if az != "" {
		d.AvailabilityZone = aws.String(az)
	}
	return d
}

func register(t *testing.T, c *elbv2.Client, arn string, ts ...types.TargetDescription) error {
	t.Helper()
	_, err := c.RegisterTargets(context.Background(), &elbv2.RegisterTargetsInput{TargetGroupArn: &arn, Targets: ts})
	return err
}

func deregister(t *testing.T, c *elbv2.Client, arn string, ts ...types.TargetDescription) error {
	t.Helper()
	_, err := c.DeregisterTargets(context.Background(), &elbv2.DeregisterTargetsInput{TargetGroupArn: &arn, Targets: ts})
	return err
}

// health renders DescribeTargetHealth as "ip:port/az=state(reason)" rows, in the order returned.
func health(t *testing.T, c *elbv2.Client, arn string, filter ...types.TargetDescription) []string {
	t.Helper()
	out, err := c.DescribeTargetHealth(context.Background(), &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn, Targets: filter})
	if err != nil {
		t.Fatalf("DescribeTargetHealth: %v", err)
	}
	var rows []string
	for _, d := range out.TargetHealthDescriptions {
		row := aws.ToString(d.Target.Id) + ":" + itoa(aws.ToInt32(d.Target.Port))
		if az := aws.ToString(d.Target.AvailabilityZone); az != "" {
			row += "/" + az
		}
		row += "=" + string(d.TargetHealth.State)
		if d.TargetHealth.Reason != "" {
			row += "(" + string(d.TargetHealth.Reason) + ")"
		}
		if aws.ToString(d.HealthCheckPort) != itoa(aws.ToInt32(d.Target.Port)) {
			t.Errorf("HealthCheckPort = %q for %s", aws.ToString(d.HealthCheckPort), row)
		}
		rows = append(rows, row)
	}
	return rows
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func want(t *testing.T, what string, got, exp []string) {
	t.Helper()
	if !slices.Equal(got, exp) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, exp)
	}
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestRegisterInitialThenHealthy(t *testing.T) {
	clk := fakeclock.New()
	s, c, arn := setup(t, elbv2fake.Options{HealthyAfter: 10 * time.Second, Now: clk.Now})

	if err := register(t, c, arn, tgt("10.0.1.5", 0, ""), tgt("10.0.2.6", 6000, "")); err != nil {
		t.Fatalf("RegisterTargets: %v", err)
	}
	want(t, "just registered", health(t, c, arn), []string{
		"10.0.1.5:5432=initial(Elb.RegistrationInProgress)", // port defaults to the group's
		"10.0.2.6:6000=initial(Elb.RegistrationInProgress)",
	})
	clk.Advance(9 * time.Second)
	want(t, "before HealthyAfter", health(t, c, arn)[:1], []string{"10.0.1.5:5432=initial(Elb.RegistrationInProgress)"})
	clk.Advance(time.Second)
	want(t, "after HealthyAfter", health(t, c, arn), []string{"10.0.1.5:5432=healthy", "10.0.2.6:6000=healthy"})

	got := s.Targets(arn)
	exp := []elbv2fake.TargetState{
		{IP: netip.MustParseAddr("10.0.1.5"), Port: 5432, State: "healthy"},
		{IP: netip.MustParseAddr("10.0.2.6"), Port: 6000, State: "healthy"},
	}
	if !slices.Equal(got, exp) {
		t.Errorf("Targets() = %+v, want %+v", got, exp)
	}
}

func TestRegisterAvailabilityZoneRules(t *testing.T) {
	_, c, arn := setup(t, elbv2fake.Options{})
	cases := []struct {
		name string
		td   types.TargetDescription
		code string
	}{
		{"outside VPC without AZ", tgt("192.168.9.9", 0, ""), "ValidationError"},
		{"outside VPC with a zone", tgt("192.168.9.9", 0, "us-east-1a"), "ValidationError"},
		{"inside VPC with all", tgt("10.0.3.3", 0, "all"), "ValidationError"},
		{"not an IP", tgt("i-0123456789abcdef0", 0, ""), "ValidationError"},
		{"IPv6 in an ipv4 group", tgt("2001:db8::1", 0, "all"), "ValidationError"},
		{"bad port", tgt("10.0.3.3", 70000, ""), "ValidationError"},
	}
	for _, tc := range cases {
		// A bad member fails the whole call: the good one with it is not registered either.
		err := register(t, c, arn, tgt("10.0.0.10", 0, ""), tc.td)
		if got := code(err); got != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
		}
	}
	want(t, "after failed calls", health(t, c, arn), nil)

	if err := register(t, c, arn, tgt("192.168.9.9", 0, "all"), tgt("10.0.3.3", 0, "")); err != nil {
		t.Fatalf("valid registration: %v", err)
	}
	want(t, "registered", health(t, c, arn), []string{"192.168.9.9:5432/all=healthy", "10.0.3.3:5432=healthy"})
}

func TestRegisterIsIdempotentAndRevivesDraining(t *testing.T) {
	clk := fakeclock.New()
	_, c, arn := setup(t, elbv2fake.Options{HealthyAfter: 10 * time.Second, DrainFor: 300 * time.Second, Now: clk.Now})
	if err := register(t, c, arn, tgt("10.0.1.5", 0, "")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	if err := register(t, c, arn, tgt("10.0.1.5", 5432, "")); err != nil {
		t.Fatal(err)
	}
	want(t, "registered twice", health(t, c, arn), []string{"10.0.1.5:5432=healthy"})

	if err := deregister(t, c, arn, tgt("10.0.1.5", 5432, "")); err != nil {
		t.Fatal(err)
	}
	want(t, "deregistered", health(t, c, arn), []string{"10.0.1.5:5432=draining(Target.DeregistrationInProgress)"})
	if err := register(t, c, arn, tgt("10.0.1.5", 5432, "")); err != nil {
		t.Fatal(err)
	}
	want(t, "registered while draining", health(t, c, arn), []string{"10.0.1.5:5432=initial(Elb.RegistrationInProgress)"})
}

func TestDeregisterNotNamingRegisteredPortOrAZIsSilentNoop(t *testing.T) {
	_, c, arn := setup(t, elbv2fake.Options{})
	if err := register(t, c, arn, tgt("10.0.1.5", 6000, ""), tgt("192.168.1.1", 5432, "all")); err != nil {
		t.Fatal(err)
	}
	for _, td := range []types.TargetDescription{
		tgt("10.0.1.5", 0, ""),       // no port: the group's 5432, not the registered 6000
		tgt("10.0.1.5", 6001, ""),    // another port
		tgt("192.168.1.1", 5432, ""), // registered with AZ all, deregistered without
		tgt("10.9.9.9", 5432, ""),    // never registered
		tgt("192.168.1.1", 5432, "us-east-1a"),
	} {
		if err := deregister(t, c, arn, td); err != nil {
			t.Errorf("DeregisterTargets(%s:%d): %v, want silent success", aws.ToString(td.Id), aws.ToInt32(td.Port), err)
		}
	}
	want(t, "after no-op deregistrations", health(t, c, arn), []string{"10.0.1.5:6000=healthy", "192.168.1.1:5432/all=healthy"})
}

func TestDeregisterDrainsThenGone(t *testing.T) {
	clk := fakeclock.New()
	s, c, arn := setup(t, elbv2fake.Options{DrainFor: 300 * time.Second, Now: clk.Now})
	if err := register(t, c, arn, tgt("10.0.1.5", 0, ""), tgt("192.168.1.1", 0, "all")); err != nil {
		t.Fatal(err)
	}
	if err := deregister(t, c, arn, tgt("10.0.1.5", 5432, ""), tgt("192.168.1.1", 5432, "all")); err != nil {
		t.Fatal(err)
	}
	want(t, "draining", health(t, c, arn), []string{
		"10.0.1.5:5432=draining(Target.DeregistrationInProgress)",
		"192.168.1.1:5432/all=draining(Target.DeregistrationInProgress)",
	})
	clk.Advance(299 * time.Second)
	if n := len(health(t, c, arn)); n != 2 {
		t.Errorf("%d targets before DrainFor, want 2", n)
	}
	clk.Advance(time.Second)
	want(t, "after DrainFor", health(t, c, arn), nil)
	if got := s.Targets(arn); len(got) != 0 {
		t.Errorf("Targets() = %v, want none", got)
	}

	// DrainFor 0: gone at once.
	_, c0, arn0 := setup(t, elbv2fake.Options{})
	if err := register(t, c0, arn0, tgt("10.0.1.5", 0, "")); err != nil {
		t.Fatal(err)
	}
	if err := deregister(t, c0, arn0, tgt("10.0.1.5", 0, "")); err != nil {
		t.Fatal(err)
	}
	want(t, "DrainFor 0", health(t, c0, arn0), nil)
}

func TestDescribeTargetHealthFilter(t *testing.T) {
	_, c, arn := setup(t, elbv2fake.Options{})
	if err := register(t, c, arn, tgt("10.0.1.5", 0, ""), tgt("10.0.1.6", 0, "")); err != nil {
		t.Fatal(err)
	}
	want(t, "filtered", health(t, c, arn, tgt("10.0.1.6", 5432, ""), tgt("10.0.7.7", 5432, "")), []string{
		"10.0.1.6:5432=healthy",
		"10.0.7.7:5432=unused(Target.NotRegistered)",
	})
}

func TestDescribeTargetGroupsPagination(t *testing.T) {
	s, c, first := setup(t, elbv2fake.Options{})
	arns := []string{first}
	for _, name := range []string{"b", "c", "d", "e"} {
		arns = append(arns, s.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: name, Port: 80, VPCID: "vpc-0123456789abcdef0"}))
	}
	p := elbv2.NewDescribeTargetGroupsPaginator(c, &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(2)})
	var got []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, g := range out.TargetGroups {
			got = append(got, aws.ToString(g.TargetGroupArn))
		}
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3", pages)
	}
	want(t, "all groups", got, arns)

	out, err := c.DescribeTargetGroups(context.Background(), &elbv2.DescribeTargetGroupsInput{Names: []string{"c"}})
	if err != nil || len(out.TargetGroups) != 1 {
		t.Fatalf("by name: %v, %v", out, err)
	}
	g := out.TargetGroups[0]
	if aws.ToString(g.TargetGroupArn) != arns[2] || g.TargetType != types.TargetTypeEnumIp || g.Protocol != types.ProtocolEnumTcp ||
		aws.ToInt32(g.Port) != 80 || aws.ToString(g.VpcId) != "vpc-0123456789abcdef0" || g.IpAddressType != types.TargetGroupIpAddressTypeEnumIpv4 {
		t.Errorf("group c = %+v", g)
	}
}

func TestTargetGroupNotFound(t *testing.T) {
	_, c, arn := setup(t, elbv2fake.Options{})
	missing := strings.Replace(arn, "/orders/", "/nope/", 1)
	ctx := context.Background()
	_, err := c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{missing}})
	var nf *types.TargetGroupNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("DescribeTargetGroups: %v, want TargetGroupNotFoundException", err)
	}
	_, err = c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &missing})
	if !errors.As(err, &nf) {
		t.Errorf("DescribeTargetHealth: %v, want TargetGroupNotFoundException", err)
	}
	if err := register(t, c, missing, tgt("10.0.1.1", 0, "")); !errors.As(err, &nf) {
		t.Errorf("RegisterTargets: %v, want TargetGroupNotFoundException", err)
	}
	if _, err := c.DeleteTargetGroup(ctx, &elbv2.DeleteTargetGroupInput{TargetGroupArn: &arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn}); !errors.As(err, &nf) {
		t.Errorf("after DeleteTargetGroup: %v, want TargetGroupNotFoundException", err)
	}
}

// A group whose targets are not IP addresses (instance, lambda, alb) is outside what the fake models: naming
// targets in it fails with a message that says so, and an unfiltered DescribeTargetHealth lists nothing.
func TestTargetsOfNonIPGroupAreRefused(t *testing.T) {
	s, c, _ := setup(t, elbv2fake.Options{})
	inst := s.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "inst", Port: 5432, VPCID: "vpc-0123456789abcdef0", TargetType: "instance"})
	if inst == "" {
		t.Fatal("CreateTargetGroup refused an instance group")
	}
	ctx := context.Background()
	for action, err := range map[string]error{
		"RegisterTargets":   register(t, c, inst, tgt("i-0123456789abcdef0", 0, "")),
		"DeregisterTargets": deregister(t, c, inst, tgt("10.0.1.1", 0, "")),
	} {
		if code(err) != "ValidationError" || !strings.Contains(err.Error(), "target type 'instance'") {
			t.Errorf("%s: %v, want a ValidationError naming the target type", action, err)
		}
	}
	if rows := health(t, c, inst); len(rows) != 0 {
		t.Errorf("DescribeTargetHealth = %q, want none", rows)
	}
	_, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &inst, Targets: []types.TargetDescription{tgt("10.0.1.1", 0, "")}})
	if code(err) != "ValidationError" {
		t.Errorf("DescribeTargetHealth of a named target: %v, want ValidationError", err)
	}
}

func TestDescribeVpcs(t *testing.T) {
	s := elbv2fake.Start(t, elbv2fake.Options{})
	if err := s.AddVPC("vpc-1", "10.0.0.0/16", "100.64.0.0/16", "2600:1f18:1234:5600::/56"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddVPC("vpc-2", "172.16.0.0/12"); err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(sdkConfig(s, 1))
	ctx := context.Background()
	out, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Vpcs) != 1 || aws.ToString(out.Vpcs[0].VpcId) != "vpc-1" || aws.ToString(out.Vpcs[0].CidrBlock) != "10.0.0.0/16" {
		t.Fatalf("Vpcs = %+v", out.Vpcs)
	}
	var cidrs []string
	for _, a := range out.Vpcs[0].CidrBlockAssociationSet {
		cidrs = append(cidrs, aws.ToString(a.CidrBlock)+" "+string(a.CidrBlockState.State))
	}
	for _, a := range out.Vpcs[0].Ipv6CidrBlockAssociationSet {
		cidrs = append(cidrs, aws.ToString(a.Ipv6CidrBlock)+" "+string(a.Ipv6CidrBlockState.State))
	}
	want(t, "CIDRs", cidrs, []string{"10.0.0.0/16 associated", "100.64.0.0/16 associated", "2600:1f18:1234:5600::/56 associated"})

	_, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-404"}})
	if code(err) != "InvalidVpcID.NotFound" {
		t.Errorf("unknown VPC: %v, want InvalidVpcID.NotFound", err)
	}

	created, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.Vpc.VpcId)
	out, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{id}}}})
	if err != nil || len(out.Vpcs) != 1 || aws.ToString(out.Vpcs[0].CidrBlockAssociationSet[0].CidrBlock) != "10.9.0.0/16" {
		t.Errorf("created VPC %s: %+v, %v", id, out, err)
	}
}

func TestAssumeRole(t *testing.T) {
	s := elbv2fake.Start(t, elbv2fake.Options{})
	cfg := sdkConfig(s, 1)
	const role = "arn:aws:iam::210987654321:role/ipsync-cross-account"
	out, err := sts.NewFromConfig(cfg).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String(role), RoleSessionName: aws.String("ipsync"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(aws.ToTime(out.Credentials.Expiration)); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("Expiration in %v, want an hour", d)
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::210987654321:assumed-role/ipsync-cross-account/ipsync" {
		t.Errorf("AssumedRoleUser.Arn = %q", got)
	}

	// Through stscreds, as the targets factory does: ELBv2 calls are then signed with the assumed key.
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role))
	s.ResetCalls()
	if _, err := elbv2.NewFromConfig(cfg).DescribeTargetGroups(context.Background(), &elbv2.DescribeTargetGroupsInput{}); err != nil {
		t.Fatal(err)
	}
	calls := s.Calls()
	if len(calls) != 2 || calls[0].Action != "AssumeRole" || calls[0].Params.Get("RoleArn") != role || calls[0].AccessKeyID != "test" {
		t.Fatalf("calls = %+v", calls)
	}
	if c := calls[1]; c.Action != "DescribeTargetGroups" || !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.Region != "us-east-1" {
		t.Errorf("ELBv2 call = %+v, want signed with the assumed key", c)
	}

	_, err = sts.NewFromConfig(sdkConfig(s, 1)).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn: aws.String("not-an-arn"), RoleSessionName: aws.String("ipsync"),
	})
	if code(err) != "ValidationError" {
		t.Errorf("bad RoleArn: %v, want ValidationError", err)
	}
}

func TestFaultThrottling(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{})
	s.FailNext("RegisterTargets", 1, elbv2fake.Fault{Code: "Throttling", Message: "Rate exceeded"})
	err := register(t, c, arn, tgt("10.0.1.5", 0, ""))
	if code(err) != "Throttling" {
		t.Fatalf("err = %v, want Throttling", err)
	}
	if !retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool() {
		t.Errorf("SDK does not see %v as retryable", err)
	}
	if len(s.Targets(arn)) != 0 {
		t.Error("a throttled call registered targets")
	}

	// With retries the SDK gets through; every attempt is in the call log.
	s.ResetCalls()
	s.FailNext("RegisterTargets", 2, elbv2fake.Fault{Code: "Throttling"})
	if err := register(t, elbClient(s, 3), arn, tgt("10.0.1.5", 0, "")); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, c := range s.MutatingCalls() {
		codes = append(codes, c.Code)
	}
	want(t, "attempts", codes, []string{"Throttling", "Throttling", ""})
}

func TestFault503AndCloseConnAreRetried(t *testing.T) {
	s, _, arn := setup(t, elbv2fake.Options{})
	c2 := elbClient(s, 2)
	ctx := context.Background()
	for _, f := range []elbv2fake.Fault{{Status: 503}, {CloseConn: true}} {
		s.ResetCalls()
		s.FailNext("DescribeTargetHealth", 1, f)
		if _, err := c2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn}); err != nil {
			t.Errorf("fault %+v: %v, want success on the retry", f, err)
		}
		calls := s.Calls()
		if len(calls) != 2 || calls[1].Code != "" {
			t.Errorf("fault %+v: calls %+v", f, calls)
		}
	}

	c1 := elbClient(s, 1)
	s.FailNext("", 1, elbv2fake.Fault{Status: 503})
	_, err := c1.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn})
	var re *awshttp.ResponseError
	if code(err) != "ServiceUnavailable" || !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Errorf("503: %v", err)
	}
	s.FailNext("", 1, elbv2fake.Fault{CloseConn: true})
	_, err = c1.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn})
	if err == nil || code(err) != "" || !retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool() {
		t.Errorf("CloseConn: %v, want a retryable connection error", err)
	}
	if calls := s.Calls(); calls[len(calls)-1].Code != elbv2fake.CodeConnectionReset {
		t.Errorf("CloseConn recorded as %q", calls[len(calls)-1].Code)
	}
}

func TestFaultDelayPastDeadline(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{})
	s.SetFault(func(action string, params url.Values) *elbv2fake.Fault {
		if action == "RegisterTargets" && params.Get("Targets.member.1.Id") == "10.0.1.5" {
			return &elbv2fake.Fault{Delay: time.Minute}
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: &arn, Targets: []types.TargetDescription{tgt("10.0.1.5", 0, "")}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	// The handler notices the client left and records it; the change was not made.
	testutil.Wait(5*time.Second, func() bool { return s.Calls()[len(s.Calls())-1].Code == elbv2fake.CodeClientGone })
	if got := s.Calls()[len(s.Calls())-1]; got.Code != elbv2fake.CodeClientGone {
		t.Errorf("last call %+v, want code %s", got, elbv2fake.CodeClientGone)
	}
	if len(s.Targets(arn)) != 0 {
		t.Error("the abandoned call registered a target")
	}
	// Other calls are not delayed.
	if err := register(t, c, arn, tgt("10.0.1.6", 0, "")); err != nil {
		t.Fatal(err)
	}
	s.SetFault(nil)
}

func TestFaultAppliedLosesTheAnswer(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{})
	s.FailNext("RegisterTargets", 1, elbv2fake.Fault{Status: 500, Applied: true})
	if err := register(t, c, arn, tgt("10.0.1.5", 0, "")); code(err) != "InternalFailure" {
		t.Fatalf("err = %v, want InternalFailure", err)
	}
	if len(s.Targets(arn)) != 1 {
		t.Error("Applied fault: the registration was not made")
	}
}

func TestFaultAcceptedNotApplied(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{})
	s.FailNext("RegisterTargets", 1, elbv2fake.AcceptedNotApplied())
	if err := register(t, c, arn, tgt("10.0.1.5", 0, "")); err != nil {
		t.Fatalf("err = %v, want the success AWS answered", err)
	}
	if ts := s.Targets(arn); len(ts) != 0 {
		t.Errorf("NotApplied fault: the registration was made: %v", ts)
	}
}

func TestFaultDuplicateRows(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{})
	if err := register(t, c, arn, tgt("10.0.1.5", 0, "")); err != nil {
		t.Fatal(err)
	}
	s.FailNext("DescribeTargetHealth", 1, elbv2fake.DuplicateRows())
	out, err := c.DescribeTargetHealth(context.Background(), &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.TargetHealthDescriptions); n != 2 {
		t.Fatalf("%d rows, want the one target twice", n)
	}
}

func TestTooManyTargets(t *testing.T) {
	clk := fakeclock.New()
	_, c, arn := setup(t, elbv2fake.Options{MaxTargets: 2, DrainFor: time.Minute, Now: clk.Now})
	if err := register(t, c, arn, tgt("10.0.1.1", 0, ""), tgt("10.0.1.2", 0, "")); err != nil {
		t.Fatal(err)
	}
	if err := register(t, c, arn, tgt("10.0.1.1", 0, "")); err != nil {
		t.Errorf("re-registering at the limit: %v", err)
	}
	var tm *types.TooManyTargetsException
	if err := register(t, c, arn, tgt("10.0.1.3", 0, "")); !errors.As(err, &tm) {
		t.Fatalf("err = %v, want TooManyTargetsException", err)
	}
	// Draining targets still count until they are gone.
	if err := deregister(t, c, arn, tgt("10.0.1.1", 0, "")); err != nil {
		t.Fatal(err)
	}
	if err := register(t, c, arn, tgt("10.0.1.3", 0, "")); !errors.As(err, &tm) {
		t.Errorf("while draining: %v, want TooManyTargetsException", err)
	}
	clk.Advance(time.Minute)
	if err := register(t, c, arn, tgt("10.0.1.3", 0, "")); err != nil {
		t.Errorf("after draining: %v", err)
	}
}

func TestCallLog(t *testing.T) {
	clk := fakeclock.New()
	s, c, arn := setup(t, elbv2fake.Options{Now: clk.Now})
	s.ResetCalls()
	_ = register(t, c, arn, tgt("10.0.1.5", 0, ""))
	_ = register(t, c, arn, tgt("8.8.8.8", 0, ""))
	_ = deregister(t, c, arn, tgt("10.0.1.5", 0, ""))
	health(t, c, arn)

	calls := s.Calls()
	var actions []string
	for _, c := range calls {
		actions = append(actions, c.Action+"/"+c.Code)
	}
	want(t, "calls", actions, []string{"RegisterTargets/", "RegisterTargets/ValidationError", "DeregisterTargets/", "DescribeTargetHealth/"})
	if c := calls[0]; c.Params.Get("TargetGroupArn") != arn || c.Params.Get("Targets.member.1.Id") != "10.0.1.5" ||
		c.Params.Get("Version") != "2015-12-01" || !c.At.Equal(clk.Now()) || c.Region != "us-east-1" || c.AccessKeyID != "test" {
		t.Errorf("first call = %+v", c)
	}
	if n := len(s.MutatingCalls()); n != 3 {
		t.Errorf("%d mutating calls, want 3", n)
	}
	calls[0].Params.Set("TargetGroupArn", "changed")
	if s.Calls()[0].Params.Get("TargetGroupArn") != arn {
		t.Error("Calls() shares its Params with the log")
	}
	s.ResetCalls()
	if len(s.Calls()) != 0 {
		t.Error("ResetCalls kept calls")
	}
}

func TestSetHealthAndSeeding(t *testing.T) {
	clk := fakeclock.New()
	s, c, arn := setup(t, elbv2fake.Options{HealthyAfter: time.Minute, Now: clk.Now})
	ip := netip.MustParseAddr
	err := s.SetTargets(arn,
		elbv2fake.TargetState{IP: ip("10.0.5.5")},
		elbv2fake.TargetState{IP: ip("192.168.7.7"), Port: 6000, AvailabilityZone: "all", State: "unhealthy"},
		elbv2fake.TargetState{IP: ip("10.0.5.6"), State: "initial"},
	)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "seeded", health(t, c, arn), []string{
		"10.0.5.5:5432=healthy",
		"192.168.7.7:6000/all=unhealthy(Target.FailedHealthChecks)",
		"10.0.5.6:5432=initial(Elb.RegistrationInProgress)",
	})
	if err := s.SetHealth(arn, ip("10.0.5.5"), 5432, "unavailable"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHealth(arn, ip("10.0.5.6"), 5432, "draining"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHealth(arn, ip("10.0.5.5"), 1, "unhealthy"); err == nil {
		t.Error("SetHealth of an unregistered target succeeded")
	}
	if err := s.AddTarget(arn, elbv2fake.TargetState{IP: ip("10.0.5.7"), State: "unused"}); err != nil {
		t.Fatal(err)
	}
	want(t, "forced", health(t, c, arn), []string{
		"10.0.5.5:5432=unavailable(Target.HealthCheckDisabled)",
		"192.168.7.7:6000/all=unhealthy(Target.FailedHealthChecks)",
		"10.0.5.6:5432=draining(Target.DeregistrationInProgress)",
		"10.0.5.7:5432=unused(Target.NotInUse)",
	})
	// A forced draining target counts as draining: registering it again starts over.
	if err := register(t, c, arn, tgt("10.0.5.6", 0, "")); err != nil {
		t.Fatal(err)
	}
	want(t, "re-registered", health(t, c, arn, tgt("10.0.5.6", 0, "")), []string{"10.0.5.6:5432=initial(Elb.RegistrationInProgress)"})
	if err := s.SetTargets("arn:nope"); err == nil {
		t.Error("SetTargets on an unknown group succeeded")
	}
}

func TestLatencyAndClose(t *testing.T) {
	s := elbv2fake.Start(t, elbv2fake.Options{Latency: 30 * time.Millisecond})
	c := elbClient(s, 1)
	begin := time.Now()
	if _, err := c.DescribeTargetGroups(context.Background(), &elbv2.DescribeTargetGroupsInput{}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 30*time.Millisecond {
		t.Errorf("call took %v, want >= Latency", d)
	}

	// Close does not wait for a call stuck in a long Delay.
	s.FailNext("", 1, elbv2fake.Fault{Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := c.DescribeTargetGroups(context.Background(), &elbv2.DescribeTargetGroupsInput{})
		errc <- err
	}()
	for len(s.Calls()) < 2 {
		time.Sleep(time.Millisecond)
	}
	begin = time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-errc; err == nil {
		t.Error("the call in flight succeeded after Close")
	}
}

func TestUnknownActionAndUnsigned(t *testing.T) {
	s := elbv2fake.Start(t, elbv2fake.Options{})
	cfg := sdkConfig(s, 1)
	cfg.Credentials = aws.AnonymousCredentials{}
	_, err := elbv2.NewFromConfig(cfg).DescribeTargetGroups(context.Background(), &elbv2.DescribeTargetGroupsInput{})
	if code(err) != "MissingAuthenticationToken" {
		t.Errorf("unsigned: %v", err)
	}
	_, err = elbClient(s, 1).DescribeLoadBalancers(context.Background(), &elbv2.DescribeLoadBalancersInput{})
	if code(err) != "InvalidAction" {
		t.Errorf("DescribeLoadBalancers: %v, want InvalidAction", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ip := "10.0.2." + strconv.Itoa(i+1)
			if err := register(t, c, arn, tgt(ip, 0, "")); err != nil {
				t.Error(err)
			}
			health(t, c, arn)
			_ = s.Targets(arn)
			_ = s.Calls()
		}()
	}
	wg.Wait()
	if n := len(s.Targets(arn)); n != 8 {
		t.Errorf("%d targets, want 8", n)
	}
}

// TestNamedFaults: each named fault reaches the SDK with AWS's status and code, and the SDK retries exactly the
// ones AWS documents as transient.
func TestNamedFaults(t *testing.T) {
	s, _, arn := setup(t, elbv2fake.Options{})
	c := elbClient(s, 1)
	retryable := retry.IsErrorRetryables(retry.DefaultRetryables)
	for _, tc := range []struct {
		fault  elbv2fake.Fault
		status int
		code   string
		retry  bool
	}{
		{elbv2fake.Throttled(), 400, "Throttling", true},
		{elbv2fake.InternalFailure(), 500, "InternalFailure", true},
		{elbv2fake.ServiceUnavailable(), 503, "ServiceUnavailable", true},
		{elbv2fake.AccessDenied("RegisterTargets"), 403, "AccessDenied", false},
		{elbv2fake.ExpiredToken(), 400, "ExpiredToken", false},
		{elbv2fake.RequestExpired(), 400, "RequestExpired", false},
		{elbv2fake.InvalidTarget(), 400, "InvalidTarget", false},
		{elbv2fake.TooManyTargets(), 400, "TooManyTargets", false},
	} {
		s.FailNext("RegisterTargets", 1, tc.fault)
		err := register(t, c, arn, tgt("10.0.1.5", 0, ""))
		var re *awshttp.ResponseError
		if code(err) != tc.code || !errors.As(err, &re) || re.HTTPStatusCode() != tc.status {
			t.Errorf("%s: %v, want HTTP %d %s", tc.code, err, tc.status, tc.code)
		}
		if got := retryable.IsErrorRetryable(err).Bool(); got != tc.retry {
			t.Errorf("%s: SDK retryable = %v, want %v", tc.code, got, tc.retry)
		}
	}
	s.FailNext("RegisterTargets", 1, elbv2fake.ConnectionReset())
	if err := register(t, c, arn, tgt("10.0.1.5", 0, "")); err == nil || !retryable.IsErrorRetryable(err).Bool() {
		t.Errorf("ConnectionReset: %v, want a retryable connection error", err)
	}
	if len(s.Targets(arn)) != 0 {
		t.Error("a failed call registered a target")
	}
}

func TestDeleteTargetGroupHelper(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{})
	if !s.DeleteTargetGroup(arn) || s.DeleteTargetGroup(arn) {
		t.Fatal("DeleteTargetGroup must report true once, then false")
	}
	if err := register(t, c, arn, tgt("10.0.1.5", 0, "")); code(err) != "TargetGroupNotFound" {
		t.Errorf("RegisterTargets after the deletion: %v, want TargetGroupNotFound", err)
	}
	if s.Targets(arn) != nil {
		t.Error("Targets of a deleted group must be nil")
	}
}
