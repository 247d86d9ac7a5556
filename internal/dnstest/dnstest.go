// Package dnstest runs a real DNS server on loopback (UDP and TCP on one port) whose zone data and failure
// modes can be changed while it runs. Tests use it to exercise the resolver over real sockets; `ipsync demo`
// uses it as the database's DNS. By default it answers like a recursive resolver: the answer section holds the
// whole CNAME chain followed by the final A/AAAA records. A server given zones (SetZone) answers like those
// zones' authoritative name server instead (zone.go).
package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Fault makes the server misbehave in a way real resolvers do.
type Fault int

// Faults, from harmless to hostile.
const (
	FaultNone             Fault = iota // answer normally
	FaultDrop                          // never answer: the client times out
	FaultServFail                      // rcode SERVFAIL, empty answer
	FaultRefused                       // rcode REFUSED, empty answer
	FaultNXDomain                      // rcode NXDOMAIN, empty answer
	FaultNoAnswer                      // rcode NOERROR, empty answer
	FaultTruncate                      // over UDP: TC bit and an empty answer; over TCP: the normal answer
	FaultNotAuthoritative              // the normal answer with the AA bit off, as from a cache or a lame name server
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultDrop:
		return "drop"
	case FaultServFail:
		return "servfail"
	case FaultRefused:
		return "refused"
	case FaultNXDomain:
		return "nxdomain"
	case FaultNoAnswer:
		return "noanswer"
	case FaultTruncate:
		return "truncate"
	case FaultNotAuthoritative:
		return "notauthoritative"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// maxChase bounds how many CNAMEs one answer carries, so looping or absurd data cannot grow an answer forever.
// It is well above the resolver's own limit (8 names) so the resolver, not the server, decides.
const maxChase = 32

// node is everything stored for one name. A CNAME excludes address records, as in real DNS.
type node struct {
	a, aaaa []dns.RR
	ns      []dns.RR // SetNS and SetZone
	cname   *dns.CNAME
	// A Set call got an address it could not use: queries of that type answer SERVFAIL.
	badA, badAAAA bool
	// flapA: A queries answer these record sets in turn (SetAFlapping); flapNext is the next one.
	flapA    [][]dns.RR
	flapNext int
}

type rawKey struct {
	name  string
	qtype uint16
}

// Server is a DNS server on 127.0.0.1. All methods are safe for concurrent use, also while queries are served.
type Server struct {
	addr     string
	udp, tcp *dns.Server

	mu         sync.Mutex
	names      map[string]*node  // key: lower-case FQDN
	zones      map[string]uint32 // apex -> TTL of its SOA; empty: answer like a recursive resolver
	raw        map[rawKey][]dns.RR
	fault      Fault
	nameFaults map[string]Fault
	noFollow   bool
	observer   func(Answer)

	queries, queriesUDP, queriesTCP atomic.Int64
	closeOnce                       sync.Once
	closeErr                        error
}

// New starts a server on 127.0.0.1 with UDP and TCP on the same, free port.
func New() (*Server, error) {
	s := &Server{
		names:      map[string]*node{},
		zones:      map[string]uint32{},
		raw:        map[rawKey][]dns.RR{},
		nameFaults: map[string]Fault{},
	}
	pc, l, err := listenPair()
	if err != nil {
		return nil, err
	}
	s.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serveDNS)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: l, Handler: h}
	// Wait until both servers run: Shutdown on a server that has not started yet fails and would leak it.
	if err := start(s.udp); err != nil {
		_ = pc.Close()
		_ = l.Close()
		return nil, err
	}
	if err := start(s.tcp); err != nil {
		_ = s.udp.Shutdown()
		_ = l.Close()
		return nil, err
	}
	return s, nil
}

// listenPair binds UDP on a free port, then TCP on the same port. Another process may hold that TCP port,
// so it tries a few UDP ports.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 10 {
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: listen udp on 127.0.0.1: %w", err)
		}
		l, err := lc.Listen(context.Background(), "tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		lastErr = err
		_ = pc.Close()
	}
	return nil, nil, fmt.Errorf("dnstest: no port free for both udp and tcp on 127.0.0.1: %w", lastErr)
}

func start(srv *dns.Server) error {
	started := make(chan struct{})
	failed := make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() {
		if err := srv.ActivateAndServe(); err != nil {
			failed <- err
		}
	}()
	select {
	case <-started:
		return nil
	case err := <-failed:
		return fmt.Errorf("dnstest: start server: %w", err)
	}
}

// Addr is the server's "127.0.0.1:PORT", the same for UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// Close stops both listeners. Queries in flight get no answer. Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var errs []error
		for _, srv := range []*dns.Server{s.udp, s.tcp} {
			if err := srv.ShutdownContext(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("dnstest: close %s: %w", s.addr, err)
		}
	})
	return s.closeErr
}

// key is the map key for a name: names match case-insensitively, with or without the trailing dot.
func key(name string) string { return strings.ToLower(dns.Fqdn(name)) }

func (s *Server) nodeLocked(name string) *node {
	k := key(name)
	n := s.names[k]
	if n == nil {
		n = &node{}
		s.names[k] = n
	}
	return n
}

// SetA replaces the name's A records and removes a CNAME it had. With no ips the name exists but has no A
// records (NOERROR, empty answer). An ip that is not an IPv4 address makes A queries for the name answer
// SERVFAIL, so a typo shows up in the test instead of being skipped silently.
func (s *Server) SetA(name string, ttl uint32, ips ...string) {
	s.setAddrs(name, ttl, dns.TypeA, ips)
}

