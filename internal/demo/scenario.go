package demo

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/resolver"
)

// zone is the fake DNS zone of the demo's databases. As in RDS, instance endpoints are A records and cluster
// endpoints are CNAME -> instance endpoint -> A.
const zone = "demo.rds.local"

// instance is where a database can run: one address in one subnet (and so one Availability Zone) of the VPC.
type instance struct {
	host string // instance endpoint; "" when the database's own endpoint carries the A record (Multi-AZ)
	ip   netip.Addr
	az   string
}

// mapping is one database, its target group and everything the demo has seen of them.
type mapping struct {
	name     string
	kind     string // what the database is, for people
	endpoint string
	port     int32
	cname    bool // the endpoint is a CNAME to the writer instance (Aurora); else an A record (Multi-AZ)
	inst     [2]instance
	side     int // which instance DNS points at
	arn      string

	dnsLog      []DNSChange
	answer      resolver.Result // the view's last look at DNS
	answerErr   error
	targets     []elbv2fake.TargetState
	prev        map[netip.AddrPort]string
	active      *tracker   // the failover (or initial sync) being followed
	failoverLog []*tracker // every failover, in order
	calls       map[string]int
	steadySince time.Time // when the last failover converged; zero while one is under way
	quietCalls  int       // API calls for this target group since steadySince
}

func scenario() []*mapping {
	return []*mapping{{
		name:     "orders",
		kind:     "RDS Multi-AZ instance",
		endpoint: "orders." + zone,
		port:     5432,
		inst: [2]instance{
			{ip: netip.MustParseAddr("10.0.1.15"), az: "us-east-1a"},
			{ip: netip.MustParseAddr("10.0.2.27"), az: "us-east-1b"},
		},
		calls: map[string]int{},
	}, {
		name:     "analytics",
		kind:     "Aurora cluster",
		endpoint: "analytics.cluster." + zone,
		port:     3306,
		cname:    true,
		inst: [2]instance{
			{host: "analytics-1." + zone, ip: netip.MustParseAddr("10.0.1.40"), az: "us-east-1a"},
			{host: "analytics-2." + zone, ip: netip.MustParseAddr("10.0.3.52"), az: "us-east-1c"},
		},
		calls: map[string]int{},
	}}
}

func (m *mapping) current() instance { return m.inst[m.side] }

// setup writes the database's records, pointing at its first instance.
func (m *mapping) setup(dns *dnstest.Server, ttl uint32) {
	if m.cname {
		for _, in := range m.inst {
			dns.SetA(in.host, ttl, in.ip.String())
		}
	}
	m.apply(dns, ttl)
}

// apply makes DNS point at the current instance, as RDS does on failover: a Multi-AZ instance endpoint's A
// record changes; an Aurora cluster endpoint's CNAME moves to the new writer.
func (m *mapping) apply(dns *dnstest.Server, ttl uint32) {
	in := m.current()
	if m.cname {
		dns.SetCNAME(m.endpoint, ttl, in.host)
		return
	}
	dns.SetA(m.endpoint, ttl, in.ip.String())
}

func (m *mapping) recordDNS(at time.Time) {
	in := m.current()
	chain := []string{m.endpoint}
	if m.cname {
		chain = append(chain, in.host)
	}
	m.dnsLog = append(m.dnsLog, DNSChange{At: at, Addrs: []netip.Addr{in.ip}, Chain: chain})
}

// servedAt is the address DNS served at t.
func (m *mapping) servedAt(t time.Time) netip.Addr {
	var served netip.Addr
	for _, c := range m.dnsLog {
		if c.At.After(t) {
			break
		}
		served = c.Addrs[0]
	}
	return served
}

func (m *mapping) azOf(ip netip.Addr) string {
	for _, in := range m.inst {
		if in.ip == ip {
			return in.az
		}
	}
	return ""
}

func (m *mapping) describe(in instance) string {
	if m.cname {
		return fmt.Sprintf("CNAME %s -> A %s (%s)", in.host, in.ip, in.az)
	}
	return fmt.Sprintf("A %s (%s)", in.ip, in.az)
}

func (m *mapping) failoverText(from, to instance) string {
	if m.cname {
		return fmt.Sprintf("Aurora failover, writer %s (%s) -> %s (%s), the cluster endpoint's CNAME moves",
			strings.TrimSuffix(from.host, "."+zone), from.az, strings.TrimSuffix(to.host, "."+zone), to.az)
	}
	return fmt.Sprintf("Multi-AZ failover, standby in %s promoted, the endpoint's A record %s -> %s", to.az, from.ip, to.ip)
}

// answerText is a resolution as people read it: chain, addresses, TTL.
func answerText(r resolver.Result) string {
	var b strings.Builder
	for _, name := range r.Chain {
		b.WriteString(strings.TrimSuffix(name, "."))
		b.WriteString(" -> ")
	}
	for i, a := range r.Addrs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	fmt.Fprintf(&b, " (TTL %v)", r.TTL)
	return b.String()
}

// tracker follows one failover (or the initial sync) in the fake's state until it converges.
type tracker struct {
	Failover
	initial bool // the engine's first sync: no old address, not counted as a failover
	done    bool // converged or superseded: nothing more to watch
}

func draining(state string) bool {
	return state == elbv2fake.StateDraining || state == elbv2fake.StateUnhealthyDraining
}

