// Package resolver answers "which addresses does this endpoint have right now, and for how long" by asking DNS
// servers directly (miekg/dns), not through the system resolver, so that ipsync sees TTLs, CNAME chains and the
// exact failure (timeout, SERVFAIL, NXDOMAIN, ...) and can refuse to act on anything but a clean answer (I1).
//
// Two modes. Resolver (recursive mode, this file) asks the configured servers, whose answers may be as old as
// their TTL. Authoritative (authoritative.go, zones.go) asks each name's zone's own name servers, found through
// a Resolver, and sees a change as soon as the zone publishes it. Fallback uses authoritative mode and falls back
// to recursive per name when the name servers cannot be reached; Coalescer, in front of either, keeps the query
// budget of one query per name per poll interval however many mappings follow the name.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Family is the address family to resolve: A records for IPv4, AAAA for IPv6.
type Family int

// Families.
const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "family(" + strconv.Itoa(int(f)) + ")"
}

func (f Family) qtype() uint16 {
	if f == IPv6 {
		return dns.TypeAAAA
	}
	return dns.TypeA
}

// FamilyFor maps a target group's IpAddressType to the family to resolve. "" is IPv4 (what AWS assumes when the
// field is absent); "dualstack" is IPv4 too, since a dualstack load balancer's IP targets are IPv4.
func FamilyFor(ipAddressType string) (Family, error) {
	switch strings.ToLower(ipAddressType) {
	case "", "ipv4", "dualstack":
		return IPv4, nil
	case "ipv6":
		return IPv6, nil
	}
	return 0, fmt.Errorf("unknown IP address type %q: want ipv4, ipv6 or dualstack", ipAddressType)
}

// Result is one successful resolution.
type Result struct {
	Addrs  []netip.Addr  // sorted, deduplicated; never empty on success
	TTL    time.Duration // lowest TTL along the chain (CNAMEs and A/AAAA)
	Chain  []string      // names followed, query name first; lower-case FQDNs with the trailing dot
	Server string        // host:port that gave the final answer
	Mode   Mode          // how the answer was obtained
	// At is when the final answer arrived. Answers shared by a Coalescer keep the At of the query that got
	// them, so a caller can tell a new answer from one it has already seen.
	At time.Time
	// Fallback is set by Fallback when authoritative mode could not be used for this name and the answer came
	// from the recursive servers instead: it says why. nil otherwise.
	Fallback error
}

// Mode is how a resolver asks DNS.
type Mode string

// Modes, as written in dns.mode.
const (
	// ModeRecursive asks the configured servers, which resolve for us and cache answers for their TTL.
	ModeRecursive Mode = "recursive"
	// ModeAuthoritative asks the name servers of the name's zone directly, so a change shows as soon as the
	// zone publishes it, whatever the TTL.
	ModeAuthoritative Mode = "authoritative"
)

// Config configures a Resolver.
type Config struct {
	// Servers to ask, in order, as host:port (a bare host gets port 53). Empty: the nameservers of ResolvConf.
	Servers []string
	// Timeout for one query to one server; the caller's context deadline applies too. 0 = DefaultTimeout.
	Timeout time.Duration
	// ForceTCP sends every query over TCP instead of UDP first (for networks that drop DNS over UDP).
	ForceTCP bool
	// ResolvConf is read when Servers is empty. "" = /etc/resolv.conf.
	ResolvConf string
	// OnQuery, if set, is called after every query to every server, by this Resolver and by the Authoritative
	// resolvers built on it. It runs on the resolving goroutine: keep it quick (count a metric).
	OnQuery func(Query)
}

const (
	// DefaultTimeout is the per-query timeout when Config.Timeout is 0.
	DefaultTimeout = 2 * time.Second
	// MaxChain is how many names (query name plus CNAME targets) a resolution may follow.
	MaxChain = 8

	defaultResolvConf = "/etc/resolv.conf"
	// udpSize is the EDNS0 buffer size advertised over UDP (DNS flag day 2020): big enough for a few dozen
	// addresses, small enough to avoid IP fragmentation. Larger answers come back truncated and go to TCP.
	udpSize = 1232
)