// SetAAAA is SetA for IPv6 (AAAA records).
func (s *Server) SetAAAA(name string, ttl uint32, ips ...string) {
	s.setAddrs(name, ttl, dns.TypeAAAA, ips)
}

func (s *Server) setAddrs(name string, ttl uint32, qtype uint16, ips []string) {
	hdr := dns.RR_Header{Name: dns.Fqdn(name), Rrtype: qtype, Class: dns.ClassINET, Ttl: ttl}
	rrs := make([]dns.RR, 0, len(ips))
	bad := false
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		switch {
		case err != nil || a.Zone() != "" || (qtype == dns.TypeA) != a.Is4():
			bad = true
		case qtype == dns.TypeA:
			rrs = append(rrs, &dns.A{Hdr: hdr, A: a.AsSlice()})
		default:
			rrs = append(rrs, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodeLocked(name)
	n.cname = nil
	if qtype == dns.TypeA {
		n.a, n.badA, n.flapA = rrs, bad, nil
	} else {
		n.aaaa, n.badAAAA = rrs, bad
	}
}

// SetCNAME makes name an alias of target, replacing all other records of name.
func (s *Server) SetCNAME(name string, ttl uint32, target string) {
	rr := &dns.CNAME{
		Hdr:    dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
		Target: dns.Fqdn(target),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[key(name)] = &node{cname: rr}
}

// SetAFlapping makes A queries for name answer each of sets in turn, starting again after the last one: what
// clients see while resolver caches disagree after a failover (old, new, old, ...). It replaces the name's A
// records and CNAME; SetA ends it. Every answer the server builds counts as a turn, so a UDP answer truncated for
// size and the TCP retry that follows are two turns. An address that is not IPv4 makes A queries answer SERVFAIL.
func (s *Server) SetAFlapping(name string, ttl uint32, sets ...[]string) {
	hdr := dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}
	flap := make([][]dns.RR, 0, len(sets))
	bad := false
	for _, ips := range sets {
		rrs := make([]dns.RR, 0, len(ips))
		for _, ip := range ips {
			a, err := netip.ParseAddr(ip)
			if err != nil || !a.Is4() {
				bad = true
				continue
			}
			rrs = append(rrs, &dns.A{Hdr: hdr, A: a.AsSlice()})
		}
		flap = append(flap, rrs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodeLocked(name)
	n.cname, n.a, n.badA, n.flapA, n.flapNext = nil, nil, bad, flap, 0
}

// Answer is one query as the server handled it, reported to the function given to SetObserver.
type Answer struct {
	At        time.Time    // when the answer was decided, before it was sent
	Name      string       // the question's name, lower-case FQDN
	Qtype     uint16       // the question's type
	TCP       bool         // asked over TCP
	Dropped   bool         // FaultDrop: no answer was sent
	Rcode     int          // the answer's rcode
	Truncated bool         // the TC bit was set
	Addrs     []netip.Addr // the A and AAAA records of the answer section, in order
}

// SetObserver makes the server call fn with every query it handles, before the answer is sent, so a test can keep
// a history of what DNS said and when. fn runs on the server's goroutines, possibly concurrently, and must not
// call the Server. nil stops it.
func (s *Server) SetObserver(fn func(Answer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observer = fn
}

// Remove deletes every record of name (it answers NXDOMAIN again), including answers set with SetRaw.
func (s *Server) Remove(name string) {
	k := key(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.names, k)
	for rk := range s.raw {
		if rk.name == k {
			delete(s.raw, rk)
		}
	}
}

// SetRaw makes queries for (name, qtype) answer NOERROR with exactly these records, given in zone file
// syntax (e.g. "db.example.com. 5 IN A 10.0.0.1"), instead of what the zone data says. It serves answers
// a well-behaved server would not give: records of the wrong type or owner, a chain in odd order.
// No records means NOERROR with an empty answer. Remove(name) clears it.
func (s *Server) SetRaw(name string, qtype uint16, records ...string) error {
	rrs := make([]dns.RR, 0, len(records))
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			return fmt.Errorf("dnstest: record %q: %w", r, err)
		}
		if rr == nil {
			return fmt.Errorf("dnstest: record %q is empty", r)
		}
		rrs = append(rrs, rr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw[rawKey{key(name), qtype}] = rrs
	return nil
}

// SetFault applies f to every query until changed; FaultNone clears it. It wins over SetNameFault.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// SetNameFault applies f to queries whose question is name; FaultNone clears it.
func (s *Server) SetNameFault(name string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == FaultNone {
		delete(s.nameFaults, key(name))
		return
	}
	s.nameFaults[key(name)] = f
}

// SetFollowCNAME chooses how CNAMEs are answered. true (the default) answers like a recursive resolver: the
// whole chain plus the final records. false answers like an authoritative server for that name only: just the
// CNAME, so the client has to query the target itself.
func (s *Server) SetFollowCNAME(follow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noFollow = !follow
}

// Queries is the number of queries received over both transports, answered or not.
func (s *Server) Queries() int64 { return s.queries.Load() }

// QueriesUDP is the number of queries received over UDP.
func (s *Server) QueriesUDP() int64 { return s.queriesUDP.Load() }

// QueriesTCP is the number of queries received over TCP.
func (s *Server) QueriesTCP() int64 { return s.queriesTCP.Load() }
