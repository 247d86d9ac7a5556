// Package budget keeps ipsync's own AWS API calls within a budget per account and region (I11): token buckets
// (golang.org/x/time/rate) for ELBv2 Describe* calls, for RegisterTargets/DeregisterTargets (and the ownership
// tags), and for RDS Describe* calls, so that a Throttling answer is someone else's doing, never ours.
//
// Every attempt waits for a token, retries included: the middleware sits in the SDK's Finalize step right after
// the retry loop. A bucket's burst is one second of its rate, never more than AWS's own bucket, so that calls
// that fit ipsync's budget always fit AWS's.
//
// Calls for a mapping whose addresses just changed go first (Urgent): they take the next token, while other
// calls (drift re-reads, start-up reads) wait one at a time and only take a token when one more stays in the
// bucket for an urgent call. A failover's DescribeTargetHealth and RegisterTargets thus never wait behind a queue
// of drift re-reads; the engine spaces those re-reads so that they fit the budget (see ResyncFor).
package budget

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/ipsync/ipsync/internal/metrics"
)

// Kind names a bucket; the values are the budget label of ipsync_aws_budget_wait_seconds.
type Kind string

// The buckets of one account and region.
const (
	Describe    Kind = "describe"     // ELBv2 Describe*: DescribeTargetHealth, DescribeTargetGroups, DescribeTags; discovery's GetResources
	Mutate      Kind = "mutate"       // ELBv2 RegisterTargets, DeregisterTargets, AddTags, RemoveTags
	RDSDescribe Kind = "rds_describe" // RDS Describe*: a service of its own with its own limits
)

// Rates are the calls per second of each kind: config.AWS's DescribeRate and MutateRate. RDS Describe calls get
// the Describe rate in a bucket of their own.
type Rates struct{ Describe, Mutate float64 }

// Budget holds the buckets of every account and region ipsync calls. Safe for concurrent use.
type Budget struct {
	rates   Rates
	metrics *metrics.Metrics // nil: no metrics

	mu       sync.Mutex
	accounts map[string]*Account // "account/region"
}

// New makes a budget with rates; m records the waits (nil: none).
func New(r Rates, m *metrics.Metrics) *Budget {
	m.InitBudgets()
	return &Budget{rates: r, metrics: m, accounts: map[string]*Account{}}
}

// For returns the buckets of the account and region that own targetGroupARN.
func (b *Budget) For(targetGroupARN string) (*Account, error) {
	account, region, err := KeyOf(targetGroupARN)
	if err != nil {
		return nil, err
	}
	return b.ForAccount(account, region), nil
}

// ForAccount returns the buckets of an account and region.
func (b *Budget) ForAccount(account, region string) *Account {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := account + "/" + region
	if a, ok := b.accounts[key]; ok {
		return a
	}
	a := &Account{metrics: b.metrics, buckets: map[Kind]*bucket{
		Describe:    newBucket(b.rates.Describe),
		Mutate:      newBucket(b.rates.Mutate),
		RDSDescribe: newBucket(b.rates.Describe),
	}}
	b.accounts[key] = a
	return a
}

// KeyOf is the account and region whose limits a call about the resource arn counts against.
func KeyOf(resourceARN string) (account, region string, err error) {
	a, err := arn.Parse(resourceARN)
	if err != nil || a.Region == "" {
		return "", "", fmt.Errorf("%q is not an ARN with a region: the AWS API budget is kept per account and region", resourceARN)
	}
	return a.AccountID, a.Region, nil
}

// Account is the buckets of one account and region.
type Account struct {
	metrics *metrics.Metrics
	buckets map[Kind]*bucket
}

// Wait waits at most maxWait for a token of kind, as Urgent(ctx) says, before a call that is about to start its
// own deadline, and returns ctx marked so that the middleware does not take a second token for the call's first
// attempt: the wait then does not count against the call's timeout. Retries wait in the middleware. A nil
// *Account does not wait.
func (a *Account) Wait(ctx context.Context, kind Kind, maxWait time.Duration) (context.Context, error) {
	if a == nil {
		return ctx, nil
	}
	wait, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	if err := a.take(wait, kind); err != nil {
		return ctx, err
	}
	paid := &atomic.Bool{}
	paid.Store(true)
	return context.WithValue(ctx, prepaidKey{}, paid), nil
}

