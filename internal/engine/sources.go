package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/members"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/plan"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
)

// This file is where a mapping's desired state comes from: its DNS names (endpoint:, endpoints:) or the members
// of its rds: source, each resolved through its own instance endpoint. Each is a source of its own for the
// planner (plan.Source), which keeps what an unknown source last stood for (I1 per source). The membership of an
// rds: source is read at the first pass, every rds.refresh, and at the next pass after RefreshMembers (the
// Lambda's RDS events about members).

// MembersReader reads the members of an rds: source; *members.Reader implements it.
type MembersReader interface {
	Read(ctx context.Context, src config.RDS) (members.Members, error)
}

// MembersFunc returns the membership reader for a mapping: RDS in its target group's region, as its role_arn.
type MembersFunc func(ctx context.Context, targetGroupARN, roleARN string) (MembersReader, error)

// MembersFromFactory adapts a *targets.Factory: the RDS client shares the target group client's credentials.
func MembersFromFactory(f *targets.Factory) MembersFunc {
	return func(ctx context.Context, arn, role string) (MembersReader, error) {
		c, err := f.RDS(ctx, arn, role)
		if err != nil {
			return nil, err
		}
		return &members.Reader{API: c}, nil
	}
}

// resolveConcurrency bounds the names one mapping resolves at once (a replica pool of 15 members, say).
const resolveConcurrency = 8

// States of a source in a report.
const (
	SourceAnswered = "answered" // resolved: its addresses are desired
	SourceHeld     = "held"     // an RDS member that is not available: its registered addresses stay, none is added
	SourceUnknown  = "unknown"  // no answer: the addresses it last resolved to stay (I1)
)

// SourceReport is one source of a mapping in a pass: a DNS name, or an RDS member through its instance endpoint.
type SourceReport struct {
	Name       string       `json:"name"`               // the DNS name resolved
	InstanceID string       `json:"instance,omitempty"` // rds: the member's DB instance
	Role       string       `json:"role,omitempty"`     // rds: writer | reader
	Status     string       `json:"status,omitempty"`   // rds: its DBInstanceStatus
	State      string       `json:"state"`              // answered | held | unknown
	Addresses  []netip.Addr `json:"addresses,omitempty"`
	Error      string       `json:"error,omitempty"`
}

// sourceSpec is one source a pass resolves.
type sourceSpec struct {
	name   string          // the planner's name for it: the DNS name, or the member's instance identifier
	dns    string          // the name to resolve; "" for a member RDS gives no endpoint yet
	hold   bool            // a member that is not available
	member *members.Member // rds: the member
}

// sourceAnswer is what resolving one source gave.
type sourceAnswer struct {
	sourceSpec
	res resolver.Result
	at  time.Time
	err error
}

// errNoEndpoint is the "resolution" of a member without an endpoint: RDS has not given it one yet.
var errNoEndpoint = errors.New("RDS gives the instance no endpoint yet")

// describeSource is a mapping's source as the user wrote it, for reports and logs.
func describeSource(s config.Sync) string {
	switch {
	case s.RDS != nil:
		return s.RDS.String()
	case s.Endpoint != "":
		return s.Endpoint
	}
	return strings.Join(s.Endpoints, ",")
}

// specs lists the sources of this pass: the mapping's DNS names, or the members of its last membership read.
func (m *mapping) specs() []sourceSpec {
	if m.cfg.RDS == nil {
		names := m.cfg.DNSNames()
		out := make([]sourceSpec, len(names))
		for i, n := range names {
			out[i] = sourceSpec{name: n, dns: n}
		}
		return out
	}
	out := make([]sourceSpec, len(m.members.Members))
	for i, mem := range m.members.Members {
		out[i] = sourceSpec{name: mem.InstanceID, dns: mem.Address, hold: !mem.Available(), member: &m.members.Members[i]}
	}
	return out
}

