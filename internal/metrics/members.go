package metrics

import "github.com/prometheus/client_golang/prometheus"

// Values of the state label of ipsync_members.
const (
	MemberAvailable   = "available"
	MemberUnavailable = "unavailable"
)

// InitMembership creates an rds: mapping's membership series; other mappings have none.
func (m *Metrics) InitMembership(sync string) {
	if m == nil {
		return
	}
	m.members.WithLabelValues(sync, MemberAvailable)
	m.members.WithLabelValues(sync, MemberUnavailable)
	m.membershipKnown.WithLabelValues(sync)
	m.membershipErrs.WithLabelValues(sync)
}

// ForgetMembership deletes a mapping's membership series: it no longer follows an rds: source.
func (m *Metrics) ForgetMembership(sync string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"sync": sync}
	m.members.DeletePartialMatch(labels)
	m.membershipKnown.DeletePartialMatch(labels)
	m.membershipErrs.DeletePartialMatch(labels)
}

// MembershipRead records one membership read of an rds: mapping: ok is false when it failed.
func (m *Metrics) MembershipRead(sync string, ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.membershipErrs.WithLabelValues(sync).Inc()
		m.membershipKnown.WithLabelValues(sync).Set(0)
		return
	}
	m.membershipKnown.WithLabelValues(sync).Set(1)
}

// SetMembers sets the members of an rds: mapping's last successful membership read.
func (m *Metrics) SetMembers(sync string, available, unavailable int) {
	if m == nil {
		return
	}
	m.members.WithLabelValues(sync, MemberAvailable).Set(float64(available))
	m.members.WithLabelValues(sync, MemberUnavailable).Set(float64(unavailable))
}
