package engine

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/ownership"
	"github.com/ipsync/ipsync/internal/plan"
)

// This file keeps, for a mapping with prune: false, the targets ipsync registered (I7) recorded on the target group
// itself (package ownership), so that a restart, a second daemon or the Lambda know them too. prune: true needs
// none of it: no tag is read or written, and no AddTags/RemoveTags permission is needed.
//
// The order keeps every failure on the safe side: a target is recorded only after RegisterTargets succeeded, and
// its record goes only after DeregisterTargets succeeded. A failed write leaves the record owning too little (a
// target ipsync registered is left in place, never someone else's removed); it is logged and tried again after the
// next pass.

// readOwnership reads the group's record at init and adds what it owns to the mapping's memory. A record that does
// not parse owns nothing, and the log says why. The caller holds m.busy.
func (m *mapping) readOwnership(ctx context.Context, client TargetGroup) error {
	tags, err := client.Tags(ctx, m.cfg.TargetGroupARN)
	if err != nil {
		return fmt.Errorf("reading the tags of %s, where ipsync records the targets it registered (prune: false): %w", m.cfg.TargetGroupARN, err)
	}
	owned, err := ownership.Decode(tags) // other tags are ignored
	if err != nil {
		m.log.Warn("ownership record unreadable: owning none of the targets in the group until ipsync registers one", zap.Error(err))
	}
	ts := make([]nlb.Target, len(owned))
	for i, t := range owned {
		ts[i] = nlb.Target{IP: t.Addr(), Port: int32(t.Port())}
	}
	m.mem = plan.Registered(m.mem, ts)
	m.ownTags = tags
	if len(ts) > 0 {
		m.log.Info("ownership read from the target group's tags", zap.Stringers("owned", ts))
	}
	return nil
}

// writeOwnership records the owned targets on the group when a registration or deregistration changed them since
// the last write; nothing otherwise (no call in steady state, I9), and nothing in a dry run (I8). The caller holds
// m.busy.
func (m *mapping) writeOwnership(ctx context.Context) {
	if m.cfg.Prune || m.e.opts.DryRun || !m.ownPending || m.client == nil {
		return
	}
	owned := make([]netip.AddrPort, 0, len(m.mem.Owned))
	for t := range m.mem.Owned {
		owned = append(owned, netip.AddrPortFrom(t.IP, uint16(t.Port))) //nolint:gosec // G115: a port is 1-65535 (validated config, AWS answers)
	}
	set, remove, err := ownership.Changes(m.ownTags, owned)
	if err != nil {
		m.log.Error("cannot record the targets ipsync registered; those left out stay in the group after a restart", zap.Error(err))
		return
	}
	// RemoveTags first: when the AddTags after it fails, the record is a part of the old one, owning too little.
	next := maps.Clone(m.ownTags)
	if next == nil {
		next = map[string]string{}
	}
	if len(remove) > 0 {
		if err := m.client.RemoveTags(ctx, m.cfg.TargetGroupARN, remove); err != nil {
			m.log.Warn("updating the ownership record failed (RemoveTags); will retry after the next pass", zap.Error(err), zap.Strings("tags", remove))
			return
		}
		for _, k := range remove {
			delete(next, k)
		}
		m.ownTags = next
	}
	if len(set) > 0 {
		if err := m.client.AddTags(ctx, m.cfg.TargetGroupARN, set); err != nil {
			m.log.Warn("recording ownership failed (AddTags): after a restart ipsync would leave the targets left out in place; will retry after the next pass",
				zap.Error(err), zap.Strings("tags", slices.Sorted(maps.Keys(set))))
			return
		}
		maps.Copy(next, set)
	}
	m.ownTags, m.ownPending = next, false
}
