package demo

import (
	"net/netip"
	"slices"
	"time"

	"github.com/ipsync/ipsync/internal/elbv2fake"
)

// Summary is what a run did, for tests and for callers that report it.
type Summary struct {
	Start, End time.Time
	Mappings   []MappingSummary
	// Calls is every call the local ELBv2 and RDS endpoint received, in arrival order.
	Calls []Call
	// Violations lists every DeregisterTargets that named an address its mapping's source stood for when it
	// arrived, and every such address the demo saw leave the live targets (I2).
	Violations []string
}

// MappingSummary is one target group and the source it follows.
type MappingSummary struct {
	Name           string
	Source         string // the endpoint, or the rds: source as configured ("rds: {cluster: inventory, role: reader}")
	TargetGroupARN string
	Port           int32
	// Desired is what the source stood for, in order: the first entry is the start, then one per failover.
	Desired   []SourceChange
	Failovers []Failover
	Targets   []elbv2fake.TargetState // at the end
}

// SourceChange is what a mapping's source stood for from At on: the answer the demo put in DNS for its
// endpoint, or the members of its rds: source (each resolved through its instance endpoint).
type SourceChange struct {
	At      time.Time
	Addrs   []netip.Addr // sorted
	Chain   []string     // a DNS name: the names followed, the endpoint first
	Members []string     // rds: the member instances, by identifier
}

// Failover is one failover as one target group saw it, and how long the group took to follow it, measured by
// the demo from the fake's state: each duration runs from the change (in DNS or in RDS); 0 = not seen (yet). A
// stage is reached when it holds for every address the failover adds (registered, healthy) or removes
// (draining, gone); an address in both From and To stays, and must stay, registered throughout.
type Failover struct {
	N            int // 1, 2, ... per mapping
	At           time.Time
	From, To     []netip.Addr  // what the source stood for before and after, sorted
	Registered   time.Duration // every new address registered (initial or healthy)
	Healthy      time.Duration // every new address healthy
	Deregistered time.Duration // every old address draining (or gone)
	Gone         time.Duration // every old address out of the target group
	Converged    bool          // new addresses healthy and old ones gone
	Superseded   bool          // the next failover of the same database began first
}

// Call is one request the local ELBv2 and RDS endpoint received.
type Call struct {
	At      time.Time
	Action  string
	Mapping string       // by the target group it named; "" for calls naming none (RDS calls)
	Targets []netip.Addr // the Targets it named (RegisterTargets, DeregisterTargets)
	Code    string       // error code, "" on success
}

func (d *demo) summary() Summary {
	s := Summary{Start: d.start, End: time.Now(), Violations: slices.Clone(d.violations)}
	for _, m := range d.maps {
		ms := MappingSummary{
			Name: m.name, Source: m.source(), TargetGroupARN: m.arn, Port: m.db.port,
			Desired: slices.Clone(m.desiredLog), Targets: slices.Clone(m.targets),
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
