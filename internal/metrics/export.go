package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// This file exports the per-mapping records at scrape time. A scrape of a large fleet holds every series in
// memory at once (the registry gathers them all before writing), so each series is made with as little as
// possible: the label pairs of one mapping, and the bucket bounds, are shared by its series rather than copied
// into each.

// Collect implements prometheus.Collector. Each record's series are made under its lock and sent after it, so
// that a slow scrape never holds up a pass recording its outcome. Once a /metrics handler writes the families
// itself (streamed), Collect leaves them out.
func (s *mappingSeries) Collect(ch chan<- prometheus.Metric) {
	if s.streamed.Load() {
		return
	}
	var out []prometheus.Metric
	s.each(func(sync string, r *record) {
		out = s.export(out[:0], sync, r, nil)
	}, func() {
		for _, m := range out {
			ch <- m
		}
	})
}

// each calls, for every record, fn under the record's lock, then after outside it.
func (s *mappingSeries) each(fn func(sync string, r *record), after func()) {
	s.mu.RLock()
	names := make([]string, 0, len(s.records))
	recs := make([]*record, 0, len(s.records))
	for name, r := range s.records {
		names, recs = append(names, name), append(recs, r)
	}
	s.mu.RUnlock()
	for i, r := range recs {
		r.mu.Lock()
		fn(names[i], r)
		r.mu.Unlock()
		after()
	}
}

// Label pairs of the fixed label values, shared by every mapping's series: nothing writes to a gathered series.
var (
	resultPairs    = labelPairs("result", syncResults[:])
	statePairs     = labelPairs("state", targetStates[:])
	dnsResultPairs = labelPairs("result", dnsResults[:])
	stagePairs     = labelPairs("stage", convergenceStages[:])
	modePairs      = labelPairs("mode", dnsModes[:])
	memberPairs    = labelPairs("state", memberStates[:])
)

func labelPairs(name string, values []string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(values))
	for i, v := range values {
		out[i] = &dto.LabelPair{Name: new(name), Value: new(v)}
	}
	return out
}

// export appends the series of record r of mapping sync to out: those of family want, or all (want nil). The
// caller holds r.mu.
func (s *mappingSeries) export(out []prometheus.Metric, sync string, r *record, want *mappingFamily) []prometheus.Metric {
	syncPair := &dto.LabelPair{Name: new("sync"), Value: new(sync)}
	only := []*dto.LabelPair{syncPair}
	// with is the labels {name=value, sync}: every other label name sorts before "sync", as a series' pairs must.
	with := func(pair *dto.LabelPair) []*dto.LabelPair { return []*dto.LabelPair{pair, syncPair} }
	created := timestamppb.New(r.created)
	skip := func(f *mappingFamily) bool { return want != nil && f != want }
	counter := func(f *mappingFamily, labels []*dto.LabelPair, v float64) {
		if !skip(f) {
			out = append(out, &series{desc: f.desc, labels: labels, counter: &dto.Counter{Value: new(v), CreatedTimestamp: created}})
		}
	}
	gauge := func(f *mappingFamily, labels []*dto.LabelPair, v float64) {
		if !skip(f) {
			out = append(out, &series{desc: f.desc, labels: labels, gauge: &dto.Gauge{Value: new(v)}})
		}
	}
	hist := func(f *mappingFamily, labels []*dto.LabelPair, h *histogram, bounds []float64) {
		if !skip(f) {
			out = append(out, &series{desc: f.desc, labels: labels, histogram: h.dto(bounds, created)})
		}
	}
	// labelled is a series per fixed label value (pairs, values) and per other value seen (extra).
	labelled := func(series func(*mappingFamily, []*dto.LabelPair, float64), d *mappingFamily,
		pairs []*dto.LabelPair, values []float64, extra map[string]float64) {
		for i, v := range values {
			series(d, with(pairs[i]), v)
		}
		for value, v := range extra {
			series(d, with(&dto.LabelPair{Name: pairs[0].Name, Value: new(value)}), v)
		}
	}
	labelled(counter, s.syncRuns, resultPairs, r.runs[:], nil)
	hist(s.syncDuration, only, &r.duration, syncDurationBuckets[:])
	gauge(s.lastSuccess, only, r.lastSuccess)
	gauge(s.inSync, only, r.inSync)
	gauge(s.resolved, only, r.resolved)
	counter(s.addressChanges, only, r.addressChanges)
	labelled(gauge, s.targets, statePairs, r.targets[:], r.extraTargets)
	counter(s.registrations, only, r.registrations)
	counter(s.deregistrations, only, r.deregistrations)
	labelled(counter, s.dnsQueries, dnsResultPairs, r.dnsQueries[:], r.extraDNS)
	hist(s.dnsDuration, only, &r.dnsDuration, dnsDurationBuckets[:])
	for i := range r.convergence {
		hist(s.convergence, with(stagePairs[i]), &r.convergence[i], convergenceBuckets[:])
	}
	labelled(gauge, s.dnsMode, modePairs, r.dnsMode[:], nil)
	if m := r.membership; m != nil {
		labelled(gauge, s.members, memberPairs, m.members[:], nil)
		gauge(s.membershipKnown, only, m.known)
		counter(s.membershipErrs, only, m.errs)
	}
	return out
}

// dto is h as Prometheus's data model wants it: cumulative counts by upper bound (+Inf implicit: the count).
// Three allocations whatever the number of buckets.
func (h *histogram) dto(bounds []float64, created *timestamppb.Timestamp) *dto.Histogram {
	counts := make([]uint64, len(bounds))
	buckets := make([]dto.Bucket, len(bounds))
	ptrs := make([]*dto.Bucket, len(bounds))
	var n uint64
	for i := range bounds {
		n += h.buckets[i]
		counts[i] = n
		buckets[i] = dto.Bucket{CumulativeCount: &counts[i], UpperBound: &bounds[i]}
		ptrs[i] = &buckets[i]
	}
	return &dto.Histogram{SampleCount: new(h.count), SampleSum: new(h.sum), Bucket: ptrs, CreatedTimestamp: created}
}

// series is one exported series, as of the scrape that made it.
type series struct {
	desc      *prometheus.Desc
	labels    []*dto.LabelPair
	counter   *dto.Counter
	gauge     *dto.Gauge
	histogram *dto.Histogram
}

func (s *series) Desc() *prometheus.Desc { return s.desc }

func (s *series) Write(out *dto.Metric) error {
	out.Label, out.Counter, out.Gauge, out.Histogram = s.labels, s.counter, s.gauge, s.histogram
	return nil
}

var _ prometheus.Metric = (*series)(nil)