// resolveSpecs resolves every source, at most resolveConcurrency at once, in the given order.
func (m *mapping) resolveSpecs(ctx context.Context, specs []sourceSpec) []sourceAnswer {
	out := make([]sourceAnswer, len(specs))
	var g errgroup.Group
	g.SetLimit(resolveConcurrency)
	for i, s := range specs {
		out[i].sourceSpec = s
		if s.dns == "" {
			out[i].err = errNoEndpoint
			continue
		}
		g.Go(func() error {
			out[i].res, out[i].err = m.query(ctx, s.dns)
			out[i].at = m.now()
			return nil
		})
	}
	_ = g.Wait() // each answer carries its error
	return out
}

// planSources turns answers into the planner's sources. While an rds: membership is unknown, the membership is
// one more source that never answered: it may stand for any registered address, so nothing is deregistered.
// Only a member RDS reports as being created (no endpoint yet) is pending: it blocks nothing (beingCreated). A
// member whose endpoint does not resolve is unknown, held or not: after a restart it may be the one a
// registered address belongs to (I1).
func (m *mapping) planSources(answers []sourceAnswer) []plan.Source {
	srcs := make([]plan.Source, 0, len(answers)+1)
	for _, a := range answers {
		s := plan.Source{Name: a.name, Hold: a.hold, Pending: beingCreated(a)}
		if a.err == nil {
			s.Known, s.Answer = true, plan.Answer{Addrs: a.res.Addrs, At: a.at, TTL: m.ttl(a.res), Server: a.res.Server}
		}
		srcs = append(srcs, s)
	}
	if m.cfg.RDS != nil && m.membersErr != nil {
		srcs = append(srcs, plan.Source{Name: m.cfg.RDS.String()})
	}
	return srcs
}

// beingCreated reports whether a is a member RDS says is being created, with no endpoint yet (members.Member's
// BeingCreated): the one unknown source that blocks nothing (I1).
func beingCreated(a sourceAnswer) bool {
	return errors.Is(a.err, errNoEndpoint) && a.member != nil && a.member.BeingCreated()
}

