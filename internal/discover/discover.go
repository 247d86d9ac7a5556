// Package discover finds the target groups that become mappings by tag: every target group of type ip carrying
// discover.tag_key, in each of discover.regions, is a mapping whose source is the tag's value (a DNS name or an
// rds: short form), with optional per-mapping tags ipsync:port, ipsync:prune and ipsync:deregister_after.
//
// One search per region costs one Resource Groups Tagging API GetResources call per 100 tagged groups (the tag
// filter leaves the others out, and each answer carries every tag of its groups) and one ELBv2
// DescribeTargetGroups call per 400 groups of the region, for their type: 38 calls at the 3,000-group quota,
// 8 of them from ELBv2's Describe budget. The other way, DescribeTargetGroups then DescribeTags (20 groups a
// call, every group of the region, tagged or not), costs 158 calls, all from the Describe budget that
// DescribeTargetHealth needs during failovers. The price is one more IAM permission, tag:GetResources, which
// cannot be limited to some resources (neither can ELBv2's Describe* actions); it only lists tags.
//
// A search that fails is unknown, never "no groups": Result.Failed names the regions, and Result.Apply keeps the
// mappings found there before.
package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	rgt "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	rgttypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/aws/smithy-go"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/targets"
)

// TaggingAPI is the part of the Resource Groups Tagging API that discovery calls.
type TaggingAPI interface {
	GetResources(ctx context.Context, in *rgt.GetResourcesInput, optFns ...func(*rgt.Options)) (*rgt.GetResourcesOutput, error)
}

