package resolver

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// chase is one resolution in progress: the CNAME chain followed so far and the lowest TTL seen. Both modes use
// it, so they follow chains, detect loops and report errors the same way.
type chase struct {
	name  string // as the caller gave it, for errors
	qtype uint16
	chain []string // lower-case FQDNs, query name first; the last is the name being resolved
	ttl   uint32
}

func newChase(name string, fam Family) (*chase, *Error) {
	fail := func(err error) *Error { return &Error{Kind: KindOther, Name: name, Err: err} }
	if fam != IPv4 && fam != IPv6 {
		return nil, fail(fmt.Errorf("unknown address family %d; this is a bug in the caller", fam))
	}
	if name == "" {
		return nil, fail(errors.New("empty name; check the mapping's endpoint"))
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fail(fmt.Errorf("%q is not a valid DNS name; check the endpoint", name))
	}
	return &chase{name: name, qtype: fam.qtype(), chain: []string{canonical(name)}, ttl: math.MaxUint32}, nil
}

// current is the name whose addresses are still wanted.
func (c *chase) current() string { return c.chain[len(c.chain)-1] }

// anyName trusts every owner name: a recursive server answers for the whole chain.
func anyName(string) bool { return true }

// follow extends the chain with the CNAMEs in answer that start at the current name, as long as trusted accepts
// their owner (an authoritative server speaks only for its own zone). advanced reports whether it moved.
func (c *chase) follow(answer []dns.RR, server string, trusted func(owner string) bool) (advanced bool, err *Error) {
	for trusted(c.current()) {
		cn := findCNAME(answer, c.current())
		if cn == nil {
			break
		}
		target := canonical(cn.Target)
		c.ttl = min(c.ttl, rrTTL(cn))
		if slices.Contains(c.chain, target) {
			return advanced, c.fail(KindLoop, server, fmt.Errorf("CNAME loop %s (answer from %s)",
				strings.Join(append(c.chain, target), " -> "), server))
		}
		if len(c.chain) == MaxChain {
			return advanced, c.fail(KindChainTooLong, server, fmt.Errorf("CNAME chain longer than %d names: %s (answer from %s)",
				MaxChain, strings.Join(append(c.chain, target), " -> "), server))
		}
		c.chain = append(c.chain, target)
		advanced = true
	}
	return advanced, nil
}

// addrs returns the current name's addresses of the wanted type in answer, lowering the TTL to theirs.
func (c *chase) addrs(answer []dns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range answer {
		if rr.Header().Rrtype != c.qtype || !sameName(rr.Header().Name, c.current()) {
			continue
		}
		if a, ok := addrOf(rr); ok {
			out = append(out, a)
			c.ttl = min(c.ttl, rrTTL(rr))
		}
	}
	return out
}

func (c *chase) result(addrs []netip.Addr, server string, mode Mode) Result {
	slices.SortFunc(addrs, netip.Addr.Compare)
	return Result{
		Addrs:  slices.Compact(addrs),
		TTL:    time.Duration(c.ttl) * time.Second,
		Chain:  c.chain,
		Server: server,
		Mode:   mode,
		At:     time.Now(),
	}
}

func (c *chase) fail(kind Kind, server string, err error) *Error {
	return &Error{Kind: kind, Name: c.name, Server: server, Err: err}
}

// wrap names the resolution in a query's error and, past the first name, the name that was being asked for.
func (c *chase) wrap(qerr *Error) *Error {
	qerr.Name = c.name
	if len(c.chain) > 1 {
		qerr.Err = fmt.Errorf("%w (asking for %s%s)", qerr.Err, c.current(), via(c.chain))
	}
	return qerr
}

func (c *chase) nxdomain(server string) *Error {
	return c.fail(KindNXDOMAIN, server, fmt.Errorf("%s does not exist (NXDOMAIN from %s%s)",
		c.current(), server, via(c.chain)))
}

func (c *chase) noAddress(server string) *Error {
	return c.fail(KindNoAddress, server, fmt.Errorf("no %s record for %s in the answer from %s%s",
		dns.TypeToString[c.qtype], c.current(), server, via(c.chain)))
}

// canonical is the form names are compared and reported in: lower case, fully qualified.
func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

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
