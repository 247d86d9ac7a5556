package config

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
)

// Discover finds mappings by tag: every ip target group in Regions carrying the tag TagKey becomes a mapping
// whose source is the tag's value. The search itself is package discover's; this is what the user asked for.
type Discover struct {
	TagKey   string        // "" = discovery off
	Regions  []string      // where to look
	Interval time.Duration // how often to look again
	RoleARN  string        // role to assume for the search and for the mappings it finds; "" = default credentials
}

// Enabled reports whether discovery runs.
func (d Discover) Enabled() bool { return d.TagKey != "" }

// DefaultDiscoverInterval is how often discovery looks again by default. Tagging a target group is an operator's
// act (Terraform, CloudFormation), so minutes are soon enough, and each look costs calls (see MinDiscoverInterval).
const DefaultDiscoverInterval = 5 * time.Minute

// MinDiscoverInterval is the floor of discover.interval. One look costs, per region, one GetResources per 100
// tagged groups and one DescribeTargetGroups per 400 groups: 38 calls at the 3,000-group quota, 8 of them from the
// ELBv2 Describe budget that DescribeTargetHealth needs for failovers. Once a minute that is under 3% of the
// default Describe budget; faster would buy little, since a tag is not a failover.
const MinDiscoverInterval = time.Minute

// Per-mapping settings a discovered target group may carry as tags; the tag's value overrides the default.
const (
	TagPort            = "ipsync:port"             // 1-65535
	TagPrune           = "ipsync:prune"            // true | false
	TagDeregisterAfter = "ipsync:deregister_after" // 1 or more
)

// OwnedTagPrefix starts the tags that record the targets ipsync registered in a group with prune: false
// (package ownership writes them). discover.tag_key must not collide with them either.
const OwnedTagPrefix = "ipsync:owned"

// AWS is ipsync's own API budget per account and region: it keeps its calls below AWS's limits, which every other
// tool in the account shares, instead of relying on AWS answering Throttling.
type AWS struct {
	DescribeRPS float64 // Describe* calls per second; 0 = DefaultDescribeRPS
	MutateRPS   float64 // RegisterTargets, DeregisterTargets (and ownership tags) per second; 0 = DefaultMutateRPS
}

// AWS's published ELBv2 limits per account and region, and ipsync's defaults: half of each, leaving the other half
// to Terraform, CloudFormation, the console and controllers sharing the account. A value above the limit is
// refused: it would make ipsync the cause of throttling (I11).
const (
	AWSDescribeLimit   = 10.0
	AWSMutateLimit     = 4.0
	DefaultDescribeRPS = 5.0
	DefaultMutateRPS   = 2.0
	// MinRPS is the floor of both: a failover takes Register, DescribeTargetHealth and Deregister in a row, and
	// below one call a second the waits for the budget alone would break the time-to-register bound.
	MinRPS = 1.0
)

// DescribeRate is the Describe budget in calls per second, the default filled in.
func (a AWS) DescribeRate() float64 { return orDefault(a.DescribeRPS, DefaultDescribeRPS) }

// MutateRate is the Register/Deregister budget in calls per second, the default filled in.
func (a AWS) MutateRate() float64 { return orDefault(a.MutateRPS, DefaultMutateRPS) }

func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

type fileDiscover struct {
	TagKey   *string        `yaml:"tag_key"`
	Regions  []string       `yaml:"regions"`
	Interval *time.Duration `yaml:"interval"`
	RoleARN  *string        `yaml:"role_arn"`
}

type fileAWS struct {
	DescribeRPS *float64 `yaml:"describe_rps"`
	MutateRPS   *float64 `yaml:"mutate_rps"`
}

// apply layers the discover: block over cfg. The interval's default is filled here, where the block is, so a
// configuration without one stays equal to Defaults().
func (fd *fileDiscover) apply(cfg *Config) {
	if fd == nil {
		return
	}
	if cfg.Discover.Interval == 0 {
		cfg.Discover.Interval = DefaultDiscoverInterval
	}
	setIf(&cfg.Discover.TagKey, fd.TagKey)
	if fd.Regions != nil {
		cfg.Discover.Regions = fd.Regions
	}
	setIf(&cfg.Discover.Interval, fd.Interval)
	setIf(&cfg.Discover.RoleARN, fd.RoleARN)
}