func (a *Account) take(ctx context.Context, kind Kind) error {
	start := time.Now()
	err := a.buckets[kind].take(ctx, IsUrgent(ctx))
	a.metrics.BudgetWait(string(kind), time.Since(start))
	if err != nil {
		return fmt.Errorf("waiting for ipsync's AWS API budget (%s): %w", kind, err)
	}
	return nil
}

const middlewareID = "ipsync.budget"

// Middleware returns a stack mutator for a client's APIOptions: every attempt of a budgeted operation waits for
// a token of its kind, after the SDK's retry step, so that retries are paced as first attempts are. Operations
// outside the budget (STS) pass at once. A nil *Account gives a no-op.
func (a *Account) Middleware() func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		if a == nil {
			return nil
		}
		if _, ok := s.Finalize.Get(middlewareID); ok {
			return nil
		}
		mw := middleware.FinalizeMiddlewareFunc(middlewareID, func(ctx context.Context, in middleware.FinalizeInput,
			next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			kind, ok := KindOf(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx))
			if ok && !prepaid(ctx) {
				if err := a.take(ctx, kind); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
			}
			return next.HandleFinalize(ctx, in)
		})
		if _, ok := s.Finalize.Get("Retry"); ok {
			return s.Finalize.Insert(mw, "Retry", middleware.After)
		}
		return s.Finalize.Add(mw, middleware.Before)
	}
}

// KindOf is the bucket an operation of the service (the SDK's service ID) draws from; false: not budgeted.
// Discovery's GetResources (the Resource Groups Tagging API) draws from the Describe bucket with the
// DescribeTargetGroups that follows it: a search is a few calls every discover.interval, and one bucket for a
// search's reads keeps it from ever bursting past what the account's Describe budget allows.
func KindOf(serviceID, operation string) (Kind, bool) {
	switch {
	case serviceID == "Elastic Load Balancing v2" && strings.HasPrefix(operation, "Describe"),
		serviceID == "Resource Groups Tagging API" && operation == "GetResources":
		return Describe, true
	case serviceID == "Elastic Load Balancing v2" && (operation == "RegisterTargets" || operation == "DeregisterTargets" ||
		operation == "AddTags" || operation == "RemoveTags"):
		return Mutate, true
	case serviceID == "RDS" && strings.HasPrefix(operation, "Describe"):
		return RDSDescribe, true
	}
	return "", false
}

type urgentKey struct{}

// Urgent marks the calls made under ctx as a failover's: they take the next token, ahead of every call not so
// marked. The engine marks the passes of a mapping whose addresses changed until its target group is in sync.
func Urgent(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) }

// IsUrgent reports whether ctx carries Urgent's mark.
func IsUrgent(ctx context.Context) bool { v, _ := ctx.Value(urgentKey{}).(bool); return v }

type prepaidKey struct{}

// prepaid reports, once, whether Wait already took the token of the call's first attempt.
func prepaid(ctx context.Context) bool {
	p, _ := ctx.Value(prepaidKey{}).(*atomic.Bool)
	return p != nil && p.CompareAndSwap(true, false)
}

// bucket is one token bucket with room kept for urgent calls.
type bucket struct {
	lim *rate.Limiter
	// keep is how many tokens a call that is not urgent leaves in the bucket: 1 when the burst allows it.
	keep float64
	// background lets one call that is not urgent wait at a time, so that those calls queue here in order
	// instead of reserving future tokens that an urgent call would then wait behind.
	background chan struct{}
}

// newBucket makes a bucket of perSecond tokens a second holding one second of them (at least 1): at most AWS's
// own bucket, since the configured rates are at most AWS's published limits.
func newBucket(perSecond float64) *bucket {
	burst := max(1, int(perSecond))
	keep := 0.0
	if burst >= 2 {
		keep = 1
	}
	return &bucket{lim: rate.NewLimiter(rate.Limit(perSecond), burst), keep: keep, background: make(chan struct{}, 1)}
}

// take takes one token, waiting as long as ctx allows. An urgent call reserves the next token outright.
func (b *bucket) take(ctx context.Context, urgent bool) error {
	if urgent {
		return b.lim.Wait(ctx)
	}
	select {
	case b.background <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.background }()
	for {
		now := time.Now()
		short := 1 + b.keep - b.lim.TokensAt(now)
		if short <= 0 && b.lim.AllowN(now, 1) {
			return nil
		}
		wait := time.Duration(max(short, 0.01) / float64(b.lim.Limit()) * float64(time.Second))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