// desired is the union of the addresses of the sources that answered and are not held, sorted.
func desired(answers []sourceAnswer) []netip.Addr {
	var out []netip.Addr
	for _, a := range answers {
		if a.err == nil && !a.hold {
			out = append(out, a.res.Addrs...)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// sourceFailures is the error of the sources that did not answer, and of the membership; nil when every source
// answered. A held member's failure is left out, as a member that is not available is expected not to answer
// (its report says why); it still keeps what it stands for (planSources).
func (m *mapping) sourceFailures(answers []sourceAnswer) error {
	var errs []error
	if m.cfg.RDS != nil && m.membersErr != nil {
		errs = append(errs, fmt.Errorf("%w; every target stays until the membership is known again", m.membersErr))
	}
	for _, a := range answers {
		if a.err != nil && !a.hold {
			errs = append(errs, fmt.Errorf("resolving %s: %w; the addresses it last resolved to stay", a.dns, a.err))
		}
	}
	return joinErrors(errs)
}

// unknown is the error of a pass in which no source answered: nothing changes (I1).
func (m *mapping) unknown(answers []sourceAnswer) error {
	switch {
	case m.cfg.RDS == nil && len(answers) == 1:
		return fmt.Errorf("resolving %s: %w; no target changed", answers[0].dns, answers[0].err)
	case m.cfg.RDS != nil && m.membersErr != nil && len(answers) == 0:
		return fmt.Errorf("%w; no target changed", m.membersErr)
	}
	var errs []error
	if m.cfg.RDS != nil && m.membersErr != nil {
		errs = append(errs, m.membersErr)
	}
	for _, a := range answers {
		if a.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", cmp.Or(a.dns, a.name), a.err))
		} else {
			errs = append(errs, fmt.Errorf("%s: not available (%s)", a.name, a.member.Status))
		}
	}
	return fmt.Errorf("no source of %s answered (%w); no target changed", describeSource(m.cfg), joinErrors(errs))
}

// sourceReports are the report's view of the answers.
func sourceReports(answers []sourceAnswer) []SourceReport {
	out := make([]SourceReport, len(answers))
	for i, a := range answers {
		r := SourceReport{Name: a.dns, State: SourceAnswered}
		if a.member != nil {
			r.InstanceID, r.Role, r.Status = a.member.InstanceID, a.member.Role, a.member.Status
		}
		switch {
		case a.err != nil:
			r.State, r.Error = SourceUnknown, a.err.Error()
			if a.hold {
				r.State = SourceHeld
			}
		case a.hold:
			r.State, r.Addresses = SourceHeld, a.res.Addrs
		default:
			r.Addresses = a.res.Addrs
		}
		out[i] = r
	}
	return out
}

// readMembers reads the rds: membership when it is due. On failure the last membership read stays in use, so
// that its members are still resolved and registered, and the membership counts as unknown (planSources).
func (m *mapping) readMembers(ctx context.Context) {
	if m.cfg.RDS == nil || m.now().Before(m.nextMembers) {
		return
	}
	m.nextMembers = m.now().Add(m.cfg.RDS.Refresh)
	got, err := m.membersReader.Read(ctx, *m.cfg.RDS)
	m.e.deps.Metrics.MembershipRead(m.cfg.Name, err == nil)
	if err != nil {
		if m.membersErr == nil {
			m.log.Warn("RDS membership unknown: no target is deregistered until it is read again", zap.Error(err),
				zap.Strings("last_members", memberIDs(m.members)))
		}
		m.membersErr = err
		return
	}
	if m.membersErr != nil || !slices.Equal(m.members.Members, got.Members) {
		m.log.Info("RDS membership", zap.Any("members", got.Members))
	}
	m.members, m.membersErr = got, nil
	available := len(got.Available())
	m.e.deps.Metrics.SetMembers(m.cfg.Name, available, len(got.Members)-available)
	m.mu.Lock()
	m.memberIDs = memberIDs(got)
	m.mu.Unlock()
}

// joinErrors is errors.Join on one line, for logs and reports: "a; b". nil for none.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return joined(errs)
}

type joined []error

func (j joined) Error() string {
	msgs := make([]string, len(j))
	for i, err := range j {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joined) Unwrap() []error { return j }

func memberIDs(ms members.Members) []string {
	ids := make([]string, len(ms.Members))
	for i, mem := range ms.Members {
		ids[i] = mem.InstanceID
	}
	return ids
}

// initMetrics creates a mapping's series; only an rds: mapping has membership series (a mapping that a reload
// changed from rds: to DNS names loses them, so that no alert reads a membership that is no longer followed).
func initMetrics(m *metrics.Metrics, s config.Sync) {
	m.Init(s.Name)
	if s.RDS != nil {
		m.InitMembership(s.Name)
	} else {
		m.ForgetMembership(s.Name)
	}
}

// RefreshMembers makes the next pass of the named rds: mappings read their membership, whatever rds.refresh
// says: the Lambda calls it on an RDS event about a member (an instance added, removed, promoted).
func (e *Engine) RefreshMembers(names []string) {
	for _, m := range e.selected(names) {
		m.refreshMembers()
	}
}

// refreshMembers makes the next pass read the membership of an rds: mapping.
func (m *mapping) refreshMembers() {
	if m.cfg.RDS == nil {
		return
	}
	m.busy.Lock()
	defer m.busy.Unlock()
	m.nextMembers = time.Time{}
}

// RDSMappings returns the names of the rds: mappings, in configuration order.
func (e *Engine) RDSMappings() []string {
	var names []string
	for _, m := range e.current() {
		if m.cfg.RDS != nil {
			names = append(names, m.cfg.Name)
		}
	}
	return names
}

// MappingsFor returns the names of the mappings an RDS event about the DB instance or cluster id concerns: those
// whose DBIdentifier it is, and the rds: mappings whose last membership read lists the instance (a reader of
// a cluster, a read replica of an instance).
func (e *Engine) MappingsFor(id string) []string {
	id = strings.ToLower(id)
	var names []string
	for _, m := range e.current() {
		m.mu.Lock()
		member := slices.Contains(m.memberIDs, id)
		m.mu.Unlock()
		if m.cfg.DBIdentifier() == id || member {
			names = append(names, m.cfg.Name)
		}
	}
	return names
}
