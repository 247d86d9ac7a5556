package elbv2fake_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aws/smithy-go/middleware"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/targets"
)

// Server.Client is the product's client pointed at the fake: it retries as targets.Factory configures it, runs
// the caller's middleware, and ignores the process's AWS environment.
func TestClientIsTheFactorysPointedAtTheServer(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // would lose every call if the client read it
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "real")
	s, _, arn := setup(t, elbv2fake.Options{})
	var ops atomic.Int32
	count := func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				ops.Add(1)
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
	c := s.Client(count)
	if c.CallTimeout != targets.DefaultCallTimeout {
		t.Errorf("CallTimeout = %v, want the factory's %v", c.CallTimeout, targets.DefaultCallTimeout)
	}
	before := len(s.Calls())
	s.FailNext("DescribeTargetHealth", 1, elbv2fake.InternalFailure())
	if _, err := c.Health(context.Background(), arn); err != nil {
		t.Fatalf("Health after one InternalFailure: %v, want the standard retryer to retry it", err)
	}
	calls := s.Calls()[before:]
	if len(calls) != 2 {
		t.Fatalf("%d calls reached the server, want 2 (the failure and its retry)", len(calls))
	}
	for _, call := range calls {
		if call.AccessKeyID != "fake" || call.Region != "us-east-1" {
			t.Errorf("call %s signed by %q in %q, want the static key \"fake\" in the server's region us-east-1",
				call.Action, call.AccessKeyID, call.Region)
		}
	}
	if n := ops.Load(); n != 1 {
		t.Errorf("the caller's middleware saw %d operations, want 1", n)
	}
}