// observe advances the stages from one sample of the target group.
func (f *tracker) observe(ts []elbv2fake.TargetState, port int32, now time.Time) {
	state := func(ip netip.Addr) string {
		for _, t := range ts {
			if t.IP == ip && t.Port == port {
				return t.State
			}
		}
		return ""
	}
	since := max(now.Sub(f.At), time.Nanosecond) // zero means "not seen"
	newState := state(f.To)
	if f.Registered == 0 && newState != "" && !draining(newState) {
		f.Registered = since
	}
	if f.Healthy == 0 && newState == elbv2fake.StateHealthy {
		f.Healthy = since
	}
	if f.From.IsValid() {
		oldState := state(f.From)
		if f.Deregistered == 0 && (oldState == "" || draining(oldState)) {
			f.Deregistered = since
		}
		if f.Gone == 0 && oldState == "" {
			f.Gone = since
		}
	}
	f.Converged = f.Healthy != 0 && (!f.From.IsValid() || f.Gone != 0)
}

// Summary is what a run did, for tests and for callers that report it.
type Summary struct {
	Start, End time.Time
	Mappings   []MappingSummary
	// Calls is every call the local ELBv2 endpoint received, in arrival order.
	Calls []Call
	// Violations lists every DeregisterTargets that named the address DNS was serving when it arrived (I2).
	Violations []string
}

// MappingSummary is one database.
type MappingSummary struct {
	Name, Endpoint, TargetGroupARN string
	Port                           int32
	// DNS is what the demo made the endpoint resolve to, in order; the first entry is the start.
	DNS       []DNSChange
	Failovers []Failover
	Targets   []elbv2fake.TargetState // at the end
}

// DNSChange is one answer the demo put in DNS, from At on.
type DNSChange struct {
	At    time.Time
	Addrs []netip.Addr
	Chain []string // names followed, the endpoint first
}

// Failover is one failover and how long the target group took to follow it, measured by the demo from the
// fake's state: each duration runs from the DNS change; 0 = not seen (yet).
type Failover struct {
	N            int // 1, 2, ... per mapping
	At           time.Time
	From, To     netip.Addr
	Registered   time.Duration // the new address registered (initial or healthy)
	Healthy      time.Duration // the new address healthy
	Deregistered time.Duration // the old address draining (or gone)
	Gone         time.Duration // the old address out of the target group
	Converged    bool          // new address healthy and old one gone
	Superseded   bool          // the next failover of the same database began first
}

// Call is one request the local ELBv2 endpoint received.
type Call struct {
	At      time.Time
	Action  string
	Mapping string       // by the target group it named; "" for calls naming none
	Targets []netip.Addr // the Targets it named (RegisterTargets, DeregisterTargets)
	Code    string       // error code, "" on success
}

func (d *demo) summary() Summary {
	s := Summary{Start: d.start, End: time.Now(), Violations: slices.Clone(d.violations)}
	for _, m := range d.maps {
		ms := MappingSummary{
			Name: m.name, Endpoint: m.endpoint, TargetGroupARN: m.arn, Port: m.port,
			DNS: slices.Clone(m.dnsLog), Targets: slices.Clone(m.targets),
		}
		for _, f := range m.failoverLog {
			ms.Failovers = append(ms.Failovers, f.Failover)
		}
		s.Mappings = append(s.Mappings, ms)
	}
	for _, c := range d.finalCalls {
		name := ""
		if m := d.byARN[callARN(c)]; m != nil {
			name = m.name
		}
		s.Calls = append(s.Calls, Call{At: c.At, Action: c.Action, Mapping: name, Targets: c.TargetIPs(), Code: c.Code})
	}
	return s
}

// callARN is the target group a call names.
func callARN(c elbv2fake.Call) string {
	if arn := c.Params.Get("TargetGroupArn"); arn != "" {
		return arn
	}
	return c.Params.Get("TargetGroupArns.member.1")
}

// stageStats is the running p50 and max of one stage over the failovers that reached it.
func (m *mapping) stageStats(stage func(Failover) time.Duration) (p50, worst time.Duration, n int) {
	var ds []time.Duration
	for _, f := range m.failoverLog {
		if d := stage(f.Failover); d > 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[(len(ds)-1)/2], ds[len(ds)-1], len(ds)
}

func (m *mapping) converged() int {
	n := 0
	for _, f := range m.failoverLog {
		if f.Converged {
			n++
		}
	}
	return n
}

type stage struct {
	name string
	of   func(Failover) time.Duration
}

// stages are the steps of a failover's convergence, in the view's order.
func stages() []stage {
	return []stage{
		{"registered", func(f Failover) time.Duration { return f.Registered }},
		{"healthy", func(f Failover) time.Duration { return f.Healthy }},
		{"old draining", func(f Failover) time.Duration { return f.Deregistered }},
		{"old gone", func(f Failover) time.Duration { return f.Gone }},
	}
}

// statsText is the p50/max summary of a mapping.
func (m *mapping) statsText() string {
	if len(m.failoverLog) == 0 {
		return "no failover"
	}
	still := ""
	if last := m.failoverLog[len(m.failoverLog)-1]; !last.done {
		still = " (the last one still converging)"
	}
	return fmt.Sprintf("%d of %s converged%s; from the DNS change, p50/max %s",
		m.converged(), plural(len(m.failoverLog), "failover"), still, strings.Join(m.stagesP50Max(), ", "))
}

// stagesP50Max is "<stage> <p50>/<max>" for each stage of convergence ("<stage> -" before any failover reached it).
func (m *mapping) stagesP50Max() []string {
	var out []string
	for _, s := range stages() {
		p50, worst, n := m.stageStats(s.of)
		if n == 0 {
			out = append(out, s.name+" -")
			continue
		}
		out = append(out, fmt.Sprintf("%s %s/%s", s.name, fmtDur(p50), fmtDur(worst)))
	}
	return out
}

// fmtDur shows a duration to the precision people read: 0.42s, 4.3s, 1m05s.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
