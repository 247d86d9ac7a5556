package resolver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// AuthoritativeConfig configures an Authoritative resolver beyond what it takes from its recursive one.
type AuthoritativeConfig struct {
	// NameServerAddr turns a name server's address into the host:port to ask; "" means that address cannot be
	// reached. nil asks port 53 of the address, as on the internet. Tests set it: their servers listen on
	// 127.0.0.1 at random ports while the zone data publishes made-up addresses for them (dnstest.AddrMap).
	NameServerAddr func(netip.Addr) string
}

const (
	// maxReferrals bounds the delegations one resolution follows from a parent zone's servers down to a child's.
	maxReferrals = 8
	// failedServerLast is how long a name server that failed is asked only after the zone's other servers, so a
	// dead server costs one timeout, not one per poll.
	failedServerLast = 30 * time.Second
)

// Authoritative resolves names by asking the name servers of each name's zone directly, with recursion off, so
// it sees a change as soon as the zone publishes it instead of when a resolver's cached copy expires. The
// recursive resolver it is built on finds the zones' name servers (NS records, walking up the labels) and their
// addresses; those are cached for their TTL. Queries are spread over a zone's servers, starting with a
// different one each time; a server that times out, answers SERVFAIL or REFUSED, answers without authority (AA
// bit off) or refers elsewhere than down to a child zone is skipped for the next. An error that wraps
// ErrNoAuthoritative means no name server could answer: recursive mode may still work (see Fallback).
// Safe for concurrent use.
type Authoritative struct {
	rec *Resolver
	transport
	nameServerAddr func(netip.Addr) string
	now            func() time.Time

	discovering singleflight.Group // one NS discovery per name at a time

	mu     sync.Mutex
	zones  map[string]*zone     // by apex
	names  map[string]zoneRef   // which zone a name is in
	failed map[string]time.Time // server host:port -> when it last failed
}

// NewAuthoritative builds an authoritative resolver that finds name servers through rec and asks them with
// rec's timeout, transport settings and OnQuery.
func NewAuthoritative(rec *Resolver, cfg AuthoritativeConfig) *Authoritative {
	a := &Authoritative{
		rec:            rec,
		transport:      newTransport(ModeAuthoritative, rec.timeout, rec.forceTCP, rec.onQuery),
		nameServerAddr: cfg.NameServerAddr,
		now:            time.Now,
		zones:          map[string]*zone{},
		names:          map[string]zoneRef{},
		failed:         map[string]time.Time{},
	}
	if a.nameServerAddr == nil {
		a.nameServerAddr = func(ip netip.Addr) string { return net.JoinHostPort(ip.String(), "53") }
	}
	return a
}

// Recursive returns the resolver this one finds name servers with.
func (a *Authoritative) Recursive() *Resolver { return a.rec }

// Resolve returns the addresses of family fam that name resolves to, as the name servers of its zone (and of
// the zones its CNAMEs lead into) publish them now. Result.Server is the name server that gave the final answer.
// Every error is an *Error; errors.Is(err, ErrNoAuthoritative) tells when recursive mode may work instead.
func (a *Authoritative) Resolve(ctx context.Context, name string, fam Family) (Result, error) {
	c, cerr := newChase(name, fam)
	if cerr != nil {
		return Result{}, cerr
	}
	referrals := 0
	for {
		resp, ns, z, qerr := a.askZoneOf(ctx, c, &referrals)
		if qerr != nil {
			return Result{}, qerr
		}
		res, done, aerr := c.readAuthoritative(resp, ns.addr, z.apex)
		if aerr != nil {
			return Result{}, aerr
		}
		if done {
			return res, nil
		}
	}
}

// askZoneOf asks the servers of the zone that holds the chase's current name, following referrals from a
// parent zone's servers down to the child zone's, and returns the authoritative answer, who gave it and the zone
// it speaks for. referrals counts the delegations followed over the whole resolution, so a referral loop ends.
func (a *Authoritative) askZoneOf(ctx context.Context, c *chase, referrals *int) (*dns.Msg, nameServer, *zone, *Error) {
	z, qerr := a.zoneOf(ctx, c.current())
	if qerr != nil {
		return nil, nameServer{}, nil, c.wrap(qerr)
	}
	resp, ns, ref, qerr := a.ask(ctx, z, c.current(), c.qtype)
	for qerr == nil && ref != nil {
		if *referrals++; *referrals > maxReferrals {
			return nil, ns, nil, c.fail(KindUnreachable, ns.addr, fmt.Errorf("%w: more than %d delegations followed for %s; last from %s",
				ErrNoAuthoritative, maxReferrals, c.current(), ns))
		}
		if z, qerr = a.delegated(ctx, c.current(), ref); qerr == nil {
			resp, ns, ref, qerr = a.ask(ctx, z, c.current(), c.qtype)
		}
	}
	if qerr != nil {
		return nil, ns, nil, c.wrap(qerr)
	}
	return resp, ns, z, nil
}

