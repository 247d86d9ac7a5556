package elbv2fake_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/testutil/fakeclock"
)

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func describeHealth(c *elbv2.Client, arn string) error {
	_, err := c.DescribeTargetHealth(context.Background(), &elbv2.DescribeTargetHealthInput{TargetGroupArn: &arn})
	return err
}

// A burst over AWS's Describe limit, through the real SDK with retries off: a full bucket admits its burst, the
// rest is answered Throttling; time refills it. The clock is frozen, so the counts are exact.
func TestLimitsThrottleDescribeBurst(t *testing.T) {
	clk := fakeclock.New()
	lim := elbv2fake.PublishedLimits()
	s, c, arn := setup(t, elbv2fake.Options{Now: clk.Now, Limits: &lim}) // setup's CreateTargetGroup is not limited

	const burst = 25
	errs := make([]error, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() { errs[i] = describeHealth(c, arn) })
	}
	wg.Wait()
	ok, throttled := 0, 0
	for _, err := range errs {
		switch code := errorCode(err); {
		case err == nil:
			ok++
		case code == "Throttling":
			throttled++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != lim.DescribeBurst || throttled != burst-lim.DescribeBurst || s.ThrottledCalls() != throttled {
		t.Errorf("%d calls at once: %d answered, %d throttled (server counted %d); want %d and %d",
			burst, ok, throttled, s.ThrottledCalls(), lim.DescribeBurst, burst-lim.DescribeBurst)
	}
	var re interface{ HTTPStatusCode() int }
	if err := describeHealth(c, arn); !errors.As(err, &re) || re.HTTPStatusCode() != 400 || errorCode(err) != "Throttling" {
		t.Errorf("empty bucket: %v, want HTTP 400 Throttling", err)
	}

	clk.Advance(time.Duration(2 / lim.DescribeRPS * float64(time.Second))) // two tokens back
	for i := range 3 {
		err := describeHealth(c, arn)
		if (i < 2) != (err == nil) {
			t.Errorf("after refilling two tokens, call %d: %v", i, err)
		}
	}
}

// Register/Deregister have their own, smaller bucket; a throttled registration changes nothing; AddTags draws
// from it too; Describe is unaffected; another region has its own buckets.
func TestLimitsMutateBucket(t *testing.T) {
	clk := fakeclock.New()
	lim := elbv2fake.PublishedLimits()
	s, c, arn := setup(t, elbv2fake.Options{Now: clk.Now, Limits: &lim})
	for i := range lim.MutateBurst - 1 {
		if err := register(t, c, arn, tgt(fmt.Sprintf("10.0.0.%d", i+1), 0, "")); err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
	}
	if _, err := c.AddTags(context.Background(), &elbv2.AddTagsInput{ResourceArns: []string{arn},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("db")}}}); err != nil {
		t.Fatalf("AddTags with the last token: %v", err)
	}
	err := register(t, c, arn, tgt("10.0.9.9", 0, ""))
	if errorCode(err) != "Throttling" {
		t.Fatalf("registration over the limit: %v, want Throttling", err)
	}
	for _, ts := range s.Targets(arn) {
		if ts.IP.String() == "10.0.9.9" {
			t.Error("a throttled registration registered its target")
		}
	}
	if err := describeHealth(c, arn); err != nil {
		t.Errorf("Describe while mutations are throttled: %v", err)
	}
	other := elbv2.NewFromConfig(sdkConfig(s, 1), func(o *elbv2.Options) { o.Region = "eu-west-1" })
	if _, err := other.DeregisterTargets(context.Background(), &elbv2.DeregisterTargetsInput{TargetGroupArn: &arn,
		Targets: []types.TargetDescription{tgt("10.0.0.1", 0, "")}}); err != nil {
		t.Errorf("another region's bucket: %v", err)
	}
	if s.ThrottledCalls() != 1 {
		t.Errorf("ThrottledCalls = %d, want 1", s.ThrottledCalls())
	}
}

func TestLimitsOffByDefault(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{Now: fakeclock.New().Now})
	for i := range 50 {
		if err := describeHealth(c, arn); err != nil {
			t.Fatalf("call %d without Limits: %v", i, err)
		}
	}
	if s.ThrottledCalls() != 0 {
		t.Errorf("ThrottledCalls = %d", s.ThrottledCalls())
	}
}

func TestLimitsMustBePositive(t *testing.T) {
	for _, l := range []elbv2fake.Limits{{}, {DescribeRPS: 10, DescribeBurst: 10, MutateRPS: 4}, {DescribeRPS: -1, DescribeBurst: 1, MutateRPS: 1, MutateBurst: 1}} {
		if s, err := elbv2fake.New(elbv2fake.Options{Limits: &l}); err == nil {
			_ = s.Close()
			t.Errorf("New accepted Limits %+v", l)
		}
	}
}
