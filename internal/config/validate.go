package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ValidationError lists every problem Validate found, each naming the mapping (index and name) or the key, the
// value, and what is expected.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	noun := "problems"
	if len(e.Problems) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("invalid configuration (%d %s):\n  %s", len(e.Problems), noun, strings.Join(e.Problems, "\n  "))
}

const (
	exampleEndpoint = "orders.c9abc.us-east-1.rds.amazonaws.com"
	targetGroupForm = "arn:aws:elasticloadbalancing:REGION:ACCOUNT_ID:targetgroup/NAME/ID"
	roleForm        = "arn:aws:iam::ACCOUNT_ID:role/NAME"
)

// Validate checks every value and returns nil or a *ValidationError with all problems at once.
func (c *Config) Validate() error {
	if c == nil {
		return &ValidationError{Problems: []string{"no configuration"}}
	}
	p := slices.Clone(c.fileProblems)
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	c.syncsProblems(add)
	p = append(p, c.Discover.problems()...)
	p = append(p, c.AWS.problems()...)
	c.dnsProblems(add)
	c.timingProblems(add)
	c.serviceProblems(add)
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}

// syncsProblems checks each mapping on its own, then that names and target groups are each used once.
func (c *Config) syncsProblems(add func(string, ...any)) {
	if len(c.Syncs) == 0 && !c.Discover.Enabled() && !c.syncsInvalid {
		add("no mappings: set --endpoint and --target-group-arn, or syncs: in --config")
	}
	names := map[string]int{}
	groups := map[string]int{}
	for i := range c.Syncs {
		s := &c.Syncs[i]
		if s.invalid[""] {
			continue // not a mapping: Load said so, and there is nothing else to check
		}
		for _, problem := range s.problems() {
			add("%s: %s", s.label(i), problem)
		}
		if j, dup := firstUse(names, s.Name, i); dup {
			add("%s: name %q is already used by syncs[%d]; names must be unique (they are metric labels): set a distinct name:", s.label(i), s.Name, j)
		}
		// Even with prune: false, two mappings resolving to the same address would both own its target, and one
		// would deregister it while the other's DNS still returns it (I2 across mappings).
		if j, dup := firstUse(groups, s.TargetGroupARN, i); dup {
			add("%s: target_group_arn is also used by syncs[%d] (%s); one mapping would deregister targets the other still needs: give each mapping its own target group", s.label(i), j, c.Syncs[j].Name)
		}
	}
}

// firstUse records key as used by index i and reports the earlier index when it was already used. An empty key
// is never a duplicate: it is reported as missing elsewhere.
func firstUse(seen map[string]int, key string, i int) (int, bool) {
	if key == "" {
		return 0, false
	}
	if j, dup := seen[key]; dup {
		return j, true
	}
	seen[key] = i
	return 0, false
}

func (c *Config) dnsProblems(add func(string, ...any)) {
	for i, srv := range c.DNS.Servers {
		if err := checkHostPort(srv, 1); err != nil {
			add("dns.servers[%d] (--dns-server) %q: %v; expected host:port such as 10.0.0.2:53", i, srv, err)
		}
	}
	switch c.DNS.Mode {
	case DNSModeRecursive, DNSModeAuthoritative:
	default:
		add("dns.mode %q: expected %s or %s", c.DNS.Mode, DNSModeRecursive, DNSModeAuthoritative)
	}
	atLeast(add, "dns.timeout", c.DNS.Timeout, MinDNSTimeout, "2s",
		"a shorter timeout fails queries that a busy resolver answers, and nothing changes while DNS fails")
}

// timingProblems checks the floors of poll and resync_interval: below them ipsync would spend the account's API
// budget and the resolvers' patience for nothing.
func (c *Config) timingProblems(add func(string, ...any)) {
	atLeast(add, "poll.min", c.Poll.Min, MinPollMin, "1s",
		"an answer with TTL 0, a DNS error, or in authoritative mode every answer, is asked again every poll.min")
	switch {
	case c.Poll.Max < MinPollMax:
		atLeast(add, "poll.max", c.Poll.Max, MinPollMax, "30s",
			"a mapping whose pass failed hard asks AWS again every poll.max")
	case c.Poll.Max < c.Poll.Min:
		add("poll.max %v: expected at least poll.min (%v)", c.Poll.Max, c.Poll.Min)
	}
	switch {
	case c.ResyncInterval < MinResyncInterval:
		atLeast(add, "resync_interval", c.ResyncInterval, MinResyncInterval, "60s",
			"every mapping reads its target group once per resync_interval, and AWS allows an account about 10 Describe calls a second in all")
	case c.ResyncInterval < c.Poll.Min:
		add("resync_interval %v: expected at least poll.min (%v)", c.ResyncInterval, c.Poll.Min)
	}
}

