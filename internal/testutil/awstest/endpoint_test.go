package awstest_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

// TestLiveLeavesDraining: what tests read as the group's live targets leaves out a target that is draining (the
// fake keeps one for DrainFor), and comes sorted by address.
func TestLiveLeavesDraining(t *testing.T) {
	awstest.Fake(t, elbv2fake.Options{DrainFor: time.Hour})
	g := awstest.NewTargetGroup(t, 5432)
	c := awstest.Client(t, g.ARN, targets.FactoryOptions{})
	a, b := netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("10.0.0.10") // sorted as addresses, not as text
	ctx := context.Background()
	if err := c.Register(ctx, g.ARN, []nlb.Target{{IP: b, Port: 5432}, {IP: a, Port: 5432}}); err != nil {
		t.Fatal(err)
	}
	if got := awstest.LiveAddrs(t, c, g.ARN); !slices.Equal(got, []netip.Addr{a, b}) {
		t.Fatalf("live %v, want %v and %v, sorted", got, a, b)
	}
	if err := c.Deregister(ctx, g.ARN, []nlb.Target{{IP: a, Port: 5432}}); err != nil {
		t.Fatal(err)
	}
	if got := awstest.Live(t, c, g.ARN); len(got) != 1 || got[0].IP != b {
		t.Fatalf("live %v while %v drains, want only %v", got, a, b)
	}
}
