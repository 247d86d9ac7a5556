package promtest_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipsync/ipsync/internal/testutil/promtest"
)

func TestSeriesAndSum(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calls_total", Help: "h"}, []string{"op", "code"})
	took := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "took_seconds", Help: "h"}, []string{"op"})
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "up", Help: "h"})
	reg.MustRegister(calls, took, up)
	calls.WithLabelValues("describe", "ok").Add(3)
	calls.WithLabelValues("describe", "Throttling").Add(2)
	calls.WithLabelValues("register", "ok").Add(1)
	took.WithLabelValues("describe").Observe(0.5)
	took.WithLabelValues("describe").Observe(2.5)
	up.Set(1)

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"calls_total", nil, 6},
		{"calls_total", []string{"op=describe"}, 5},
		{"calls_total", []string{"op=describe", "code=ok"}, 3},
		{"calls_total", []string{"op=describe", "code=AccessDenied"}, 0},
		{"calls_total", []string{"region="}, 6}, // a label no series carries reads as empty
		{"calls_total", []string{"region=x"}, 0},
		{"took_seconds", []string{"op=describe"}, 2}, // samples
		{"up", nil, 1},
		{"missing", nil, 0},
	} {
		if got := promtest.Sum(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if n := len(promtest.Series(t, reg, "calls_total", "code=ok")); n != 2 {
		t.Errorf("Series(calls_total, code=ok): %d series, want 2", n)
	}
}
