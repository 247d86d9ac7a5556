package demo

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/resolver"
)

// zone is the fake DNS zone of the databases ipsync follows by name. As in RDS, instance endpoints are A records
// and cluster endpoints are CNAME -> instance endpoint -> A. The RDS-followed cluster's instance endpoints are
// the names the local RDS API gives them (see aurora.go).
const zone = "demo.rds.local"

// instance is a DB instance: one address in one subnet (and so one Availability Zone) of the VPC.
type instance struct {
	id   string // DB instance identifier; "" for a Multi-AZ instance's primary and standby
	host string // instance endpoint; "" when the database's own endpoint carries the A record (Multi-AZ)
	ip   netip.Addr
	az   string
}

// database is one database the demo runs and fails over, and the target groups that follow it: one group
// following a DNS name (endpoint), or, for an Aurora cluster followed through the RDS API (cluster), one group
// per role.
type database struct {
	name     string
	kind     string // what the database is, for people
	port     int32
	insts    []instance
	writer   int    // the instance that serves writes: the one DNS points at, or the cluster's writer in RDS
	endpoint string // the name ipsync follows; "" for a cluster followed through the RDS API
	cname    bool   // endpoint is a CNAME to the writer instance (Aurora); else an A record (Multi-AZ)
	cluster  string // the DB cluster ipsync reads the members of (rds:); "" for a database followed by name

	groups    []*mapping
	failovers int
}

// mapping is one target group, the source it follows and everything the demo has seen of them.
type mapping struct {
	db   *database
	name string
	role string // rds: the members the group follows (config.RoleWriter, config.RoleReader); "" for a DNS name
	arn  string

	desiredLog  []SourceChange // what the source stood for, from the start on
	looks       []look         // the view's last look at DNS: the endpoint, or each member's instance endpoint
	targets     []elbv2fake.TargetState
	prev        map[netip.AddrPort]string
	prevAt      time.Time  // when prev was sampled
	active      *tracker   // the failover (or initial sync) being followed
	failoverLog []*tracker // every failover, in order
	calls       map[string]int
	steadySince time.Time // when the last failover converged; zero while one is under way
	quietCalls  int       // API calls for this target group since steadySince
}

// look is one name the view resolved: the endpoint (inst nil) or a member's instance endpoint.
type look struct {
	inst *instance
	res  resolver.Result
	err  error
}

func scenario() []*database {
	dbs := []*database{{
		name:     "orders",
		kind:     "RDS Multi-AZ instance",
		endpoint: "orders." + zone,
		port:     5432,
		insts: []instance{
			{ip: netip.MustParseAddr("10.0.1.15"), az: "us-east-1a"},
			{ip: netip.MustParseAddr("10.0.2.27"), az: "us-east-1b"},
		},
	}, {
		name:     "analytics",
		kind:     "Aurora cluster",
		endpoint: "analytics.cluster." + zone,
		port:     3306,
		cname:    true,
		insts: []instance{
			{id: "analytics-1", host: "analytics-1." + zone, ip: netip.MustParseAddr("10.0.1.40"), az: "us-east-1a"},
			{id: "analytics-2", host: "analytics-2." + zone, ip: netip.MustParseAddr("10.0.3.52"), az: "us-east-1c"},
		},
	}, auroraScene()}
	for _, db := range dbs {
		roles := []string{""}
		if db.cluster != "" {
			roles = []string{config.RoleWriter, config.RoleReader}
		}
		for _, role := range roles {
			db.groups = append(db.groups, &mapping{db: db, name: db.groupName(role), role: role, calls: map[string]int{}})
		}
	}
	return dbs
}

// groupName names the target group (and the mapping) of a role: the database's name, or for a cluster followed
// through the RDS API the name ipsync gives such a mapping by default ("inventory-writer", "inventory-reader").
func (db *database) groupName(role string) string {
	if role == "" {
		return db.name
	}
	return (&config.RDS{Cluster: db.cluster, Role: role}).DefaultName()
}

