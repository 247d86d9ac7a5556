// Package targets is ipsync's seam to ELBv2: it reads a target group and its targets' health, and registers
// and deregisters IP targets. Every call runs under its own deadline; retries
// are the SDK standard retryer's (configured once in Factory), never a loop here.
//
// An AWS error comes back as the SDK returned it (it names the operation and carries the AWS error code):
// the caller adds which mapping and target group it was working on, and package awserr says what the code
// means.
package targets

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/nlb"
)

// DefaultCallTimeout bounds one API call, including the SDK's retries. The wait for the call's first token of the
// AWS API budget comes before it, bounded by MaxBudgetWait.
const DefaultCallTimeout = 10 * time.Second

// MaxBudgetWait bounds how long a call waits for its first token of the AWS API budget: the call then fails
// (and the mapping tries again later) rather than holding its worker without end.
const MaxBudgetWait = time.Minute

// MaxTargetsPerCall is how many targets one RegisterTargets/DeregisterTargets request carries; longer lists
// are split into several calls.
const MaxTargetsPerCall = 100

// Group is what DescribeTargetGroups says about the target group.
type Group struct {
	ARN, Name, TargetType, Protocol, VPCID, IPAddressType string // TargetType "ip"; IPAddressType "ipv4"|"ipv6"
	Port                                                  int32
}

// ELBv2API is the part of the ELBv2 client ipsync uses, with the SDK's exact signatures.
type ELBv2API interface {
	DescribeTargetGroups(ctx context.Context, params *elbv2.DescribeTargetGroupsInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTargetHealth(ctx context.Context, params *elbv2.DescribeTargetHealthInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
	RegisterTargets(ctx context.Context, params *elbv2.RegisterTargetsInput, optFns ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error)
	DeregisterTargets(ctx context.Context, params *elbv2.DeregisterTargetsInput, optFns ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error)
	DescribeTags(ctx context.Context, params *elbv2.DescribeTagsInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTagsOutput, error)
	AddTags(ctx context.Context, params *elbv2.AddTagsInput, optFns ...func(*elbv2.Options)) (*elbv2.AddTagsOutput, error)
	RemoveTags(ctx context.Context, params *elbv2.RemoveTagsInput, optFns ...func(*elbv2.Options)) (*elbv2.RemoveTagsOutput, error)
}

var _ ELBv2API = (*elbv2.Client)(nil)

// Client is the target-group seam the engine uses. Every call runs under its own deadline (CallTimeout).
type Client struct {
	elb ELBv2API
	// CallTimeout bounds each API call including retries; set it before first use. <= 0 means DefaultCallTimeout.
	CallTimeout time.Duration
	// Budget is the AWS API budget of the account and region this client calls (I11); nil: no budget. Set it
	// before first use, together with its Middleware on the ELBv2 client so that retries wait too.
	Budget *budget.Account

	groups groupReads // Group's batches (groups.go)
}

// NewClient wraps the given API client with CallTimeout = DefaultCallTimeout.
func NewClient(elb ELBv2API) *Client {
	return &Client{elb: elb, CallTimeout: DefaultCallTimeout}
}

// callCtx waits for the call's token of kind ("" = not budgeted), then gives the call its deadline.
func (c *Client) callCtx(ctx context.Context, kind budget.Kind) (context.Context, context.CancelFunc, error) {
	if kind != "" {
		var err error
		if ctx, err = c.Budget.Wait(ctx, kind, MaxBudgetWait); err != nil {
			return nil, nil, err
		}
	}
	d := c.CallTimeout
	if d <= 0 {
		d = DefaultCallTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, nil
}

// Health returns every target of the group with its state, sorted by IP then port, one row per target. Port and
// AvailabilityZone are exactly what ELBv2 reported, so they can be echoed on deregistration (I4).
func (c *Client) Health(ctx context.Context, arn string) ([]nlb.TargetHealth, error) {
	ctx, cancel, err := c.callCtx(ctx, budget.Describe)
	if err != nil {
		return nil, err
	}
	defer cancel()
	// DescribeTargetHealth is not paginated: one call returns all targets.
	out, err := c.elb.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		return nil, err
	}
	hs := make([]nlb.TargetHealth, 0, len(out.TargetHealthDescriptions))
	for _, d := range out.TargetHealthDescriptions {
		if d.Target == nil {
			continue
		}
		id := aws.ToString(d.Target.Id)
		ip, err := netip.ParseAddr(id)
		if err != nil {
			return nil, fmt.Errorf("target %q is not an IP address; ipsync needs a target group of type ip", id)
		}
		h := nlb.TargetHealth{Target: nlb.Target{
			IP:               ip,
			Port:             aws.ToInt32(d.Target.Port),
			AvailabilityZone: aws.ToString(d.Target.AvailabilityZone),
		}}
		if d.TargetHealth != nil {
			h.State = string(d.TargetHealth.State)
			h.Reason = string(d.TargetHealth.Reason)
			h.Description = aws.ToString(d.TargetHealth.Description)
		}
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b nlb.TargetHealth) int {
		if c := a.IP.Compare(b.IP); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Port, b.Port); c != 0 {
			return c
		}
		if c := cmp.Compare(a.AvailabilityZone, b.AvailabilityZone); c != 0 {
			return c
		}
		return drainingFirst(a, b)
	})
	return slices.CompactFunc(hs, func(a, b nlb.TargetHealth) bool { return a.Target == b.Target }), nil
}