func (fa *fileAWS) apply(cfg *Config) {
	if fa == nil {
		return
	}
	setIf(&cfg.AWS.DescribeRPS, fa.DescribeRPS)
	setIf(&cfg.AWS.MutateRPS, fa.MutateRPS)
}

// problems checks the discover: block; nothing when discovery is off.
func (d Discover) problems() []string {
	if !d.Enabled() {
		return nil
	}
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if err := CheckTagKey(d.TagKey); err != nil {
		add("discover.tag_key %q: %v", d.TagKey, err)
	}
	if len(d.Regions) == 0 {
		add("discover.regions: empty; list the regions to search for tagged target groups, such as [us-east-1]")
	}
	seen := map[string]bool{}
	for i, r := range d.Regions {
		switch {
		case !validRegion(r):
			add("discover.regions[%d] %q: expected a region such as us-east-1", i, r)
		case seen[r]:
			add("discover.regions[%d] %q: listed twice; list each region once", i, r)
		}
		seen[r] = true
	}
	if d.Interval < MinDiscoverInterval {
		add("discover.interval %v: expected at least %v (each search costs AWS calls, and a tag is not a failover)", d.Interval, MinDiscoverInterval)
	}
	if d.RoleARN != "" {
		if err := checkRoleARN(d.RoleARN); err != nil {
			add("discover.role_arn %q: %v; expected %s, or leave it out to use the default credentials", d.RoleARN, err, roleForm)
		}
	}
	return p
}

func (a AWS) problems() []string {
	var p []string
	for _, k := range []struct {
		key      string
		v, limit float64
		calls    string
	}{
		{"aws.describe_rps", a.DescribeRPS, AWSDescribeLimit, "Describe"},
		{"aws.mutate_rps", a.MutateRPS, AWSMutateLimit, "RegisterTargets/DeregisterTargets"},
	} {
		switch {
		case math.IsNaN(k.v) || math.IsInf(k.v, 0) || k.v < 0:
			p = append(p, fmt.Sprintf("%s %v: expected 0 (the default) or a number of calls per second", k.key, k.v))
		case k.v > 0 && k.v < MinRPS:
			p = append(p, fmt.Sprintf("%s %v: expected 0 (the default) or at least %v; fewer calls a second would delay failovers", k.key, k.v, MinRPS))
		case k.v > k.limit:
			p = append(p, fmt.Sprintf("%s %v: expected at most %v, AWS's limit for %s calls per account and region; above it AWS throttles ipsync and every other tool in the account", k.key, k.v, k.limit, k.calls))
		}
	}
	return p
}

// CheckTagKey checks a tag key by AWS's rules for ELBv2 tags (1-128 characters: letters, digits, spaces and
// _ . : / = + - @; no "aws:" prefix) and refuses ipsync's own per-mapping and ownership tags.
func CheckTagKey(key string) error {
	n := len([]rune(key))
	switch {
	case n == 0 || n > 128:
		return fmt.Errorf("is %d characters long; a tag key has 1-128", n)
	case strings.HasPrefix(strings.ToLower(key), "aws:"):
		return fmt.Errorf("starts with \"aws:\", which AWS reserves for its own tags")
	case key == TagPort || key == TagPrune || key == TagDeregisterAfter || strings.HasPrefix(key, OwnedTagPrefix):
		return fmt.Errorf("is one of ipsync's own tags; choose another key, such as ipsync:endpoint")
	}
	for _, r := range key {
		if !validTagRune(r) {
			return fmt.Errorf("has %q; a tag key has letters, digits, spaces and _ . : / = + - @", r)
		}
	}
	return nil
}

func validTagRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || strings.ContainsRune("_.:/=+-@", r)
}

// validRegion accepts names shaped like AWS regions: us-east-1, eu-central-2, us-gov-west-1, cn-north-1.
func validRegion(r string) bool {
	parts := strings.Split(r, "-")
	if len(parts) < 3 {
		return false
	}
	for i, part := range parts {
		if part == "" || !isLowerDash(part) {
			return false
		}
		last := i == len(parts)-1
		if last != (strings.Trim(part, "0123456789") == "") {
			return false
		}
	}
	return true
}

// CheckDNSName reports why name is not a DNS name ipsync can follow, or nil. Discovery applies it to tag values.
func CheckDNSName(name string) error { return checkDNSName(name) }