// sync is the mapping's configuration, as a user would write it.
func (m *mapping) sync() config.Sync {
	s := config.DefaultSync()
	s.Name, s.TargetGroupARN = m.name, m.arn
	s.AvailabilityZone, s.Prune, s.DeregisterAfter = "auto", true, 2
	if m.role == "" {
		s.Endpoint = m.db.endpoint
	} else {
		s.RDS = &config.RDS{Cluster: m.db.cluster, Role: m.role, Refresh: rdsRefresh}
	}
	return s
}

// source is what the mapping follows, as its configuration says it.
func (m *mapping) source() string {
	if s := m.sync(); s.RDS != nil {
		return s.RDS.String()
	}
	return m.db.endpoint
}

func (db *database) current() instance { return db.insts[db.writer] }

// members are the instances a group follows: the writer, or (role reader) every other instance.
func (m *mapping) members() []instance {
	var out []instance
	for i, in := range m.db.insts {
		if (i == m.db.writer) == (m.role != config.RoleReader) {
			out = append(out, in)
		}
	}
	return out
}

// desired is the addresses the group must hold now, sorted.
func (m *mapping) desired() []netip.Addr {
	var out []netip.Addr
	for _, in := range m.members() {
		out = append(out, in.ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// failover fails the next database over: DNS moves to its other instance, or RDS makes another instance the
// cluster's writer. Every target group of the database follows the change from then on.
func (d *demo) failover(ctx context.Context) {
	db := d.dbs[d.failovers%len(d.dbs)]
	from := map[*mapping][]netip.Addr{}
	for _, m := range db.groups {
		from[m] = m.desired()
	}
	old := db.current()
	at := time.Now() // DNS (or RDS) says the new answer from here on
	if db.cluster != "" {
		if err := db.failoverRDS(d.fake); err != nil {
			d.out.line(at, "failover", fmt.Sprintf("%s: %v (a bug in the demo)", db.name, err))
			return
		}
	} else {
		db.writer = (db.writer + 1) % len(db.insts)
		db.applyDNS(d.dns, uint32(d.opts.TTL/time.Second))
	}
	for _, m := range db.groups {
		if a := m.active; a != nil && !a.done {
			a.Superseded, a.done = true, true
			what := fmt.Sprintf("failover #%d", a.N)
			if a.initial {
				what = "the initial sync"
			}
			d.out.line(at, m.name, what+" had not converged when the next one began")
		}
	}
	db.recordDesired(at)
	db.failovers++
	for _, m := range db.groups {
		m.active = &tracker{Failover: Failover{N: db.failovers, At: at, From: from[m], To: m.desired()}}
		m.failoverLog = append(m.failoverLog, m.active)
		m.steadySince, m.quietCalls = time.Time{}, 0
	}

	text := db.failoverText(old, db.current())
	if db.cluster != "" {
		text += fmt.Sprintf("; RDS now lists %s, and ipsync reads that within %v (rds.refresh)", db.rolesText(), rdsRefresh)
	} else {
		said := "no answer"
		if res, err := d.resolve(ctx, db.endpoint); err == nil {
			said = answerText(res)
		}
		text += "; DNS now says " + said
	}
	d.out.line(at, "failover", fmt.Sprintf("%s #%d: %s", db.name, db.failovers, text))
}

// resolve is the view's own look at one name.
func (d *demo) resolve(ctx context.Context, name string) (resolver.Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dnsTimeout)
	defer cancel()
	return d.view.Resolve(ctx, name, resolver.IPv4)
}

// lookAt resolves what the group follows: its endpoint, or each of its members' instance endpoints.
func (d *demo) lookAt(ctx context.Context, m *mapping) {
	if m.role == "" {
		res, err := d.resolve(ctx, m.db.endpoint)
		m.looks = []look{{res: res, err: err}}
		return
	}
	mems := m.members()
	m.looks = make([]look, len(mems))
	for i := range mems {
		res, err := d.resolve(ctx, mems[i].host)
		m.looks[i] = look{inst: &mems[i], res: res, err: err}
	}
}

// setupDNS writes the database's records, pointing at its first instance.
func (db *database) setupDNS(dns *dnstest.Server, ttl uint32) {
	if db.cname {
		for _, in := range db.insts {
			dns.SetA(in.host, ttl, in.ip.String())
		}
	}
	db.applyDNS(dns, ttl)
}

// applyDNS makes DNS point at the current instance, as RDS does on failover: a Multi-AZ instance endpoint's A
// record changes; an Aurora cluster endpoint's CNAME moves to the new writer.
func (db *database) applyDNS(dns *dnstest.Server, ttl uint32) {
	in := db.current()
	if db.cname {
		dns.SetCNAME(db.endpoint, ttl, in.host)
		return
	}
	dns.SetA(db.endpoint, ttl, in.ip.String())
}

// recordDesired notes what each group's source stands for from at on.
func (db *database) recordDesired(at time.Time) {
	for _, m := range db.groups {
		c := SourceChange{At: at, Addrs: m.desired()}
		if m.role == "" {
			c.Chain = []string{db.endpoint}
			if db.cname {
				c.Chain = append(c.Chain, db.current().host)
			}
		} else {
			for _, in := range m.members() {
				c.Members = append(c.Members, in.id)
			}
		}
		m.desiredLog = append(m.desiredLog, c)
	}
}

// desiredAt is what the source stood for at t.
func (m *mapping) desiredAt(t time.Time) []netip.Addr {
	var addrs []netip.Addr
	for _, c := range m.desiredLog {
		if c.At.After(t) {
			break
		}
		addrs = c.Addrs
	}
	return addrs
}

// changedSince reports whether what the source stands for changed after t.
func (m *mapping) changedSince(t time.Time) bool {
	return len(m.desiredLog) > 0 && m.desiredLog[len(m.desiredLog)-1].At.After(t)
}

// inUse says why an address the source stood for must not be deregistered, for the safety check's messages.
func (m *mapping) inUse() string {
	switch m.role {
	case config.RoleWriter:
		return "it was the cluster's writer"
	case config.RoleReader:
		return "it was a reader of the cluster"
	}
	return "DNS served it"
}

// changeWord is the change a failover makes to the group's source, as the view names it.
func (m *mapping) changeWord() string {
	if m.role != "" {
		return "the failover"
	}
	return "the DNS change"
}

func (db *database) azOf(ip netip.Addr) string {
	for _, in := range db.insts {
		if in.ip == ip {
			return in.az
		}
	}
	return ""
}

// describe is what a database followed by name answers at the start.
func (db *database) describe() string {
	in := db.current()
	if db.cname {
		return fmt.Sprintf("CNAME %s -> A %s (%s)", in.host, in.ip, in.az)
	}
	return fmt.Sprintf("A %s (%s)", in.ip, in.az)
}

func (db *database) failoverText(from, to instance) string {
	switch {
	case db.cluster != "":
		return fmt.Sprintf("Aurora failover (FailoverDBCluster), writer %s (%s) -> %s (%s); each instance keeps its address",
			from.id, from.az, to.id, to.az)
	case db.cname:
		return fmt.Sprintf("Aurora failover, writer %s (%s) -> %s (%s), the cluster endpoint's CNAME moves",
			from.id, from.az, to.id, to.az)
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
	b.WriteString(addrsText(r.Addrs))
	fmt.Fprintf(&b, " (TTL %v)", r.TTL)
	return b.String()
}

// addrsText is a set of addresses: "10.0.1.40", or "10.0.1.60, 10.0.3.62"; "none" when empty.
func addrsText(addrs []netip.Addr) string {
	if len(addrs) == 0 {
		return "none"
	}
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// setText is a set of addresses inside a sentence: one address alone, several in brackets.
func setText(addrs []netip.Addr) string {
	if len(addrs) == 1 {
		return addrs[0].String()
	}
	return "[" + addrsText(addrs) + "]"
}
