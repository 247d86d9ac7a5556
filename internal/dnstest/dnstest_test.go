package dnstest_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/testutil"
)

// ask sends one query without EDNS0 (so UDP answers are limited to 512 bytes).
func ask(t *testing.T, s *dnstest.Server, network, name string, qtype uint16) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	resp, _, err := c.Exchange(m, s.Addr())
	return resp, err
}

func mustAsk(t *testing.T, s *dnstest.Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	resp, err := ask(t, s, network, name, qtype)
	if err != nil {
		t.Fatalf("%s query %s: %v", network, name, err)
	}
	return resp
}

// answer renders the answer section one record a line, tabs as spaces, for comparisons.
func answer(m *dns.Msg) string { return section(m.Answer) }

// section renders records one a line, tabs as spaces, for comparisons.
func section(rrs []dns.RR) string {
	lines := make([]string, len(rrs))
	for i, rr := range rrs {
		lines[i] = strings.Join(strings.Fields(rr.String()), " ")
	}
	return strings.Join(lines, "\n")
}

func TestAnswers(t *testing.T) {
	s := dnstest.Start(t)
	s.SetCNAME("Cluster.Example.com", 300, "proxy.example.com.")
	s.SetCNAME("proxy.example.com", 5, "db.example.com")
	s.SetA("db.example.com", 60, "10.0.0.1", "10.0.0.2")
	s.SetAAAA("db.example.com", 30, "2001:db8::1")
	s.SetA("empty.example.com", 60)
	s.SetCNAME("dangling.example.com", 5, "gone.example.com")
	s.SetCNAME("loop1.example.com", 5, "loop2.example.com")
	s.SetCNAME("loop2.example.com", 5, "LOOP1.example.com")
	s.SetA("typo.example.com", 5, "10.0.0.300")

	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  string
	}{
		{"cluster.example.com", dns.TypeA, dns.RcodeSuccess, "" +
			"Cluster.Example.com. 300 IN CNAME proxy.example.com.\n" +
			"proxy.example.com. 5 IN CNAME db.example.com.\n" +
			"db.example.com. 60 IN A 10.0.0.1\n" +
			"db.example.com. 60 IN A 10.0.0.2"},
		{"CLUSTER.example.COM.", dns.TypeAAAA, dns.RcodeSuccess, "" +
			"Cluster.Example.com. 300 IN CNAME proxy.example.com.\n" +
			"proxy.example.com. 5 IN CNAME db.example.com.\n" +
			"db.example.com. 30 IN AAAA 2001:db8::1"},
		{"cluster.example.com", dns.TypeCNAME, dns.RcodeSuccess, "Cluster.Example.com. 300 IN CNAME proxy.example.com."},
		{"db.example.com", dns.TypeMX, dns.RcodeSuccess, ""},
		{"empty.example.com", dns.TypeA, dns.RcodeSuccess, ""},
		{"missing.example.com", dns.TypeA, dns.RcodeNameError, ""},
		{"dangling.example.com", dns.TypeA, dns.RcodeNameError, "dangling.example.com. 5 IN CNAME gone.example.com."},
		{"loop1.example.com", dns.TypeA, dns.RcodeSuccess, "" +
			"loop1.example.com. 5 IN CNAME loop2.example.com.\n" +
			"loop2.example.com. 5 IN CNAME LOOP1.example.com."},
		{"typo.example.com", dns.TypeA, dns.RcodeServerFailure, ""},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name+"/"+dns.TypeToString[tt.qtype], func(t *testing.T) {
				resp := mustAsk(t, s, network, tt.name, tt.qtype)
				if resp.Rcode != tt.rcode {
					t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
				}
				if got := answer(resp); got != tt.want {
					t.Errorf("answer:\n%s\nwant:\n%s", got, tt.want)
				}
				if !resp.RecursionAvailable {
					t.Error("RA not set; the server poses as a recursive resolver")
				}
			})
		}
	}
}

