// Package resolver answers "which addresses does this endpoint have right now, and for how long" by asking DNS
// servers directly (miekg/dns), not through the system resolver, so that ipsync sees TTLs, CNAME chains and the
// exact failure (timeout, SERVFAIL, NXDOMAIN, ...) and can refuse to act on anything but a clean answer (SPEC §3 I1).
package resolver

import (
	"context"
	"errors"
	"fmt"
	"math"
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
}

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
	servers  []string
	timeout  time.Duration
	forceTCP bool
	udp, tcp *dns.Client
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
		servers:  servers,
		timeout:  timeout,
		forceTCP: cfg.ForceTCP,
		udp:      &dns.Client{Net: "udp", Timeout: timeout, UDPSize: udpSize},
		tcp:      &dns.Client{Net: "tcp", Timeout: timeout},
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
	fail := func(kind Kind, server string, err error) (Result, error) {
		return Result{}, &Error{Kind: kind, Name: name, Server: server, Err: err}
	}
	if fam != IPv4 && fam != IPv6 {
		return fail(KindOther, "", fmt.Errorf("unknown address family %d; this is a bug in the caller", fam))
	}
	if name == "" {
		return fail(KindOther, "", errors.New("empty name; check the mapping's endpoint"))
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return fail(KindOther, "", fmt.Errorf("%q is not a valid DNS name; check the endpoint", name))
	}
	qtype := fam.qtype()
	current := strings.ToLower(dns.Fqdn(name))
	chain := []string{current}
	ttl := uint32(math.MaxUint32)

	// Each pass follows the chain as far as the answer goes. A pass that ends on a CNAME target without its
	// addresses asks again for that target; every such pass adds a name, so MaxChain bounds the passes too.
	for {
		resp, server, qerr := r.query(ctx, current, qtype)
		if qerr != nil {
			qerr.Name = name
			if len(chain) > 1 { // a second query, for the end of the chain, failed
				qerr.Err = fmt.Errorf("%w (asking for %s%s)", qerr.Err, current, via(chain))
			}
			return Result{}, qerr
		}
		advanced := false
		for {
			c := findCNAME(resp.Answer, current)
			if c == nil {
				break
			}
			target := strings.ToLower(dns.Fqdn(c.Target))
			ttl = min(ttl, rrTTL(c))
			if slices.Contains(chain, target) {
				return fail(KindLoop, server, fmt.Errorf("CNAME loop %s (answer from %s)",
					strings.Join(append(chain, target), " -> "), server))
			}
			if len(chain) == MaxChain {
				return fail(KindChainTooLong, server, fmt.Errorf("CNAME chain longer than %d names: %s (answer from %s)",
					MaxChain, strings.Join(append(chain, target), " -> "), server))
			}
			chain = append(chain, target)
			current = target
			advanced = true
		}
		if resp.Rcode == dns.RcodeNameError {
			return fail(KindNXDOMAIN, server, fmt.Errorf("%s does not exist (NXDOMAIN from %s%s)",
				current, server, via(chain)))
		}
		var addrs []netip.Addr
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype != qtype || !sameName(rr.Header().Name, current) {
				continue
			}
			var ip net.IP
			switch v := rr.(type) {
			case *dns.A:
				ip = v.A.To4()
			case *dns.AAAA:
				ip = v.AAAA.To16()
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				addrs = append(addrs, a)
				ttl = min(ttl, rrTTL(rr))
			}
		}
		if len(addrs) > 0 {
			slices.SortFunc(addrs, netip.Addr.Compare)
			return Result{
				Addrs:  slices.Compact(addrs),
				TTL:    time.Duration(ttl) * time.Second,
				Chain:  chain,
				Server: server,
			}, nil
		}
		if !advanced {
			return fail(KindNoAddress, server, fmt.Errorf("no %s record for %s in the answer from %s%s",
				dns.TypeToString[qtype], current, server, via(chain)))
		}
	}
}

// via describes the chain for error messages when there is one.
func via(chain []string) string {
	if len(chain) < 2 {
		return ""
	}
	return ", via " + strings.Join(chain, " -> ")
}

func findCNAME(answer []dns.RR, owner string) *dns.CNAME {
	for _, rr := range answer {
		if c, ok := rr.(*dns.CNAME); ok && sameName(c.Hdr.Name, owner) {
			return c
		}
	}
	return nil
}

func sameName(a, b string) bool { return strings.EqualFold(dns.Fqdn(a), dns.Fqdn(b)) }

// rrTTL reads a TTL; RFC 2181 §8 says values with the top bit set mean 0.
func rrTTL(rr dns.RR) uint32 {
	if t := rr.Header().Ttl; t <= math.MaxInt32 {
		return t
	}
	return 0
}
