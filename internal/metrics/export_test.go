package metrics

import dto "github.com/prometheus/client_model/go"

// GatherFamily is the per-mapping family name of m as the daemon's /metrics builds it, or nil.
func GatherFamily(m *Metrics, name string) *dto.MetricFamily {
	for _, f := range m.mappings.families {
		if f.name == name {
			return m.mappings.gather(f)
		}
	}
	return nil
}