// ELBv2API is the part of ELBv2 that discovery calls.
type ELBv2API interface {
	DescribeTargetGroups(ctx context.Context, in *elbv2.DescribeTargetGroupsInput, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
}

var (
	_ TaggingAPI = (*rgt.Client)(nil)
	_ ELBv2API   = (*elbv2.Client)(nil)
)

// Clients are the API clients of one region.
type Clients struct {
	Tagging TaggingAPI
	ELBv2   ELBv2API
}

// ClientsFunc returns the clients for a region. NewAWSClients makes the production one.
type ClientsFunc func(region string) (Clients, error)

// DefaultCallTimeout bounds each AWS call of a search (one page), retries included.
const DefaultCallTimeout = 10 * time.Second

// Page sizes: the largest each API accepts.
const (
	resourcesPerPage    = 100
	targetGroupsPerPage = 400
)

const targetGroupResourceType = "elasticloadbalancing:targetgroup"

// Options tune a Discoverer.
type Options struct {
	Shard       config.Shard  // only groups of this shard are found (the zero Shard: all)
	CallTimeout time.Duration // per call; 0 = DefaultCallTimeout
	// Budget is the process's AWS API budget (I11): a search's calls, GetResources and DescribeTargetGroups,
	// retries included, draw from the Describe bucket of the account and region searched. nil: no budget.
	Budget *budget.Budget
}

// Discoverer searches for tagged target groups. It is safe for concurrent use.
type Discoverer struct {
	cfg     config.Discover
	clients ClientsFunc
	opts    Options

	mu       sync.Mutex
	accounts map[string]string // region -> the account searched there (budgetFor)
}

// New returns a Discoverer for cfg (validated: Enabled, regions set).
func New(cfg config.Discover, clients ClientsFunc, opts Options) *Discoverer {
	opts.CallTimeout = cmp.Or(opts.CallTimeout, DefaultCallTimeout)
	d := &Discoverer{cfg: cfg, clients: clients, opts: opts, accounts: map[string]string{}}
	if a, err := arn.Parse(cfg.RoleARN); err == nil && a.AccountID != "" {
		for _, region := range cfg.Regions {
			d.accounts[region] = a.AccountID // the role acts in its own account
		}
	}
	return d
}

// budgetFor is the API budget of the account and region a search of region calls: the account of discover.role_arn,
// or else the one the region's tagged groups were found in. Until that is known (the first page of the first search
// without role_arn), nil: that one call is not budgeted.
func (d *Discoverer) budgetFor(region string) *budget.Account {
	d.mu.Lock()
	defer d.mu.Unlock()
	account, ok := d.accounts[region]
	if d.opts.Budget == nil || !ok {
		return nil
	}
	return d.opts.Budget.ForAccount(account, region)
}

// learnAccount notes the account of a target group found in region, for budgetFor.
func (d *Discoverer) learnAccount(region, account string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.accounts[region]; !ok && account != "" {
		d.accounts[region] = account
	}
}

// Mapping is one discovered target group and what it follows.
type Mapping struct {
	// Sync is the mapping: Name (the target group's name, followed by "." and the region when discovery searches
	// several regions, so that names stay unique), TargetGroupARN, Port, Prune, DeregisterAfter (defaults or the
	// group's override tags), RoleARN (discover.role_arn), Endpoint for a DNS source, RDS for an rds: one.
	Sync   config.Sync
	Source Source
	Region string
}

// GroupError is a problem with one tagged target group: it gets no new mapping, the others go on.
type GroupError struct {
	TargetGroupARN string
	Tag            string // the tag at fault; "" when the problem is the group itself
	Problem        string // what is wrong and what to do
}

func (e *GroupError) Error() string {
	if e.Tag == "" {
		return fmt.Sprintf("target group %s: %s", e.TargetGroupARN, e.Problem)
	}
	return fmt.Sprintf("target group %s: tag %s: %s", e.TargetGroupARN, e.Tag, e.Problem)
}

// Result is one search.
type Result struct {
	Mappings []Mapping        // from the regions that answered, by target group ARN
	Skipped  []*GroupError    // tagged groups that have no mapping, and why
	Failed   map[string]error // region -> why its search failed: what it holds is unknown
}

// Err joins the regions' failures; nil when every region answered.
func (r Result) Err() error {
	var errs []error
	for _, region := range slices.Sorted(maps.Keys(r.Failed)) {
		errs = append(errs, r.Failed[region])
	}
	return errors.Join(errs...)
}

// Apply returns the discovered mappings to run after this search, given those running before (prev): the
// mappings found, plus prev's mappings in regions whose search failed (unknown is never "no groups"), plus prev's
// mapping of each group skipped for a bad tag (its new settings are unknown; it goes on as it was, and the error
// is reported every search until the tag is fixed). A group whose tag was removed, or that was deleted, is gone.
func (r Result) Apply(prev []Mapping) []Mapping {
	out := slices.Clone(r.Mappings)
	skipped := map[string]bool{}
	for _, e := range r.Skipped {
		skipped[e.TargetGroupARN] = true
	}
	for _, m := range prev {
		if _, failed := r.Failed[m.Region]; failed || skipped[m.Sync.TargetGroupARN] {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Mapping) int { return strings.Compare(a.Sync.TargetGroupARN, b.Sync.TargetGroupARN) })
	return out
}

// Discover searches every region, concurrently. It never fails as a whole: see Result.Failed.
func (d *Discoverer) Discover(ctx context.Context) Result {
	type regionResult struct {
		mappings []Mapping
		skipped  []*GroupError
		err      error
	}
	results := make([]regionResult, len(d.cfg.Regions))
	var wg sync.WaitGroup
	for i, region := range d.cfg.Regions {
		wg.Go(func() {
			m, s, err := d.region(ctx, region)
			results[i] = regionResult{m, s, err}
		})
	}
	wg.Wait()
	var res Result
	for i, rr := range results {
		if rr.err != nil {
			if res.Failed == nil {
				res.Failed = map[string]error{}
			}
			res.Failed[d.cfg.Regions[i]] = fmt.Errorf("discovering target groups tagged %s in %s: %w; the mappings found there before are kept until a search succeeds",
				d.cfg.TagKey, d.cfg.Regions[i], rr.err)
			continue
		}
		res.Mappings = append(res.Mappings, rr.mappings...)
		res.Skipped = append(res.Skipped, rr.skipped...)
	}
	slices.SortFunc(res.Mappings, func(a, b Mapping) int { return strings.Compare(a.Sync.TargetGroupARN, b.Sync.TargetGroupARN) })
	return res
}

// region searches one region: the tagged groups, then the type and name of each.
func (d *Discoverer) region(ctx context.Context, region string) ([]Mapping, []*GroupError, error) {
	c, err := d.clients(region)
	if err != nil {
		return nil, nil, err
	}
	tagged, err := d.tagged(ctx, c.Tagging, region)
	if err != nil || len(tagged) == 0 {
		return nil, nil, err
	}
	groups, err := d.targetGroups(ctx, c.ELBv2, d.budgetFor(region))
	if err != nil {
		return nil, nil, err
	}
	var mappings []Mapping
	var skipped []*GroupError
	for _, tgARN := range slices.Sorted(maps.Keys(tagged)) {
		g, ok := groups[tgARN]
		if !ok {
			// Deleted since it was tagged; the tagging API's index can lag behind ELBv2 by a little.
			continue
		}
		m, gerr := d.mapping(region, g, tagged[tgARN])
		if gerr != nil {
			skipped = append(skipped, gerr)
			continue
		}
		mappings = append(mappings, m)
	}
	return mappings, skipped, nil
}

// tagged returns the region's target groups carrying the tag key (in this shard), with all their tags.
func (d *Discoverer) tagged(ctx context.Context, api TaggingAPI, region string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	p := rgt.NewGetResourcesPaginator(api, &rgt.GetResourcesInput{
		TagFilters:          []rgttypes.TagFilter{{Key: aws.String(d.cfg.TagKey)}},
		ResourceTypeFilters: []string{targetGroupResourceType},
		ResourcesPerPage:    aws.Int32(resourcesPerPage),
	})
	for p.HasMorePages() {
		acct := d.budgetFor(region)
		page, err := callPage(ctx, d.opts.CallTimeout, acct, p.NextPage, func(o *rgt.Options) {
			o.APIOptions = append(o.APIOptions, acct.Middleware())
		})
		if err != nil {
			return nil, explain("GetResources", "tag:GetResources", err)
		}
		for _, r := range page.ResourceTagMappingList {
			tgARN := aws.ToString(r.ResourceARN)
			a, err := arn.Parse(tgARN)
			if err != nil || a.Region != region {
				continue
			}
			d.learnAccount(region, a.AccountID)
			if !d.opts.Shard.Owns(tgARN) {
				continue
			}
			tags := make(map[string]string, len(r.Tags))
			for _, t := range r.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			out[tgARN] = tags
		}
	}
	return out, nil
}

// targetGroups returns every target group of the region by ARN; its calls draw from acct (nil: none).
func (d *Discoverer) targetGroups(ctx context.Context, api ELBv2API, acct *budget.Account) (map[string]elbv2types.TargetGroup, error) {
	out := map[string]elbv2types.TargetGroup{}
	p := elbv2.NewDescribeTargetGroupsPaginator(api, &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(targetGroupsPerPage)})
	for p.HasMorePages() {
		page, err := callPage(ctx, d.opts.CallTimeout, acct, p.NextPage, func(o *elbv2.Options) {
			o.APIOptions = append(o.APIOptions, acct.Middleware())
		})
		if err != nil {
			return nil, explain("DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroups", err)
		}
		for _, g := range page.TargetGroups {
			out[aws.ToString(g.TargetGroupArn)] = g
		}
	}
	return out, nil
}

