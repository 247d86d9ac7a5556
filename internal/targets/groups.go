package targets

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/budget"
)

// MaxGroupsPerCall is how many target groups one DescribeTargetGroups request names: the most one page holds.
const MaxGroupsPerCall = 400

// groupReads batches the DescribeTargetGroups of target groups asked for at about the same time: the mappings
// that start together (every mapping at start-up, the passes in flight at once) each ask for their own group, and
// one call answers up to MaxGroupsPerCall of them, so a fleet's start costs one Describe token per batch instead
// of one per group. The asks that arrive while a call waits for its token or is in flight go in the next call.
type groupReads struct {
	mu      sync.Mutex
	waiting map[string][]chan groupAnswer // by ARN
	order   []string                      // ARNs of waiting, in the order first asked
	reading bool                          // a reader goroutine is running
}

type groupAnswer struct {
	group Group
	err   error
}

// Group describes the target group. Groups asked for at the same time are described together (groupReads).
func (c *Client) Group(ctx context.Context, arn string) (Group, error) {
	answer := make(chan groupAnswer, 1)
	r := &c.groups
	r.mu.Lock()
	if r.waiting == nil {
		r.waiting = map[string][]chan groupAnswer{}
	}
	if _, ok := r.waiting[arn]; !ok {
		r.order = append(r.order, arn)
	}
	r.waiting[arn] = append(r.waiting[arn], answer)
	start := !r.reading
	r.reading = true
	r.mu.Unlock()
	if start {
		// The reader outlives this caller if it gives up: others may wait on the same call. Each call has its
		// deadline, and the budget wait its bound, so the reader ends.
		go c.readGroups(context.WithoutCancel(ctx))
	}
	select {
	case a := <-answer:
		return a.group, a.err
	case <-ctx.Done():
		return Group{}, ctx.Err()
	}
}

// readGroups describes the waiting groups, a batch per call, until none waits.
func (c *Client) readGroups(ctx context.Context) {
	for {
		if !c.groups.any() {
			return
		}
		// The token first: the groups asked for while it is awaited join this batch.
		callCtx, cancel, err := c.callCtx(ctx, budget.Describe)
		if err != nil {
			c.groups.answer(c.groups.take(-1), func(batch []string) map[string]groupAnswer { return allFail(batch, err) })
			continue
		}
		c.groups.answer(c.groups.take(MaxGroupsPerCall), func(batch []string) map[string]groupAnswer {
			return c.describeGroups(callCtx, batch)
		})
		cancel()
	}
}

// any reports whether a group is waiting; if none is, the reader stops (reading is cleared under the same lock
// that Group checks it under, so an ask never waits without a reader).
func (r *groupReads) any() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) == 0 {
		r.reading = false
		return false
	}
	return true
}

// take removes up to n waiting groups (all for n < 0), first asked first, with their waiters.
func (r *groupReads) take(n int) map[string][]chan groupAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 0 || n > len(r.order) {
		n = len(r.order)
	}
	batch := make(map[string][]chan groupAnswer, n)
	for _, arn := range r.order[:n] {
		batch[arn] = r.waiting[arn]
		delete(r.waiting, arn)
	}
	if r.order = r.order[n:]; len(r.order) == 0 {
		r.order = nil // a fleet's start leaves no array of 3,000 ARNs behind
	}
	return batch
}

// answer describes the groups of batch with describe and hands each waiter its group's answer.
func (r *groupReads) answer(batch map[string][]chan groupAnswer, describe func([]string) map[string]groupAnswer) {
	arns := make([]string, 0, len(batch))
	for arn := range batch {
		arns = append(arns, arn)
	}
	slices.Sort(arns)
	answers := describe(arns)
	for arn, waiters := range batch {
		for _, w := range waiters {
			w <- answers[arn]
		}
	}
}

// describeGroups describes batch in one call (more if the answer comes in pages). ELBv2 refuses the whole call
// when one of the groups does not exist: the batch is then split in halves, each described on its own token, so
// that a missing group gets its own error and the others their answers.
func (c *Client) describeGroups(ctx context.Context, batch []string) map[string]groupAnswer {
	found := map[string]elbv2types.TargetGroup{}
	p := elbv2.NewDescribeTargetGroupsPaginator(c.elb, &elbv2.DescribeTargetGroupsInput{
		TargetGroupArns: batch, PageSize: aws.Int32(MaxGroupsPerCall),
	})
	var err error
	for p.HasMorePages() && err == nil {
		var page *elbv2.DescribeTargetGroupsOutput
		if page, err = p.NextPage(ctx); err == nil {
			for _, tg := range page.TargetGroups {
				found[aws.ToString(tg.TargetGroupArn)] = tg
			}
		}
	}
	if len(batch) > 1 && (awserr.Code(err) == "TargetGroupNotFound" || awserr.IsInvalid(err)) {
		half := len(batch) / 2
		answers := c.describeHalf(ctx, batch[:half])
		for arn, a := range c.describeHalf(ctx, batch[half:]) {
			answers[arn] = a
		}
		return answers
	}
	if err != nil {
		return allFail(batch, err)
	}
	answers := make(map[string]groupAnswer, len(batch))
	for _, arn := range batch {
		tg, ok := found[arn]
		if !ok {
			answers[arn] = groupAnswer{err: fmt.Errorf("not in the DescribeTargetGroups answer (got %d target groups); check target_group_arn and the region/account", len(found))}
			continue
		}
		answers[arn] = groupAnswer{group: Group{
			ARN:           arn,
			Name:          aws.ToString(tg.TargetGroupName),
			TargetType:    string(tg.TargetType),
			Protocol:      string(tg.Protocol),
			VPCID:         aws.ToString(tg.VpcId),
			IPAddressType: string(tg.IpAddressType),
			Port:          aws.ToInt32(tg.Port),
		}}
	}
	return answers
}

// describeHalf describes part of a refused batch on a token of its own.
func (c *Client) describeHalf(ctx context.Context, batch []string) map[string]groupAnswer {
	callCtx, cancel, err := c.callCtx(context.WithoutCancel(ctx), budget.Describe)
	if err != nil {
		return allFail(batch, err)
	}
	defer cancel()
	return c.describeGroups(callCtx, batch)
}

func allFail(batch []string, err error) map[string]groupAnswer {
	answers := make(map[string]groupAnswer, len(batch))
	for _, arn := range batch {
		answers[arn] = groupAnswer{err: err}
	}
	return answers
}