// drainingFirst orders the rows of one target so that a draining one comes first and is the one Health keeps
// when DescribeTargetHealth lists a target twice and the rows disagree: a live target taken for draining is
// registered again, which changes nothing, while a draining one taken for live would leave its address unserved.
func drainingFirst(a, b nlb.TargetHealth) int {
	switch {
	case a.Draining() == b.Draining():
		return 0
	case a.Draining():
		return -1
	default:
		return 1
	}
}

// Register registers the targets, at most MaxTargetsPerCall per request. Port 0 and AvailabilityZone ""
// are left out of the request (ELBv2 then uses the group's port / the VPC's zones). On error, earlier
// chunks stay registered; the caller re-reads Health.
func (c *Client) Register(ctx context.Context, arn string, ts []nlb.Target) error {
	for i, chunk := range chunks(ts) {
		err := c.call(ctx, budget.Mutate, func(ctx context.Context) error {
			_, err := c.elb.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: descriptions(chunk)})
			return err
		})
		if err != nil {
			return chunkErr(i, len(chunk), len(ts), err)
		}
	}
	return nil
}

// Deregister deregisters the targets, at most MaxTargetsPerCall per request. Port and AvailabilityZone are
// sent exactly as given — pass what Health reported: a deregistration naming another port silently does
// nothing (I4). AvailabilityZone "" is left out of the request.
func (c *Client) Deregister(ctx context.Context, arn string, ts []nlb.Target) error {
	for i, chunk := range chunks(ts) {
		err := c.call(ctx, budget.Mutate, func(ctx context.Context) error {
			_, err := c.elb.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: descriptions(chunk)})
			return err
		})
		if err != nil {
			return chunkErr(i, len(chunk), len(ts), err)
		}
	}
	return nil
}

// Tags returns the target group's tags (DescribeTags). Ownership for prune: false is recorded there.
func (c *Client) Tags(ctx context.Context, arn string) (map[string]string, error) {
	ctx, cancel, err := c.callCtx(ctx, budget.Describe)
	if err != nil {
		return nil, err
	}
	defer cancel()
	out, err := c.elb.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{arn}})
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, d := range out.TagDescriptions {
		if aws.ToString(d.ResourceArn) != arn {
			continue
		}
		for _, t := range d.Tags {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return tags, nil
}

// AddTags sets the tags on the target group (AddTags overwrites a key's value).
func (c *Client) AddTags(ctx context.Context, arn string, tags map[string]string) error {
	in := &elbv2.AddTagsInput{ResourceArns: []string{arn}}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		in.Tags = append(in.Tags, elbv2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return c.call(ctx, budget.Mutate, func(ctx context.Context) error {
		_, err := c.elb.AddTags(ctx, in)
		return err
	})
}

// RemoveTags removes the tag keys from the target group.
func (c *Client) RemoveTags(ctx context.Context, arn string, keys []string) error {
	return c.call(ctx, budget.Mutate, func(ctx context.Context) error {
		_, err := c.elb.RemoveTags(ctx, &elbv2.RemoveTagsInput{ResourceArns: []string{arn}, TagKeys: keys})
		return err
	})
}

func (c *Client) call(ctx context.Context, kind budget.Kind, fn func(context.Context) error) error {
	ctx, cancel, err := c.callCtx(ctx, kind)
	if err != nil {
		return err
	}
	defer cancel()
	return fn(ctx)
}

func chunks(ts []nlb.Target) [][]nlb.Target {
	return slices.Collect(slices.Chunk(ts, MaxTargetsPerCall))
}

// chunkErr says which chunk of a split call failed: the chunks before it went through.
func chunkErr(i, n, total int, err error) error {
	if total <= MaxTargetsPerCall {
		return err
	}
	first := i * MaxTargetsPerCall
	return fmt.Errorf("targets %d-%d of %d (the ones before went through): %w", first+1, first+n, total, err)
}

func descriptions(ts []nlb.Target) []elbv2types.TargetDescription {
	ds := make([]elbv2types.TargetDescription, len(ts))
	for i, t := range ts {
		ds[i].Id = aws.String(t.IP.String())
		if t.Port != 0 {
			ds[i].Port = aws.Int32(t.Port)
		}
		if t.AvailabilityZone != "" {
			ds[i].AvailabilityZone = aws.String(t.AvailabilityZone)
		}
	}
	return ds
}