// serviceProblems checks the listen address and the log settings.
func (c *Config) serviceProblems(add func(string, ...any)) {
	if c.Listen != "" {
		if err := checkHostPort(c.Listen, 0); err != nil {
			add("listen (--listen) %q: %v; expected host:port such as \":9796\" or \"127.0.0.1:9796\", or \"\" to disable", c.Listen, err)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level (--log-level) %q: expected debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		add("log.format (--log-format) %q: expected json or console", c.Log.Format)
	}
}

func atLeast(add func(string, ...any), key string, d, floor time.Duration, example, why string) {
	if d < floor {
		add("%s %v: expected at least %v, such as %s (%s)", key, d, floor, example, why)
	}
}

// label names a mapping in messages: "syncs[0] (orders)".
func (s *Sync) label(i int) string {
	if s.Name == "" {
		return fmt.Sprintf("syncs[%d]", i)
	}
	return fmt.Sprintf("syncs[%d] (%s)", i, s.Name)
}

// problems checks one mapping on its own.
func (s *Sync) problems() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	// Keys that a mapping from flags can set name the flag too.
	p = append(p, s.sourceProblems()...)

	if s.invalid["target_group_arn"] {
		// Load reported its value.
	} else if s.TargetGroupARN == "" {
		add("target_group_arn (--target-group-arn): missing; expected %s", targetGroupForm)
	} else if err := checkTargetGroupARN(s.TargetGroupARN); err != nil {
		add("target_group_arn (--target-group-arn) %q: %v; expected %s", s.TargetGroupARN, err, targetGroupForm)
	}

	switch {
	case s.Port == 0 && s.zeroPort:
		add("port (--port) 0: expected 1-65535; leave port out to use the target group's port")
	case s.Port < 0 || s.Port > 65535:
		add("port (--port) %d: expected 1-65535, or leave port out to use the target group's port", s.Port)
	}

	switch s.AvailabilityZone {
	case "auto", "all", "vpc":
	default:
		add("availability_zone %q: expected auto, all or vpc", s.AvailabilityZone)
	}

	if s.DeregisterAfter < 1 {
		add("deregister_after %d: expected 1 or more (successful resolutions an address must be missing from before it is deregistered)", s.DeregisterAfter)
	}

	if s.RoleARN != "" {
		if err := checkRoleARN(s.RoleARN); err != nil {
			add("role_arn %q: %v; expected %s, or leave role_arn out to use the default credentials", s.RoleARN, err, roleForm)
		}
	}

	s.identityProblems(add)

	// An empty name with no source is already reported as the missing source it derives from.
	if (s.Name != "" || s.DefaultName() != "") && !validName(s.Name) {
		add("name %q: expected letters, digits, '_', '.' and '-' only, since it is a metric label (the default is the first label of endpoint): set name:", s.Name)
	}
	return p
}

// identityProblems checks rds_identifier and allowed_cidrs: what ties RDS events and addresses to the mapping.
func (s *Sync) identityProblems(add func(string, ...any)) {
	if s.RDSIdentifier != "" && s.RDS != nil {
		add("rds_identifier %q: not used with rds:, whose cluster or instance is the identifier RDS events name: remove it", s.RDSIdentifier)
	} else if s.RDSIdentifier != "" && !ValidRDSIdentifier(s.RDSIdentifier) {
		add("rds_identifier %q: expected a DB instance or cluster identifier (1-63 letters, digits and hyphens, starting with a letter, no \"--\", not ending with '-'), as in the RDS event's SourceIdentifier; leave it out to use the endpoint's first label", s.RDSIdentifier)
	}
	for i, c := range s.AllowedCIDRs {
		if p, err := netip.ParsePrefix(c); err != nil {
			add("allowed_cidrs[%d] %q: not a CIDR; expected a range such as 10.0.0.0/16 or fd00::/8", i, c)
		} else if p != p.Masked() {
			add("allowed_cidrs[%d] %q: has bits set past the prefix length; did you mean %s?", i, c, p.Masked())
		}
	}
}

// sourceProblems checks that a mapping has exactly one source (endpoint, endpoints or rds) and that it is valid.
func (s *Sync) sourceProblems() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	var given []string
	if s.Endpoint != "" {
		given = append(given, "endpoint")
	}
	if s.Endpoints != nil {
		given = append(given, "endpoints")
	}
	if s.RDS != nil {
		given = append(given, "rds")
	}
	switch len(given) {
	case 0:
		if s.invalid["endpoint"] || s.invalid["endpoints"] || s.invalid["rds"] {
			break // given, with a value of the wrong type that Load reported
		}
		// The message of the single-source days: most mappings without a source meant to give endpoint.
		add("endpoint (--endpoint): missing; expected the database's DNS name, such as %s", exampleEndpoint)
	case 1:
	default:
		add("%s: a mapping takes exactly one source; give each source its own mapping and target group",
			strings.Join(given, " and "))
	}

	if s.Endpoint != "" {
		if err := checkDNSName(s.Endpoint); err != nil {
			add("endpoint (--endpoint) %q: %v; expected a DNS name such as %s", s.Endpoint, err, exampleEndpoint)
		}
	}
	if s.Endpoints != nil && len(s.Endpoints) == 0 {
		add("endpoints: empty; expected a list of DNS names, such as [r1.c9abc.us-east-1.rds.amazonaws.com, r2.c9abc.us-east-1.rds.amazonaws.com]")
	}
	seen := map[string]int{}
	for i, name := range s.Endpoints {
		if err := checkDNSName(name); err != nil {
			add("endpoints[%d] %q: %v; expected a DNS name such as %s", i, name, err, exampleEndpoint)
			continue
		}
		// DNS names are case-insensitive and the final dot is optional: these spell the same name.
		key := strings.ToLower(strings.TrimSuffix(name, "."))
		if j, dup := seen[key]; dup {
			add("endpoints[%d] %q: the same name as endpoints[%d]; list each name once", i, name, j)
		} else {
			seen[key] = i
		}
	}
	if s.RDS != nil {
		p = append(p, s.RDS.problems()...)
	}
	return p
}

// AllowedPrefixes returns AllowedCIDRs parsed; a Validate'd configuration has no invalid entry (any is skipped).
func (s *Sync) AllowedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s.AllowedCIDRs))
	for _, c := range s.AllowedCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p)
		}
	}
	return out
}