// readAuthoritative takes an authoritative answer from server, a name server of zone apex, into the chase. It is
// done with the result or an error when the answer ends the chase, and not done when the current name must be
// asked for again: a CNAME led into another zone, or the server did not follow a CNAME inside its own zone.
func (c *chase) readAuthoritative(resp *dns.Msg, server, apex string) (_ Result, done bool, _ *Error) {
	// A name server speaks only for its own zone: records of other zones in its answer are ignored.
	inZone := func(owner string) bool { return dns.IsSubDomain(apex, owner) }
	advanced, ferr := c.follow(resp.Answer, server, inZone)
	switch {
	case ferr != nil:
		return Result{}, true, ferr
	case !inZone(c.current()):
		return Result{}, false, nil // a CNAME into another zone: ask that zone's servers
	case resp.Rcode == dns.RcodeNameError:
		return Result{}, true, c.nxdomain(server)
	}
	if addrs := c.addrs(resp.Answer); len(addrs) > 0 {
		return c.result(addrs, server, ModeAuthoritative), true, nil
	}
	if !advanced {
		return Result{}, true, c.noAddress(server)
	}
	return Result{}, false, nil
}

// referral is a parent zone's answer that a child zone holds the name: the child's name servers, and the
// addresses the parent gave for those of them inside the parent zone (glue).
type referral struct {
	cut   string
	hosts []string
	ttl   uint32
	glue  map[string][]netip.Addr
}

// ask queries z's servers for (name, qtype), each at most once, and returns the first authoritative NOERROR or
// NXDOMAIN answer, or the first referral down to a child zone of z.
func (a *Authoritative) ask(ctx context.Context, z *zone, name string, qtype uint16) (*dns.Msg, nameServer, *referral, *Error) {
	var fails []attempt
	for _, ns := range a.order(z) {
		if err := ctxDone(ctx); err != nil {
			return nil, ns, nil, ctxError(err, ns.addr)
		}
		resp, err := a.exchange(ctx, ns.addr, ns.host, name, qtype)
		if err != nil {
			if cerr := ctxDone(ctx); cerr != nil {
				return nil, ns, nil, ctxError(cerr, ns.addr)
			}
		}
		f, ok := a.failure(ns.String(), resp, err)
		if ok {
			if resp.Authoritative {
				a.markFailed(ns, false)
				return resp, ns, nil, nil
			}
			ref, lame := referralIn(resp, z.apex, name)
			if ref != nil {
				a.markFailed(ns, false)
				return nil, ns, ref, nil
			}
			f = attempt{ns.addr, KindOther, fmt.Sprintf("%s answered without authority for %s (%s)", ns, z.apex, lame)}
		}
		a.markFailed(ns, true)
		fails = append(fails, f)
	}
	descs := make([]string, len(fails))
	for i, f := range fails {
		descs[i] = f.desc
	}
	return nil, nameServer{}, nil, &Error{Kind: KindUnreachable, Err: fmt.Errorf("%w for zone %s: %s",
		ErrNoAuthoritative, z.apex, strings.Join(descs, ", "))}
}

// referralIn reads a non-authoritative answer: a referral from zone apex down to a child zone that holds name,
// or (nil, why it is not one).
func referralIn(resp *dns.Msg, apex, name string) (*referral, string) {
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) > 0 {
		return nil, "AA bit off"
	}
	hosts, ttl, cut := nsTargets(resp.Ns, "")
	switch {
	case len(hosts) == 0:
		return nil, "AA bit off, no referral"
	case cut == apex || !dns.IsSubDomain(apex, cut) || !dns.IsSubDomain(cut, name):
		return nil, "lame referral to " + cut
	}
	ref := &referral{cut: cut, hosts: hosts, ttl: ttl, glue: map[string][]netip.Addr{}}
	for _, rr := range resp.Extra {
		host := canonical(rr.Header().Name)
		if !dns.IsSubDomain(apex, host) { // the parent speaks only for names in its own zone
			continue
		}
		if ip, ok := addrOf(rr); ok {
			ref.glue[host] = append(ref.glue[host], ip)
		}
	}
	return ref, ""
}

// nsTargets returns the targets of the NS records in rrs owned by owner ("" = by the first NS record's owner),
// their lowest TTL, and the owner.
func nsTargets(rrs []dns.RR, owner string) (hosts []string, ttl uint32, _ string) {
	ttl = ^uint32(0)
	for _, rr := range rrs {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		if owner == "" {
			owner = canonical(ns.Hdr.Name)
		}
		if !sameName(ns.Hdr.Name, owner) {
			continue
		}
		hosts = append(hosts, canonical(ns.Ns))
		ttl = min(ttl, rrTTL(ns))
	}
	return hosts, ttl, owner
}

func addrOf(rr dns.RR) (netip.Addr, bool) {
	switch v := rr.(type) {
	case *dns.A:
		return netip.AddrFromSlice(v.A.To4())
	case *dns.AAAA:
		return netip.AddrFromSlice(v.AAAA.To16())
	}
	return netip.Addr{}, false
}
