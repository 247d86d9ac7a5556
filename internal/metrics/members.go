package metrics

// Values of the state label of ipsync_members.
const (
	MemberAvailable   = "available"
	MemberUnavailable = "unavailable"
)

var memberStates = [...]string{MemberAvailable, MemberUnavailable}

// InitMembership creates an rds: mapping's membership series; other mappings have none.
func (m *Metrics) InitMembership(sync string) {
	if m == nil {
		return
	}
	m.mappings.update(sync, func(r *record) { r.followsMembers() })
}

// ForgetMembership deletes a mapping's membership series: it no longer follows an rds: source.
func (m *Metrics) ForgetMembership(sync string) {
	if m == nil {
		return
	}
	if r := m.mappings.lookup(sync); r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.membership = nil
	}
}

// MembershipRead records one membership read of an rds: mapping: ok is false when it failed.
func (m *Metrics) MembershipRead(sync string, ok bool) {
	if m == nil {
		return
	}
	m.mappings.update(sync, func(r *record) {
		ms := r.followsMembers()
		if !ok {
			ms.errs++
			ms.known = 0
			return
		}
		ms.known = 1
	})
}

// SetMembers sets the members of an rds: mapping's last successful membership read.
func (m *Metrics) SetMembers(sync string, available, unavailable int) {
	if m == nil {
		return
	}
	m.mappings.update(sync, func(r *record) {
		r.followsMembers().members = [len(memberStates)]float64{float64(available), float64(unavailable)}
	})
}

// followsMembers returns r's membership series, made on first use. The caller holds r.mu.
func (r *record) followsMembers() *membership {
	if r.membership == nil {
		r.membership = &membership{}
	}
	return r.membership
}
