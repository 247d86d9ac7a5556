// Package config is ipsync's resolved configuration: defaults, then a YAML file or inline YAML
// (--config / IPSYNC_CONFIG), then flags, each flag also settable as IPSYNC_<FLAG_NAME>. Load builds a
// Config; Validate reports every problem at once. Nothing here talks to AWS or DNS.
package config

import (
	"strings"
	"time"
)

// Config is the resolved configuration every command runs from.
type Config struct {
	Syncs          []Sync
	Discover       Discover // target groups found by tag become mappings too
	AWS            AWS      // API budget per account and region
	DNS            DNS
	Poll           Poll
	ResyncInterval time.Duration // DescribeTargetHealth at least this often, to catch drift (I9)
	Listen         string        // host:port for /metrics /healthz /readyz; "" = disabled
	Log            Log

	// What Load could not use from the file (values of the wrong type, unknown keys), for Validate to list first;
	// syncsInvalid: syncs: itself had the wrong type, so "no mappings" would only repeat it. Only ever set on
	// invalid input, so valid configurations compare equal to struct literals.
	fileProblems []string
	syncsInvalid bool
}

// Sync is one mapping: the addresses of one source kept in one target group. The source is exactly one of
// Endpoint, Endpoints and RDS (Validate enforces it).
type Sync struct {
	Name             string   // unique; the `sync` metric label. Default: see DefaultName.
	Endpoint         string   // endpoint: one DNS name
	Endpoints        []string // endpoints: several DNS names; the desired set is the union of their addresses
	RDS              *RDS     // rds: members read from the RDS API, each followed through its instance endpoint
	TargetGroupARN   string
	Port             int32  // 0 = use the target group's port (an explicit 0 in the input is a Validate error)
	AvailabilityZone string // "auto" (learned from AWS's answers) | "all" | "vpc"
	Prune            bool   // false: only deregister targets ipsync registered itself (I7)
	DeregisterAfter  int    // consecutive successful resolutions an address must be absent before deregistration (I6)
	RoleARN          string // optional IAM role to assume for this mapping
	RDSIdentifier    string // rds_identifier: the DB instance/cluster whose RDS events concern this mapping; "" = DBIdentifier's default
	// AllowedCIDRs are the only ranges an address must be in to be registered (I10), as written (Validate checks
	// them; AllowedPrefixes parses them). Empty: RFC 1918, RFC 6598 and IPv6 ULA (a VPC with a public CIDR block
	// must be listed here, and so must a VPC's IPv6 CIDR, which AWS makes global unicast).
	AllowedCIDRs []string

	// zeroPort records a port given as 0, which Validate rejects; Port alone cannot tell it from "not given".
	// It is only ever set on invalid input, so valid configurations compare equal to struct literals.
	zeroPort bool
	// invalid names the keys of this entry whose values had the wrong type (Load reported them), so that they are
	// not also called missing; the key "" stands for an entry that is not a mapping at all.
	invalid map[string]bool
}

// DNS configures the resolver.
type DNS struct {
	Mode    string        // DNSModeRecursive | DNSModeAuthoritative
	Servers []string      // host:port; empty = /etc/resolv.conf
	Timeout time.Duration // per query
}

// dns.mode values. Recursive asks dns.servers, whose answers can be as old as their TTL. Authoritative asks
// each endpoint's zone's own name servers (found through dns.servers) every poll.min, so it sees a change as
// soon as the zone publishes it; it needs DNS (port 53) to the internet and falls back to recursive per
// mapping when the name servers cannot be reached.
const (
	DNSModeRecursive     = "recursive"
	DNSModeAuthoritative = "authoritative"
)

// The floors of the durations: below them ipsync would flood DNS servers (in authoritative mode another party's,
// asked every poll.min whatever the TTL) or spend the account's AWS API budget, throttling every other client of
// the account, without following a failover any sooner.
const (
	MinDNSTimeout     = 100 * time.Millisecond
	MinPollMin        = 250 * time.Millisecond // at most 4 queries a second per mapping
	MinPollMax        = time.Second
	MinResyncInterval = 5 * time.Second // one mapping: 0.2 DescribeTargetHealth a second, 2 % of the account's budget
)

// Poll bounds how soon an endpoint is resolved again: the answer's TTL, clamped to [Min, Max].
type Poll struct {
	Min time.Duration
	Max time.Duration
}

// Log configures zap.
type Log struct {
	Level  string // debug | info | warn | error
	Format string // json | console
}

// Defaults (README "Configuration", ipsync.example.yaml).
const (
	DefaultDNSMode          = DNSModeRecursive
	DefaultDNSTimeout       = 2 * time.Second
	DefaultPollMin          = 1 * time.Second // in both DNS modes
	DefaultPollMax          = 30 * time.Second
	DefaultResyncInterval   = 60 * time.Second
	DefaultListen           = ":9796"
	DefaultLogLevel         = "info"
	DefaultLogFormat        = "json"
	DefaultAvailabilityZone = "auto"
	DefaultDeregisterAfter  = 2
)

// Defaults returns the configuration with no file and no flags: every default and no mappings.
func Defaults() *Config {
	return &Config{
		DNS:            DNS{Mode: DefaultDNSMode, Timeout: DefaultDNSTimeout},
		Poll:           Poll{Min: DefaultPollMin, Max: DefaultPollMax},
		ResyncInterval: DefaultResyncInterval,
		Listen:         DefaultListen,
		Log:            Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
	}
}

// DefaultSync returns a mapping with the per-mapping defaults. Name stays empty: Load sets it to
// DefaultName() when none is given.
func DefaultSync() Sync {
	return Sync{
		AvailabilityZone: DefaultAvailabilityZone,
		Prune:            true,
		DeregisterAfter:  DefaultDeregisterAfter,
	}
}

// DefaultName is the name of a mapping that gives none: for endpoint, its first DNS label; for endpoints, the
// first one's first label; for rds, see RDS.DefaultName. "" when the mapping has no source.
func (s Sync) DefaultName() string {
	switch {
	case s.Endpoint != "":
		return NameFromEndpoint(s.Endpoint)
	case len(s.Endpoints) > 0:
		return NameFromEndpoint(s.Endpoints[0])
	case s.RDS != nil:
		return s.RDS.DefaultName()
	}
	return ""
}

// DNSNames are the names a mapping follows through DNS: [Endpoint], or Endpoints. An rds: mapping has none of
// its own; its members' instance endpoints come from the RDS API.
func (s Sync) DNSNames() []string {
	if s.Endpoint != "" {
		return []string{s.Endpoint}
	}
	return s.Endpoints
}

// NameFromEndpoint is the default mapping name: the endpoint's first DNS label
// ("orders" for "orders.c9abc.us-east-1.rds.amazonaws.com").
func NameFromEndpoint(endpoint string) string {
	label, _, _ := strings.Cut(endpoint, ".")
	return label
}
