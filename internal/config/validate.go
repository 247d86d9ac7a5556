package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
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
		if s.Name != "" {
			if j, dup := names[s.Name]; dup {
				add("%s: name %q is already used by syncs[%d]; names must be unique (they are metric labels): set a distinct name:", s.label(i), s.Name, j)
			} else {
				names[s.Name] = i
			}
		}
		if s.TargetGroupARN != "" {
			// Even with prune: false, two mappings resolving to the same address would both own its target, and one
			// would deregister it while the other's DNS still returns it (I2 across mappings).
			if j, dup := groups[s.TargetGroupARN]; dup {
				add("%s: target_group_arn is also used by syncs[%d] (%s); one mapping would deregister targets the other still needs: give each mapping its own target group", s.label(i), j, c.Syncs[j].Name)
			} else {
				groups[s.TargetGroupARN] = i
			}
		}
	}

	p = append(p, c.Discover.problems()...)
	p = append(p, c.AWS.problems()...)

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

	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
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

	// An empty name with no source is already reported as the missing source it derives from.
	if (s.Name != "" || s.DefaultName() != "") && !validName(s.Name) {
		add("name %q: expected letters, digits, '_', '.' and '-' only, since it is a metric label (the default is the first label of endpoint): set name:", s.Name)
	}
	return p
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

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// checkDNSName accepts a host name (letters, digits, '-', '_'; labels of 1-63 characters; 253 in all), with or
// without the final dot. IP addresses are refused: there would be nothing to follow.
func checkDNSName(name string) error {
	switch {
	case strings.Contains(name, "://"):
		return fmt.Errorf("looks like a URL, not a DNS name")
	case strings.ContainsAny(name, ":/"):
		if _, err := netip.ParseAddr(name); err == nil {
			return fmt.Errorf("is an IP address; ipsync follows a DNS name (register a fixed address in the target group directly)")
		}
		return fmt.Errorf("is not a bare DNS name (no scheme, port or path; the port goes in port:)")
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("is an IP address; ipsync follows a DNS name (register a fixed address in the target group directly)")
	}
	trimmed := strings.TrimSuffix(name, ".")
	if len(trimmed) == 0 || len(trimmed) > 253 {
		return fmt.Errorf("is %d characters long; a DNS name has 1-253", len(trimmed))
	}
	for _, label := range strings.Split(trimmed, ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("has a label of %d characters; each dot-separated label has 1-63", len(label))
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("has %q, which is not allowed in a DNS name (letters, digits, '-', '_', '.')", r)
			}
		}
	}
	return nil
}

// checkTargetGroupARN checks the shape of an ELBv2 target group ARN; the region ipsync calls comes from it.
func checkTargetGroupARN(s string) error {
	a, err := parseARN(s)
	if err != nil {
		return err
	}
	if a.Service != "elasticloadbalancing" {
		return fmt.Errorf("service is %q, not elasticloadbalancing", a.Service)
	}
	if a.Region == "" || !isLowerDash(a.Region) {
		return fmt.Errorf("region %q is not a region such as us-east-1", a.Region)
	}
	if err := checkAccount(a.AccountID); err != nil {
		return err
	}
	parts := strings.Split(a.Resource, "/")
	if parts[0] == "loadbalancer" {
		return fmt.Errorf("is a load balancer ARN; give the ARN of its target group")
	}
	if len(parts) != 3 || parts[0] != "targetgroup" {
		return fmt.Errorf("resource %q is not targetgroup/NAME/ID", a.Resource)
	}
	name, id := parts[1], parts[2]
	if len(name) == 0 || len(name) > 32 || name[0] == '-' || name[len(name)-1] == '-' || !isAlnumDash(name) {
		return fmt.Errorf("target group name %q is not 1-32 letters, digits and inner '-'", name)
	}
	if id == "" || !isAlnumDash(id) || strings.Contains(id, "-") {
		return fmt.Errorf("target group ID %q is not alphanumeric", id)
	}
	return nil
}

// checkRoleARN checks the shape of an IAM role ARN (paths allowed: role/path/NAME).
func checkRoleARN(s string) error {
	a, err := parseARN(s)
	if err != nil {
		return err
	}
	if a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/") {
		return fmt.Errorf("is an STS session ARN; give the IAM role's ARN")
	}
	if a.Service != "iam" {
		return fmt.Errorf("service is %q, not iam", a.Service)
	}
	if a.Region != "" {
		return fmt.Errorf("has region %q; IAM ARNs have none", a.Region)
	}
	if err := checkAccount(a.AccountID); err != nil {
		return err
	}
	name, ok := strings.CutPrefix(a.Resource, "role/")
	if !ok || name == "" || strings.HasSuffix(name, "/") || strings.ContainsAny(name, " \t\r\n") {
		return fmt.Errorf("resource %q is not role/NAME", a.Resource)
	}
	return nil
}

func parseARN(s string) (arn.ARN, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return arn.ARN{}, fmt.Errorf("is not an ARN (%w)", err)
	}
	if a.Partition == "" || !isLowerDash(a.Partition) {
		return arn.ARN{}, fmt.Errorf("partition %q is not one such as aws, aws-cn or aws-us-gov", a.Partition)
	}
	return a, nil
}

func checkAccount(id string) error {
	if len(id) != 12 || strings.Trim(id, "0123456789") != "" {
		return fmt.Errorf("account ID %q is not 12 digits", id)
	}
	return nil
}

func isLowerDash(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func isAlnumDash(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// checkHostPort accepts host:port with an IP address, a DNS name or (for listening) an empty host, and a
// numeric port from minPort to 65535.
func checkHostPort(s string, minPort int) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port")
	}
	if host == "" {
		if minPort > 0 {
			return fmt.Errorf("no host")
		}
	} else if _, err := netip.ParseAddr(host); err != nil {
		if checkDNSName(host) != nil {
			return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Errorf("port %q is not a number %d-65535", port, minPort)
	}
	return nil
}
