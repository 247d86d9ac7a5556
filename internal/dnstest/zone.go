package dnstest

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// SetZone makes the server an authoritative name server for the zone at apex, whose NS records name nameServers
// (host names; give them addresses with SetA on the servers that should know them). From the first SetZone on,
// the server answers only for its zones (REFUSED for other names), with the AA bit set, without recursion:
// the part of a CNAME chain inside the zone, a referral for names below a delegation (SetNS), and the zone's
// SOA with NXDOMAIN and empty answers. Records are set as usual (SetA, SetCNAME, ...); each server has its own,
// so one of a zone's servers can lag behind the others.
func (s *Server) SetZone(apex string, ttl uint32, nameServers ...string) {
	s.SetNS(apex, ttl, nameServers...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones[key(apex)] = ttl
}

// SetNS sets the NS records of name, which answer NS queries. On a server with zones, NS records at a name
// below one of its zones' apex delegate that name to a child zone: queries for it and the names below it get a
// referral to those name servers (AA bit off, the NS records in the authority section) with the addresses the
// server has for them (SetA, SetAAAA) as glue.
func (s *Server) SetNS(name string, ttl uint32, nameServers ...string) {
	hdr := dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ttl}
	rrs := make([]dns.RR, len(nameServers))
	for i, h := range nameServers {
		rrs[i] = &dns.NS{Hdr: hdr, Ns: dns.Fqdn(h)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodeLocked(name)
	n.cname = nil
	n.ns = rrs
}

// zoneOfLocked returns the apex of the most specific zone of the server that holds name, "" if none.
func (s *Server) zoneOfLocked(name string) string {
	if len(s.zones) == 0 {
		return ""
	}
	for cand := name; ; {
		if _, ok := s.zones[cand]; ok {
			return cand
		}
		off, end := dns.NextLabel(cand, 0)
		if end {
			return ""
		}
		cand = cand[off:]
	}
}

// cutLocked returns the delegation closest to apex that holds name: a name strictly below apex, at or above name,
// with NS records. "" if none (or apex is "").
func (s *Server) cutLocked(apex, name string) string {
	if apex == "" {
		return ""
	}
	cut := ""
	for cand := name; cand != apex && dns.IsSubDomain(apex, cand); {
		if n := s.names[cand]; n != nil && len(n.ns) > 0 {
			cut = cand
		}
		off, _ := dns.NextLabel(cand, 0)
		cand = cand[off:]
	}
	return cut
}

// referLocked answers with a referral to the child zone at cut.
func (s *Server) referLocked(resp *dns.Msg, cut string) {
	resp.Authoritative = false
	for _, rr := range s.names[cut].ns {
		resp.Ns = append(resp.Ns, dns.Copy(rr))
		if glue := s.names[key(rr.(*dns.NS).Ns)]; glue != nil {
			resp.Extra = append(resp.Extra, copyRRs(glue.a)...)
			resp.Extra = append(resp.Extra, copyRRs(glue.aaaa)...)
		}
	}
}

// soaLocked is the authority section of a negative answer from zone apex; nil when apex is "".
func (s *Server) soaLocked(apex string) []dns.RR {
	ttl, ok := s.zones[apex]
	if !ok {
		return nil
	}
	mname := "ns." + apex
	if n := s.names[apex]; n != nil && len(n.ns) > 0 {
		mname = n.ns[0].(*dns.NS).Ns
	}
	return []dns.RR{&dns.SOA{
		Hdr:    dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:     mname,
		Mbox:   "hostmaster." + apex,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: ttl,
	}}
}

// hasDescendantLocked reports whether some name below name has records, which makes name exist.
func (s *Server) hasDescendantLocked(name string) bool {
	for k := range s.names {
		if strings.HasSuffix(k, "."+name) {
			return true
		}
	}
	return false
}

// AddrMap stands in for the internet's routing in tests of authoritative DNS. Zone data publishes made-up
// addresses for the name servers (use 192.0.2.0/24, TEST-NET-1, which is never routed), and AddrMap says which
// test server listens for each. Its Lookup method is what resolver.AuthoritativeConfig.NameServerAddr wants.
// The zero value is empty and ready; safe for concurrent use.
type AddrMap struct {
	mu sync.Mutex
	m  map[netip.Addr]string
}

// Set routes queries for ip to s.
func (m *AddrMap) Set(ip netip.Addr, s *Server) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[netip.Addr]string{}
	}
	m.m[ip] = s.Addr()
}

// Lookup returns the host:port of the server for ip, or "" when there is none.
func (m *AddrMap) Lookup(ip netip.Addr) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[ip.Unmap()]
}
