package dnstest

import (
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// serveDNS answers one query: the fault in force, else the zone data.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	tcp := w.LocalAddr().Network() == "tcp"
	s.queries.Add(1)
	if tcp {
		s.queriesTCP.Add(1)
	} else {
		s.queriesUDP.Add(1)
	}

	resp := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		resp.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(resp)
		return
	}
	q := req.Question[0]

	s.mu.Lock()
	fault := s.fault
	if fault == FaultNone {
		fault = s.nameFaults[key(q.Name)]
	}
	authoritative := len(s.zones) > 0
	if fault == FaultNone || fault == FaultNotAuthoritative || (fault == FaultTruncate && tcp) {
		s.answerLocked(resp, req)
	}
	observe := s.observer
	s.mu.Unlock()

	switch fault {
	case FaultDrop:
		if observe != nil {
			observe(Answer{At: time.Now(), Name: key(q.Name), Qtype: q.Qtype, TCP: tcp, Dropped: true})
		}
		return
	case FaultServFail:
		resp.SetRcode(req, dns.RcodeServerFailure)
	case FaultRefused:
		resp.SetRcode(req, dns.RcodeRefused)
	case FaultNXDomain:
		resp.SetRcode(req, dns.RcodeNameError)
	case FaultNoAnswer:
		resp.SetReply(req)
	case FaultTruncate:
		if !tcp {
			resp.SetReply(req)
			resp.Truncated = true
		}
	case FaultNotAuthoritative:
		resp.Authoritative = false
	}
	resp.RecursionAvailable = !authoritative

	size := dns.MaxMsgSize
	if !tcp {
		size = dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
	}
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(opt.UDPSize(), false)
	}
	resp.Truncate(size) // sets TC when the answer does not fit, as real servers do
	if observe != nil {
		observe(observed(resp, q, tcp))
	}
	_ = w.WriteMsg(resp)
}

func observed(resp *dns.Msg, q dns.Question, tcp bool) Answer {
	a := Answer{At: time.Now(), Name: key(q.Name), Qtype: q.Qtype, TCP: tcp, Rcode: resp.Rcode, Truncated: resp.Truncated}
	for _, rr := range resp.Answer {
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		default:
			continue
		}
		if addr, ok := netip.AddrFromSlice(ip); ok {
			a.Addrs = append(a.Addrs, addr.Unmap())
		}
	}
	return a
}

// answerLocked fills resp from the zone data. With no zones it answers like a recursive resolver; with zones
// like their authoritative server: the AA bit, a referral for names below a delegation, only the part of a
// CNAME chain inside the zone, and the zone's SOA with a negative answer. s.mu must be held.
func (s *Server) answerLocked(resp, req *dns.Msg) {
	resp.SetReply(req)
	q := req.Question[0]
	name := key(q.Name)
	authoritative := len(s.zones) > 0
	apex := s.zoneOfLocked(name)
	if authoritative && apex == "" {
		resp.Rcode = dns.RcodeRefused // not a zone of ours
		return
	}
	resp.Authoritative = authoritative
	if rrs, ok := s.raw[rawKey{name, q.Qtype}]; ok {
		resp.Answer = copyRRs(rrs)
		return
	}
	seen := map[string]bool{name: true}
	for range maxChase {
		if cut := s.cutLocked(apex, name); cut != "" {
			if len(resp.Answer) == 0 {
				s.referLocked(resp, cut)
			}
			return // the rest of the chain is the child zone's to answer
		}
		n := s.names[name]
		switch {
		case n == nil && authoritative && s.hasDescendantLocked(name):
			resp.Ns = s.soaLocked(apex) // a name with no records but names below it exists: NODATA
			return
		case n == nil:
			resp.Rcode = dns.RcodeNameError // the chain (if any) stays in the answer, as recursive servers do
			resp.Ns = s.soaLocked(apex)
			return
		case (q.Qtype == dns.TypeA && n.badA) || (q.Qtype == dns.TypeAAAA && n.badAAAA):
			resp.Answer = nil
			resp.Rcode = dns.RcodeServerFailure
			return
		case n.cname != nil && q.Qtype != dns.TypeCNAME:
			resp.Answer = append(resp.Answer, dns.Copy(n.cname))
			next := key(n.cname.Target)
			if s.noFollow || seen[next] || (authoritative && !dns.IsSubDomain(apex, next)) {
				return // a loop ends where it repeats, so the client sees it; other zones are not ours to answer
			}
			seen[next] = true
			name = next
			continue
		}
		rrs := n.records(q.Qtype)
		if len(rrs) == 0 {
			resp.Ns = s.soaLocked(apex)
		}
		resp.Answer = append(resp.Answer, rrs...)
		return
	}
}

// records returns copies of the node's records of type qtype, taking the next turn of a flapping A answer.
// The server's mutex must be held.
func (n *node) records(qtype uint16) []dns.RR {
	switch qtype {
	case dns.TypeA:
		if len(n.flapA) > 0 {
			rrs := n.flapA[n.flapNext%len(n.flapA)]
			n.flapNext++
			return copyRRs(rrs)
		}
		return copyRRs(n.a)
	case dns.TypeAAAA:
		return copyRRs(n.aaaa)
	case dns.TypeNS:
		return copyRRs(n.ns)
	case dns.TypeCNAME:
		if n.cname != nil {
			return []dns.RR{dns.Copy(n.cname)}
		}
	}
	return nil
}

func copyRRs(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}