func TestZoneChanges(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("db.example.com", 5, "10.0.0.1")
	s.SetCNAME("db.example.com", 5, "other.example.com") // replaces the A records
	s.SetA("other.example.com", 5, "10.0.0.2")
	if got, want := answer(mustAsk(t, s, "udp", "db.example.com", dns.TypeA)),
		"db.example.com. 5 IN CNAME other.example.com.\nother.example.com. 5 IN A 10.0.0.2"; got != want {
		t.Errorf("after SetCNAME:\n%s\nwant:\n%s", got, want)
	}
	s.SetA("DB.example.com", 7, "10.0.0.3") // replaces the CNAME
	if got, want := answer(mustAsk(t, s, "udp", "db.example.com", dns.TypeA)), "DB.example.com. 7 IN A 10.0.0.3"; got != want {
		t.Errorf("after SetA:\n%s\nwant:\n%s", got, want)
	}
	s.Remove("db.example.com.")
	if resp := mustAsk(t, s, "udp", "db.example.com", dns.TypeA); resp.Rcode != dns.RcodeNameError {
		t.Errorf("after Remove: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}

func TestSetRaw(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("db.example.com", 5, "10.0.0.1")
	if err := s.SetRaw("db.example.com", dns.TypeA, "db.example.com. 9 IN AAAA 2001:db8::1"); err != nil {
		t.Fatal(err)
	}
	if got, want := answer(mustAsk(t, s, "tcp", "db.example.com", dns.TypeA)), "db.example.com. 9 IN AAAA 2001:db8::1"; got != want {
		t.Errorf("answer %q, want %q", got, want)
	}
	if err := s.SetRaw("db.example.com", dns.TypeA, "not a record"); err == nil {
		t.Error("SetRaw accepted a malformed record")
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		fault     dnstest.Fault
		rcode     int
		answers   int
		truncated bool
		timeout   bool
	}{
		{fault: dnstest.FaultNone, rcode: dns.RcodeSuccess, answers: 1},
		{fault: dnstest.FaultDrop, timeout: true},
		{fault: dnstest.FaultServFail, rcode: dns.RcodeServerFailure},
		{fault: dnstest.FaultRefused, rcode: dns.RcodeRefused},
		{fault: dnstest.FaultNXDomain, rcode: dns.RcodeNameError},
		{fault: dnstest.FaultNoAnswer, rcode: dns.RcodeSuccess},
		{fault: dnstest.FaultTruncate, rcode: dns.RcodeSuccess, truncated: true},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.fault.String(), func(t *testing.T) {
				for _, scope := range []string{"global", "name"} {
					s := dnstest.Start(t)
					s.SetA("db.example.com", 5, "10.0.0.1")
					s.SetA("fine.example.com", 5, "10.0.0.2")
					if scope == "global" {
						s.SetFault(tt.fault)
					} else {
						s.SetNameFault("DB.example.com.", tt.fault)
						if resp := mustAsk(t, s, network, "fine.example.com", dns.TypeA); len(resp.Answer) != 1 {
							t.Errorf("%s: fault for db.example.com hit fine.example.com: %v", scope, resp)
						}
					}
					resp, err := ask(t, s, network, "db.example.com", dns.TypeA)
					if tt.timeout {
						var ne net.Error
						if !errors.As(err, &ne) || !ne.Timeout() {
							t.Errorf("%s: got %v, %v; want a timeout", scope, resp, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s: %v", scope, err)
					}
					wantAnswers, wantTC := tt.answers, tt.truncated && network == "udp"
					if tt.fault == dnstest.FaultTruncate && network == "tcp" {
						wantAnswers = 1 // TCP gets the full answer
					}
					if resp.Rcode != tt.rcode || len(resp.Answer) != wantAnswers || resp.Truncated != wantTC {
						t.Errorf("%s: rcode %s, %d answers, TC %v; want %s, %d, %v", scope,
							dns.RcodeToString[resp.Rcode], len(resp.Answer), resp.Truncated,
							dns.RcodeToString[tt.rcode], wantAnswers, wantTC)
					}
				}
			})
		}
	}
}

func TestFaultCleared(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("db.example.com", 5, "10.0.0.1")
	s.SetFault(dnstest.FaultServFail)
	s.SetNameFault("db.example.com", dnstest.FaultRefused)
	if resp := mustAsk(t, s, "udp", "db.example.com", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want the global fault (SERVFAIL) to win", dns.RcodeToString[resp.Rcode])
	}
	s.SetFault(dnstest.FaultNone)
	s.SetNameFault("db.example.com", dnstest.FaultNone)
	if resp := mustAsk(t, s, "udp", "db.example.com", dns.TypeA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("after clearing faults: %v", resp)
	}
}

func TestFollowCNAME(t *testing.T) {
	s := dnstest.Start(t)
	s.SetFollowCNAME(false)
	s.SetCNAME("a.example.com", 5, "b.example.com")
	s.SetA("b.example.com", 5, "10.0.0.1")
	if got, want := answer(mustAsk(t, s, "udp", "a.example.com", dns.TypeA)), "a.example.com. 5 IN CNAME b.example.com."; got != want {
		t.Errorf("answer %q, want %q", got, want)
	}
	s.SetFollowCNAME(true)
	if resp := mustAsk(t, s, "udp", "a.example.com", dns.TypeA); len(resp.Answer) != 2 {
		t.Errorf("following again: %d records, want 2", len(resp.Answer))
	}
}

func TestLargeAnswerTruncatedOverUDP(t *testing.T) {
	s := dnstest.Start(t)
	ips := make([]string, 60) // 60 A records > 512 bytes
	for i := range ips {
		ips[i] = net.IPv4(10, 0, 1, byte(i+1)).String()
	}
	s.SetA("db.example.com", 5, ips...)
	if resp := mustAsk(t, s, "udp", "db.example.com", dns.TypeA); !resp.Truncated || len(resp.Answer) >= len(ips) {
		t.Errorf("UDP: TC %v with %d records; want TC and fewer than %d", resp.Truncated, len(resp.Answer), len(ips))
	}
	if resp := mustAsk(t, s, "tcp", "db.example.com", dns.TypeA); resp.Truncated || len(resp.Answer) != len(ips) {
		t.Errorf("TCP: TC %v with %d records; want all %d", resp.Truncated, len(resp.Answer), len(ips))
	}
}

func TestCounters(t *testing.T) {
	s := dnstest.Start(t)
	s.SetFault(dnstest.FaultDrop)
	_, _ = ask(t, s, "udp", "a.example.com", dns.TypeA)
	s.SetFault(dnstest.FaultNone)
	mustAsk(t, s, "udp", "a.example.com", dns.TypeA)
	mustAsk(t, s, "tcp", "a.example.com", dns.TypeA)
	if q, u, c := s.Queries(), s.QueriesUDP(), s.QueriesTCP(); q != 3 || u != 2 || c != 1 {
		t.Errorf("Queries %d, UDP %d, TCP %d; want 3, 2, 1", q, u, c)
	}
}

func TestCloseIsPrompt(t *testing.T) {
	s, err := dnstest.New()
	if err != nil {
		t.Fatal(err)
	}
	// Leave a TCP connection open with a query the server never answers.
	conn, err := dns.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s.SetFault(dnstest.FaultDrop)
	m := new(dns.Msg)
	m.SetQuestion("a.example.com.", dns.TypeA)
	if err := conn.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 2*time.Second, "the query reaches the server", func() bool { return s.Queries() != 0 })
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Close took %v", elapsed)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := ask(t, s, "udp", "a.example.com", dns.TypeA); err == nil {
		t.Error("closed server still answers")
	}
}

func TestAFlapping(t *testing.T) {
	s := dnstest.Start(t)
	s.SetAFlapping("db.example.com", 5, []string{"10.0.0.1"}, []string{"10.0.0.2", "10.0.0.3"})
	want := []string{
		"db.example.com. 5 IN A 10.0.0.1",
		"db.example.com. 5 IN A 10.0.0.2\ndb.example.com. 5 IN A 10.0.0.3",
		"db.example.com. 5 IN A 10.0.0.1",
	}
	for i, w := range want {
		if got := answer(mustAsk(t, s, "udp", "db.example.com", dns.TypeA)); got != w {
			t.Errorf("query %d: %q, want %q", i, got, w)
		}
	}
	s.SetA("db.example.com", 5, "10.0.0.9")
	for range 2 {
		if got := answer(mustAsk(t, s, "udp", "db.example.com", dns.TypeA)); got != "db.example.com. 5 IN A 10.0.0.9" {
			t.Errorf("after SetA: %q", got)
		}
	}
	s.SetAFlapping("bad.example.com", 5, []string{"2001:db8::1"})
	if resp := mustAsk(t, s, "udp", "bad.example.com", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("an IPv6 address in an A flap: rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
}

func TestObserver(t *testing.T) {
	s := dnstest.Start(t)
	s.SetA("db.example.com", 5, "10.0.0.1", "10.0.0.2")
	var (
		mu  sync.Mutex
		got []dnstest.Answer
	)
	s.SetObserver(func(a dnstest.Answer) { mu.Lock(); defer mu.Unlock(); got = append(got, a) })
	mustAsk(t, s, "udp", "DB.example.com", dns.TypeA)
	s.SetFault(dnstest.FaultDrop)
	_, _ = ask(t, s, "udp", "db.example.com", dns.TypeA)
	s.SetFault(dnstest.FaultServFail)
	mustAsk(t, s, "tcp", "db.example.com", dns.TypeA)
	s.SetObserver(nil)
	s.SetFault(dnstest.FaultNone)
	mustAsk(t, s, "udp", "db.example.com", dns.TypeA)

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("observed %d queries, want 3 (none after SetObserver(nil)): %+v", len(got), got)
	}
	if a := got[0]; a.Name != "db.example.com." || a.Qtype != dns.TypeA || a.TCP || a.Dropped || a.Rcode != dns.RcodeSuccess ||
		fmt.Sprint(a.Addrs) != "[10.0.0.1 10.0.0.2]" || a.At.IsZero() {
		t.Errorf("answer: %+v", a)
	}
	if a := got[1]; !a.Dropped || len(a.Addrs) != 0 {
		t.Errorf("dropped: %+v", a)
	}
	if a := got[2]; !a.TCP || a.Rcode != dns.RcodeServerFailure || len(a.Addrs) != 0 {
		t.Errorf("SERVFAIL over TCP: %+v", a)
	}
}
