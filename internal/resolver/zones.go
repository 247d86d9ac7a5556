package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// nameServer is one address of one of a zone's name servers.
type nameServer struct {
	host string // the NS record's target, lower-case FQDN
	addr string // host:port to ask
}

func (ns nameServer) String() string { return ns.host + " (" + ns.addr + ")" }

// zone is a zone's name servers as last discovered, valid until expires (the lowest TTL of the NS records and
// of the servers' addresses).
type zone struct {
	apex    string
	servers []nameServer
	expires time.Time
	next    atomic.Uint32 // where the next query starts, to spread queries over the servers
}

// zoneRef records which zone a name is in, until the NS records that said so expire.
type zoneRef struct {
	apex    string
	expires time.Time
}

// zoneOf returns the name servers of the zone name is in: from the cache, or found through the recursive
// servers by asking for NS records at name, then at each parent up to the top-level domain.
func (a *Authoritative) zoneOf(ctx context.Context, name string) (*zone, *Error) {
	if z := a.cachedZone(name); z != nil {
		return z, nil
	}
	v, err, _ := a.discovering.Do(name, func() (any, error) {
		z, zerr := a.discover(ctx, name)
		if zerr != nil {
			return nil, zerr
		}
		return z, nil
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			cp := *e // shared with the other callers of Do: each wraps its own copy
			return nil, &cp
		}
		return nil, &Error{Kind: KindOther, Err: err}
	}
	return v.(*zone), nil
}

func (a *Authoritative) cachedZone(name string) *zone {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	ref, ok := a.names[name]
	if !ok || !now.Before(ref.expires) {
		return nil
	}
	if z := a.zones[ref.apex]; z != nil && now.Before(z.expires) {
		return z
	}
	return nil
}

func (a *Authoritative) discover(ctx context.Context, name string) (*zone, *Error) {
	var asked []string
	for cand := name; cand != "."; cand = parent(cand) {
		resp, _, qerr := a.rec.query(ctx, cand, dns.TypeNS)
		if qerr != nil {
			qerr.Err = fmt.Errorf("looking for the name servers of %s: %w", cand, qerr.Err)
			return nil, qerr
		}
		asked = append(asked, cand)
		// A CNAME at cand makes the answer hold the target's NS records: only cand's own count.
		hosts, ttl, _ := nsTargets(resp.Answer, cand)
		if len(hosts) == 0 {
			continue
		}
		z, zerr := a.zoneFromHosts(ctx, cand, hosts, ttl, nil)
		if zerr != nil {
			return nil, zerr
		}
		a.remember(name, z.apex, ttl)
		return z, nil
	}
	return nil, &Error{Kind: KindUnreachable, Err: fmt.Errorf("%w: the recursive servers (%s) know no NS records for %s",
		ErrNoAuthoritative, strings.Join(a.rec.servers, ", "), strings.Join(asked, ", "))}
}

// delegated returns the child zone a referral points to and remembers that name is in it.
func (a *Authoritative) delegated(ctx context.Context, name string, ref *referral) (*zone, *Error) {
	z, err := a.zoneFromHosts(ctx, ref.cut, ref.hosts, ref.ttl, ref.glue)
	if err != nil {
		return nil, err
	}
	a.remember(name, z.apex, ref.ttl)
	return z, nil
}

func (a *Authoritative) remember(name, apex string, ttl uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.names[name] = zoneRef{apex: apex, expires: a.now().Add(time.Duration(ttl) * time.Second)}
}

// zoneFromHosts returns the cached zone at apex, or builds it from its NS targets: their addresses come from
// glue when given, else from the recursive servers.
func (a *Authoritative) zoneFromHosts(ctx context.Context, apex string, hosts []string, ttl uint32,
	glue map[string][]netip.Addr) (*zone, *Error) {
	now := a.now()
	a.mu.Lock()
	z := a.zones[apex]
	a.mu.Unlock()
	if z != nil && now.Before(z.expires) {
		return z, nil
	}
	z = &zone{apex: apex}
	var problems []string
	for _, host := range hosts {
		ips := glue[host]
		if len(ips) == 0 {
			var hostTTL uint32
			var err *Error
			ips, hostTTL, err = a.addressesOf(ctx, host)
			if err != nil {
				if ctxDone(ctx) != nil {
					return nil, err
				}
				problems = append(problems, err.Error())
				continue
			}
			ttl = min(ttl, hostTTL)
		}
		for _, ip := range ips {
			if addr := a.nameServerAddr(ip); addr != "" {
				z.servers = append(z.servers, nameServer{host: host, addr: addr})
			} else {
				problems = append(problems, fmt.Sprintf("no route to %s (%s)", host, ip))
			}
		}
	}
	if len(z.servers) == 0 {
		return nil, &Error{Kind: KindUnreachable, Err: fmt.Errorf("%w: no address to ask for the name servers of %s (%s): %s",
			ErrNoAuthoritative, apex, strings.Join(hosts, ", "), strings.Join(problems, "; "))}
	}
	z.expires = now.Add(time.Duration(ttl) * time.Second)
	a.mu.Lock()
	a.zones[apex] = z
	a.mu.Unlock()
	return z, nil
}

// addressesOf returns a name server's IPv4 addresses, or its IPv6 ones when it has none: a network that reaches
// the internet's DNS reaches it over IPv4 at least, and an IPv6 address it cannot route would cost a timeout.
func (a *Authoritative) addressesOf(ctx context.Context, host string) ([]netip.Addr, uint32, *Error) {
	var err error
	for _, fam := range []Family{IPv4, IPv6} {
		var res Result
		if res, err = a.rec.Resolve(ctx, host, fam); err == nil {
			return res.Addrs, uint32(res.TTL / time.Second), nil //nolint:gosec // G115: the TTL was a DNS uint32
		}
		if k := KindOf(err); k != KindNoAddress && k != KindNXDOMAIN {
			break
		}
	}
	var re *Error
	if !errors.As(err, &re) { // a resolver of another kind: never panic on its error
		re = &Error{Kind: KindOf(err), Name: host, Err: err}
	}
	return nil, 0, re
}

// order is the sequence in which to ask z's servers this time: round robin, servers that failed recently last.
func (a *Authoritative) order(z *zone) []nameServer {
	n := len(z.servers)
	start := int(z.next.Add(1)-1) % n
	now := a.now()
	ready := make([]nameServer, 0, n)
	var failing []nameServer
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range n {
		ns := z.servers[(start+i)%n]
		if t, ok := a.failed[ns.addr]; ok && now.Sub(t) < failedServerLast {
			failing = append(failing, ns)
		} else {
			ready = append(ready, ns)
		}
	}
	return append(ready, failing...)
}

func (a *Authoritative) markFailed(ns nameServer, failed bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if failed {
		a.failed[ns.addr] = a.now()
	} else {
		delete(a.failed, ns.addr)
	}
}

// parent is name without its first label: "db.example.com." -> "example.com.", "com." -> ".".
func parent(name string) string {
	if off, end := dns.NextLabel(name, 0); !end {
		return name[off:]
	}
	return "."
}