// Resolver resolves names against a fixed list of servers. It holds no mutable state: safe for concurrent use.
type Resolver struct {
	servers []string
	transport
}

// New checks cfg and builds a Resolver. It reads ResolvConf when cfg.Servers is empty.
func New(cfg Config) (*Resolver, error) {
	timeout := cfg.Timeout
	switch {
	case timeout < 0:
		return nil, fmt.Errorf("dns timeout %s is negative; set dns.timeout to a positive duration such as 2s", timeout)
	case timeout == 0:
		timeout = DefaultTimeout
	}
	servers, err := serverList(cfg)
	if err != nil {
		return nil, err
	}
	return &Resolver{
		servers:   servers,
		transport: newTransport(ModeRecursive, timeout, cfg.ForceTCP, cfg.OnQuery),
	}, nil
}

func serverList(cfg Config) ([]string, error) {
	var out []string
	if len(cfg.Servers) > 0 {
		for _, s := range cfg.Servers {
			hp, err := normalizeServer(s)
			if err != nil {
				return nil, err
			}
			out = append(out, hp)
		}
		return out, nil
	}
	path := cfg.ResolvConf
	if path == "" {
		path = defaultResolvConf
	}
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("no dns.servers configured and cannot read %s: %w; set dns.servers", path, err)
	}
	for _, s := range cc.Servers {
		hp, err := normalizeServer(net.JoinHostPort(s, cc.Port))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, hp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no dns.servers configured and %s lists no nameserver; set dns.servers", path)
	}
	return out, nil
}

// normalizeServer turns "10.0.0.2", "10.0.0.2:5353", "::1", "[::1]:53", "dns.internal" into host:port.
func normalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New(`empty DNS server address; use host:port such as "10.0.0.2:53"`)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil { // no port: a bare host, possibly an IPv6 literal
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "53"
	}
	if host == "" {
		return "", fmt.Errorf("DNS server %q has no host; use host:port such as \"10.0.0.2:53\"", s)
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", fmt.Errorf("DNS server %q is not host:port; write IPv6 addresses as [addr]:port", s)
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", fmt.Errorf("DNS server %q has invalid port %q; use host:port such as \"10.0.0.2:53\"", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// Servers returns the servers asked, in order, as host:port.
func (r *Resolver) Servers() []string { return slices.Clone(r.servers) }

// Resolve returns the addresses of family fam that name resolves to, following CNAMEs. Every error is an *Error.
// Servers are tried in order until one answers; NXDOMAIN is final. The query to each server ends after the
// configured timeout or at ctx's deadline, whichever comes first; cancelling ctx returns at once.
func (r *Resolver) Resolve(ctx context.Context, name string, fam Family) (Result, error) {
	c, cerr := newChase(name, fam)
	if cerr != nil {
		return Result{}, cerr
	}
	// Each pass follows the chain as far as the answer goes. A pass that ends on a CNAME target without its
	// addresses asks again for that target; every such pass adds a name, so MaxChain bounds the passes too.
	for {
		resp, server, qerr := r.query(ctx, c.current(), c.qtype)
		if qerr != nil {
			return Result{}, c.wrap(qerr)
		}
		advanced, ferr := c.follow(resp.Answer, server, anyName)
		if ferr != nil {
			return Result{}, ferr
		}
		if resp.Rcode == dns.RcodeNameError {
			return Result{}, c.nxdomain(server)
		}
		if addrs := c.addrs(resp.Answer); len(addrs) > 0 {
			return c.result(addrs, server, ModeRecursive), nil
		}
		if !advanced {
			return Result{}, c.noAddress(server)
		}
	}
}