// callPage fetches one page within its own deadline. The page's first attempt waits for its token of acct's
// Describe bucket before that deadline starts, as the engine's calls do; budgeted (the option that adds acct's
// middleware) makes its retries wait for theirs.
func callPage[O any, F any](ctx context.Context, timeout time.Duration, acct *budget.Account,
	next func(context.Context, ...F) (O, error), budgeted F) (O, error) {
	ctx, err := acct.Wait(ctx, budget.Describe, targets.MaxBudgetWait)
	if err != nil {
		var none O
		return none, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return next(ctx, budgeted)
}

// explain names the call that failed, and the permission when AWS refused it.
func explain(call, permission string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "AccessDenied") {
		return fmt.Errorf("%s: %w (allow %s in the IAM policy of ipsync's role)", call, err, permission)
	}
	return fmt.Errorf("%s: %w", call, err)
}

// mapping turns a tagged group into a mapping, or says which tag is wrong.
func (d *Discoverer) mapping(region string, g elbv2types.TargetGroup, tags map[string]string) (Mapping, *GroupError) {
	tgARN := aws.ToString(g.TargetGroupArn)
	fail := func(tag, format string, args ...any) (Mapping, *GroupError) {
		return Mapping{}, &GroupError{TargetGroupARN: tgARN, Tag: tag, Problem: fmt.Sprintf(format, args...)}
	}
	if g.TargetType != elbv2types.TargetTypeEnumIp {
		return fail("", "has target type %q; ipsync registers IP addresses, so it follows only target groups of type ip: remove the tag %s", g.TargetType, d.cfg.TagKey)
	}
	src, err := ParseSource(tags[d.cfg.TagKey])
	if err != nil {
		return fail(d.cfg.TagKey, "%v", err)
	}
	s := config.DefaultSync()
	s.Name = aws.ToString(g.TargetGroupName)
	if len(d.cfg.Regions) > 1 {
		s.Name += "." + region
	}
	// An rds: source is its own identifier for RDS events (config.Sync.DBIdentifier).
	s.TargetGroupARN, s.RoleARN, s.Endpoint, s.RDS = tgARN, d.cfg.RoleARN, src.Endpoint, src.Config()
	if v, ok := tags[config.TagPort]; ok {
		n, err := wholeNumber(v)
		if err != nil || n < 1 || n > 65535 {
			return fail(config.TagPort, "%q: expected a port 1-65535, or remove the tag to use the target group's port", v)
		}
		s.Port = int32(n)
	}
	if v, ok := tags[config.TagPrune]; ok {
		switch v {
		case "true":
			s.Prune = true
		case "false":
			s.Prune = false
		default:
			return fail(config.TagPrune, "%q: expected true or false", v)
		}
	}
	if v, ok := tags[config.TagDeregisterAfter]; ok {
		n, err := wholeNumber(v)
		if err != nil || n < 1 {
			return fail(config.TagDeregisterAfter, "%q: expected a whole number, 1 or more (successful resolutions an address must be missing from before it is deregistered)", v)
		}
		s.DeregisterAfter = n
	}
	return Mapping{Sync: s, Source: src, Region: region}, nil
}

// wholeNumber accepts decimal digits only: no sign, space or fraction.
func wholeNumber(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a whole number")
	}
	return strconv.Atoi(s)
}
