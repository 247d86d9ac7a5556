// Package promtest reads Prometheus series for tests: the series of a family that carry given labels, and what a
// series counts. Only tests import it.
package promtest

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Series gathers g and returns the series of family name that carry every label given as "name=value".
func Series(t testing.TB, g prometheus.Gatherer, name string, labels ...string) []*dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() == name {
			out = append(out, Matching(mf, labels...)...)
		}
	}
	return out
}

// Sum sums the Value of the Series.
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	var sum float64
	for _, m := range Series(t, g, name, labels...) {
		sum += Value(m)
	}
	return sum
}

// Matching returns the series of mf (gathered, or parsed from a scrape) that carry every label given as
// "name=value". A label a series does not carry reads as empty, as in Prometheus.
func Matching(mf *dto.MetricFamily, labels ...string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range mf.GetMetric() {
		have := make(map[string]string, len(m.GetLabel()))
		for _, p := range m.GetLabel() {
			have[p.GetName()] = p.GetValue()
		}
		if carries(have, labels) {
			out = append(out, m)
		}
	}
	return out
}

func carries(have map[string]string, labels []string) bool {
	for _, l := range labels {
		if name, value, _ := strings.Cut(l, "="); have[name] != value {
			return false
		}
	}
	return true
}

// Value is what a series counts: a counter's, gauge's or untyped value, or a histogram's sample count.
func Value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}
