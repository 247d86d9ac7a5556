package targets

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/testutil"
)

// groupsStub answers DescribeTargetGroups as ELBv2 does (the whole call refused when one group does not exist)
// and records the groups each call named. The first call waits for release, so that asks pile up behind it.
type groupsStub struct {
	ELBv2API
	exists  func(arn string) bool
	started chan struct{}
	release chan struct{}

	mu    sync.Mutex
	calls [][]string
}

func (s *groupsStub) DescribeTargetGroups(_ context.Context, in *elbv2.DescribeTargetGroupsInput, _ ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error) {
	s.mu.Lock()
	s.calls = append(s.calls, slices.Clone(in.TargetGroupArns))
	first := len(s.calls) == 1
	s.mu.Unlock()
	if first && s.release != nil {
		close(s.started)
		<-s.release
	}
	out := &elbv2.DescribeTargetGroupsOutput{}
	for _, arn := range in.TargetGroupArns {
		if !s.exists(arn) {
			return nil, &smithy.GenericAPIError{Code: "TargetGroupNotFound", Message: fmt.Sprintf("Target groups '%s' not found", arn)}
		}
		out.TargetGroups = append(out.TargetGroups, elbv2types.TargetGroup{TargetGroupArn: aws.String(arn),
			TargetGroupName: aws.String(arn[len(arn)-8:]), TargetType: elbv2types.TargetTypeEnumIp, Port: aws.Int32(5432)})
	}
	return out, nil
}

func (s *groupsStub) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, c := range s.calls {
		out = append(out, len(c))
	}
	return out
}

func groupARN(i int) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/%016d", i)
}

func (r *groupReads) waitingCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

// askAll asks for groups 0..n-1 at once and returns each answer.
func askAll(c *Client, from, n int) []groupAnswer {
	out := make([]groupAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			g, err := c.Group(context.Background(), groupARN(from+i))
			out[i] = groupAnswer{g, err}
		})
	}
	wg.Wait()
	return out
}

// TestGroupBatches: groups asked for while a DescribeTargetGroups is in flight are described together in the
// next call, at most MaxGroupsPerCall a call, and each asker gets its own group.
func TestGroupBatches(t *testing.T) {
	stub := &groupsStub{exists: func(string) bool { return true }, started: make(chan struct{}), release: make(chan struct{})}
	c := NewClient(stub)
	first := make(chan groupAnswer, 1)
	go func() {
		g, err := c.Group(context.Background(), groupARN(0))
		first <- groupAnswer{g, err}
	}()
	<-stub.started
	const more = MaxGroupsPerCall + 50
	answers := make(chan []groupAnswer, 1)
	go func() { answers <- askAll(c, 1, more) }()
	if !testutil.Wait(10*time.Second, func() bool { return c.groups.waitingCount() == more }) {
		t.Fatalf("%d groups waiting, want %d", c.groups.waitingCount(), more)
	}
	close(stub.release)
	all := append([]groupAnswer{<-first}, <-answers...)
	for i, a := range all {
		if a.err != nil || a.group.ARN != groupARN(i) || a.group.TargetType != "ip" {
			t.Fatalf("group %d: %+v, %v", i, a.group, a.err)
		}
	}
	if got, want := stub.sizes(), []int{1, MaxGroupsPerCall, 50}; !slices.Equal(got, want) {
		t.Errorf("DescribeTargetGroups named %v groups per call, want %v", got, want)
	}
}

// TestGroupBatchMissing: a group that does not exist makes ELBv2 refuse the whole batch; it gets its own
// TargetGroupNotFound and every other group its answer.
func TestGroupBatchMissing(t *testing.T) {
	missing := groupARN(5)
	stub := &groupsStub{exists: func(arn string) bool { return arn != missing }, started: make(chan struct{}), release: make(chan struct{})}
	c := NewClient(stub)
	go func() { _, _ = c.Group(context.Background(), groupARN(100)) }()
	<-stub.started
	const n = 16
	answers := make(chan []groupAnswer, 1)
	go func() { answers <- askAll(c, 0, n) }()
	if !testutil.Wait(10*time.Second, func() bool { return c.groups.waitingCount() == n }) {
		t.Fatalf("%d groups waiting, want %d", c.groups.waitingCount(), n)
	}
	close(stub.release)
	for i, a := range <-answers {
		if groupARN(i) == missing {
			if awserr.Code(a.err) != "TargetGroupNotFound" {
				t.Errorf("missing group: %+v, %v; want TargetGroupNotFound", a.group, a.err)
			}
			continue
		}
		if a.err != nil || a.group.ARN != groupARN(i) {
			t.Errorf("group %d: %+v, %v", i, a.group, a.err)
		}
	}
	// 1 + the refused 16 + halves down to the missing one: 8, 8, 4, 4, 2, 2, 1, 1.
	if calls := len(stub.sizes()); calls > 10 {
		t.Errorf("%d calls (%v), want at most 10: a refused batch is halved, not described group by group", calls, stub.sizes())
	}
}
