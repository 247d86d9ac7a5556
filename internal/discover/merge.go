package discover

import (
	"fmt"

	"github.com/ipsync/ipsync/internal/config"
)

// Merge returns the mappings to run: the static ones (syncs:, validated), then the discovered ones. A target group
// belongs to one mapping only: a discovered group that a static mapping already names is refused, as is one whose
// name a static mapping already uses (names are metric labels); each refusal is a GroupError, and the static
// mapping runs as configured. The static configuration wins because it is the one a person wrote and reviewed.
func Merge(static []config.Sync, discovered []Mapping) ([]config.Sync, []*GroupError) {
	out := make([]config.Sync, 0, len(static)+len(discovered))
	out = append(out, static...)
	groups := map[string]int{}
	names := map[string]int{}
	for i, s := range static {
		groups[s.TargetGroupARN] = i
		names[s.Name] = i
	}
	var refused []*GroupError
	for _, m := range discovered {
		if i, dup := groups[m.Sync.TargetGroupARN]; dup {
			refused = append(refused, &GroupError{TargetGroupARN: m.Sync.TargetGroupARN, Problem: fmt.Sprintf(
				"is also syncs[%d] (%s) in the configuration; a target group belongs to one mapping: remove the tag or the syncs entry (syncs[%d] runs meanwhile)",
				i, static[i].Name, i)})
			continue
		}
		if i, dup := names[m.Sync.Name]; dup {
			refused = append(refused, &GroupError{TargetGroupARN: m.Sync.TargetGroupARN, Problem: fmt.Sprintf(
				"its mapping name %q is already syncs[%d]'s; names are metric labels and must be unique: rename syncs[%d]",
				m.Sync.Name, i, i)})
			continue
		}
		out = append(out, m.Sync)
	}
	return out, refused
}
