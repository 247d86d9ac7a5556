package elbv2fake

import (
	"fmt"
	"strings"
	"sync"

	"golang.org/x/time/rate"
)

// Limits are ELBv2's API rate limits per account and region, enforced as AWS does: token buckets, and a call
// that finds its bucket empty is answered HTTP 400 Throttling (and changes nothing). Set Options.Limits to turn
// them on; tests and benchmarks then see whether a client stays inside AWS's budget on its own. The buckets run
// on Options.Now, so a fake clock drives them too.
//
// The fake serves one account (Options.AccountID), so buckets are kept per region, the region being the one the
// call was signed for. EC2, STS and the tagging API are not limited.
type Limits struct {
	DescribeRPS   float64 // every ELBv2 Describe* action
	DescribeBurst int     // calls a full bucket admits at once
	MutateRPS     float64 // RegisterTargets, DeregisterTargets, AddTags, RemoveTags
	MutateBurst   int
}

// PublishedLimits are AWS's published ELBv2 limits: Describe* about 10 calls a second, RegisterTargets and
// DeregisterTargets about 4. AWS does not publish the bucket sizes; one second's worth is assumed, which is
// strict: a client that fits these fits AWS.
func PublishedLimits() Limits {
	return Limits{DescribeRPS: 10, DescribeBurst: 10, MutateRPS: 4, MutateBurst: 4}
}

// limiter holds the buckets of each region; nil when Options.Limits is nil.
type limiter struct {
	limits Limits

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter // region + "/" + bucket name
	throttled int
}

func newLimiter(l *Limits) *limiter {
	if l == nil {
		return nil
	}
	return &limiter{limits: *l, buckets: map[string]*rate.Limiter{}}
}

// bucketOf names the bucket an ELBv2 action draws from; "" = not limited.
func bucketOf(svc, action string) string {
	if svc != "elbv2" {
		return ""
	}
	switch {
	case strings.HasPrefix(action, "Describe"):
		return "describe"
	case action == "RegisterTargets" || action == "DeregisterTargets" || action == "AddTags" || action == "RemoveTags":
		return "mutate"
	}
	return ""
}

// throttle takes a token for the call, or returns the Throttling fault when its bucket is empty.
func (s *Server) throttle(version, action, region string) *Fault {
	l := s.limits
	if l == nil {
		return nil
	}
	svc := serviceFor(version)
	if svc == nil {
		return nil
	}
	name := bucketOf(svc.name, action)
	if name == "" {
		return nil
	}
	if region == "" {
		region = s.opts.Region
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := region + "/" + name
	b := l.buckets[key]
	if b == nil {
		if name == "describe" {
			b = rate.NewLimiter(rate.Limit(l.limits.DescribeRPS), l.limits.DescribeBurst)
		} else {
			b = rate.NewLimiter(rate.Limit(l.limits.MutateRPS), l.limits.MutateBurst)
		}
		l.buckets[key] = b
	}
	if b.AllowN(s.now(), 1) {
		return nil
	}
	l.throttled++
	f := Throttled()
	return &f
}

// ThrottledCalls is how many calls the Limits answered Throttling so far (faults injected with SetFault or
// FailNext are not counted). A client that keeps to its budget sees 0.
func (s *Server) ThrottledCalls() int {
	if s.limits == nil {
		return 0
	}
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	return s.limits.throttled
}

func (l *Limits) check() error {
	if l != nil && (l.DescribeRPS <= 0 || l.MutateRPS <= 0 || l.DescribeBurst < 1 || l.MutateBurst < 1) {
		return fmt.Errorf("elbv2fake: Limits %+v: rates must be above 0 and bursts at least 1 (nil Limits = unlimited)", *l)
	}
	return nil
}
