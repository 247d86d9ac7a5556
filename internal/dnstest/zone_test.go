package dnstest_test

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/ipsync/ipsync/internal/dnstest"
)

func TestAuthoritativeAnswers(t *testing.T) {
	s := dnstest.Start(t)
	s.SetZone("example.", 60, "ns.example.")
	s.SetA("ns.example.", 60, "192.0.2.1")
	s.SetA("db.example.", 5, "10.0.0.1")
	s.SetCNAME("alias.example.", 30, "db.example.")
	s.SetCNAME("out.example.", 30, "db.other.")
	s.SetA("deep.empty.example.", 5, "10.0.0.2")
	s.SetNS("child.example.", 300, "ns1.child.example.", "ns.elsewhere.")
	s.SetA("ns1.child.example.", 300, "192.0.2.10")
	s.SetCNAME("into-child.example.", 30, "x.child.example.")

	tests := []struct {
		name                   string
		qtype                  uint16
		rcode                  int
		aa                     bool
		answer, authority, add string
	}{
		{name: "db.example.", qtype: dns.TypeA, aa: true, answer: "db.example. 5 IN A 10.0.0.1"},
		{name: "example.", qtype: dns.TypeNS, aa: true, answer: "example. 60 IN NS ns.example."},
		{name: "alias.example.", qtype: dns.TypeA, aa: true,
			answer: "alias.example. 30 IN CNAME db.example.\ndb.example. 5 IN A 10.0.0.1"},
		{name: "out.example.", qtype: dns.TypeA, aa: true, answer: "out.example. 30 IN CNAME db.other."},
		{name: "missing.example.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			authority: "example. 60 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60"},
		{name: "db.example.", qtype: dns.TypeAAAA, aa: true,
			authority: "example. 60 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60"},
		{name: "empty.example.", qtype: dns.TypeA, aa: true,
			authority: "example. 60 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 60"},
		{name: "a.b.child.example.", qtype: dns.TypeA,
			authority: "child.example. 300 IN NS ns1.child.example.\nchild.example. 300 IN NS ns.elsewhere.",
			add:       "ns1.child.example. 300 IN A 192.0.2.10"},
		{name: "into-child.example.", qtype: dns.TypeA, aa: true, answer: "into-child.example. 30 IN CNAME x.child.example."},
		{name: "db.other.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(network+"/"+tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
				resp := mustAsk(t, s, network, tt.name, tt.qtype)
				if resp.Rcode != tt.rcode || resp.Authoritative != tt.aa || resp.RecursionAvailable {
					t.Errorf("rcode %s, AA %v, RA %v; want %s, AA %v, RA false", dns.RcodeToString[resp.Rcode],
						resp.Authoritative, resp.RecursionAvailable, dns.RcodeToString[tt.rcode], tt.aa)
				}
				for _, sec := range []struct {
					name      string
					got, want string
				}{{"answer", section(resp.Answer), tt.answer}, {"authority", section(resp.Ns), tt.authority},
					{"additional", section(resp.Extra), tt.add}} {
					if sec.got != sec.want {
						t.Errorf("%s:\n%s\nwant:\n%s", sec.name, sec.got, sec.want)
					}
				}
			})
		}
	}
}

func TestAuthoritativeFaultNotAuthoritative(t *testing.T) {
	s := dnstest.Start(t)
	s.SetZone("example.", 60, "ns.example.")
	s.SetA("db.example.", 5, "10.0.0.1")
	s.SetFault(dnstest.FaultNotAuthoritative)
	resp := mustAsk(t, s, "udp", "db.example.", dns.TypeA)
	if resp.Authoritative || answer(resp) != "db.example. 5 IN A 10.0.0.1" {
		t.Errorf("AA %v, answer %q; want the answer without the AA bit", resp.Authoritative, answer(resp))
	}
}

func TestRecursiveServerAnswersNS(t *testing.T) {
	s := dnstest.Start(t)
	s.SetNS("example.", 60, "ns.example.")
	resp := mustAsk(t, s, "udp", "example.", dns.TypeNS)
	if resp.Authoritative || !resp.RecursionAvailable || answer(resp) != "example. 60 IN NS ns.example." {
		t.Errorf("AA %v, RA %v, answer %q; want a recursive answer with the NS record", resp.Authoritative,
			resp.RecursionAvailable, answer(resp))
	}
}

func TestDelegation(t *testing.T) {
	d, err := dnstest.NewDelegation("Example.", "db.example", 2, 300)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	d.SetA("orders.db.example.", 5, "10.0.0.1")

	if resp := mustAsk(t, d.Recursive, "udp", "db.example.", dns.TypeNS); len(resp.Answer) != 2 {
		t.Errorf("recursive server: NS db.example. = %q, want the two child name servers", answer(resp))
	}
	if resp := mustAsk(t, d.Recursive, "udp", "ns2.db.example.", dns.TypeA); answer(resp) != "ns2.db.example. 300 IN A 192.0.2.11" {
		t.Errorf("recursive server: A ns2.db.example. = %q", answer(resp))
	}
	ref := mustAsk(t, d.Parent, "udp", "orders.db.example.", dns.TypeA)
	if ref.Authoritative || len(ref.Ns) != 2 || len(ref.Extra) != 2 {
		t.Errorf("parent server: AA %v, authority %q, additional %q; want a referral with glue",
			ref.Authoritative, section(ref.Ns), section(ref.Extra))
	}
	for i, c := range d.Children {
		resp := mustAsk(t, c, "tcp", "orders.db.example.", dns.TypeA)
		if !resp.Authoritative || answer(resp) != "orders.db.example. 5 IN A 10.0.0.1" {
			t.Errorf("child server %d: AA %v, answer %q", i, resp.Authoritative, answer(resp))
		}
		if got := d.Addrs.Lookup(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})); got != c.Addr() {
			t.Errorf("Addrs.Lookup(ns%d) = %q, want %q", i+1, got, c.Addr())
		}
	}
	if got := d.Addrs.Lookup(netip.MustParseAddr("192.0.2.200")); got != "" {
		t.Errorf("Addrs.Lookup of an unknown address = %q, want \"\"", got)
	}
}
