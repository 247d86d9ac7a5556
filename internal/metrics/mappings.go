package metrics

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// This file keeps every series labelled sync (one mapping's) in one small record per mapping, exported at scrape
// time. client_golang's vectors cost about 18 KB per mapping for the same series (protobuf label pairs, a map
// entry and a created timestamp per series, a native-histogram-capable struct per histogram); a fleet of 3,000
// mappings would spend 54 MB on them. The exposition is the same: names, help, label sets, buckets.

// Buckets of the per-mapping histograms.
var (
	syncDurationBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	dnsDurationBuckets  = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	// Dense around the goal of TTL + 1 s (2 s for reader endpoints, 6 s for instances) and sparse up to the
	// minutes NLB health checks can take.
	convergenceBuckets = [...]float64{0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60, 120, 300, 600}
)

// mappingSeries is the collector of every per-mapping family. Safe for concurrent use.
type mappingSeries struct {
	syncRuns, syncDuration, lastSuccess, inSync, resolved, addressChanges, targets, registrations,
	deregistrations, dnsQueries, dnsDuration, convergence, dnsMode, members, membershipKnown,
	membershipErrs *mappingFamily
	families []*mappingFamily // all of the above, by name

	// streamed is set once a /metrics handler writes these families itself (Handler): Collect then leaves them
	// out, so that they are not written twice.
	streamed atomic.Bool

	mu      sync.RWMutex
	records map[string]*record // by mapping name
}

// mappingFamily is one per-mapping metric family: the Desc of its series, and its name, help and type for /metrics.
type mappingFamily struct {
	desc       *prometheus.Desc
	name, help string
	typ        dto.MetricType
}

func newMappingSeries() *mappingSeries {
	s := &mappingSeries{records: map[string]*record{}}
	f := func(typ dto.MetricType, name, help string, labels ...string) *mappingFamily {
		fq := prometheus.BuildFQName(namespace, "", name)
		fam := &mappingFamily{desc: prometheus.NewDesc(fq, help, labels, nil), name: fq, help: help, typ: typ}
		s.families = append(s.families, fam)
		return fam
	}
	const counter, gauge, histogram = dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	s.syncRuns = f(counter, "sync_runs_total",
		"Sync passes by result: unchanged, changed (a target was registered or deregistered) or error.",
		"sync", "result")
	s.syncDuration = f(histogram, "sync_duration_seconds",
		"Duration of one sync pass (resolve, describe, register, deregister).", "sync")
	s.lastSuccess = f(gauge, "last_success_timestamp_seconds",
		"Unix time of the last sync pass that did not fail; 0 = none yet.", "sync")
	s.inSync = f(gauge, "in_sync",
		"1 when the registered targets equal the resolved addresses, else 0.", "sync")
	s.resolved = f(gauge, "resolved_addresses",
		"Addresses the endpoint resolved to in the last successful resolution.", "sync")
	s.addressChanges = f(counter, "address_changes_total",
		"Times the resolved address set changed (failovers seen).", "sync")
	s.targets = f(gauge, "targets",
		"Targets in the target group by ELBv2 health state, from the last DescribeTargetHealth.",
		"sync", "state")
	s.registrations = f(counter, "registrations_total",
		"Targets registered (targets, not API calls).", "sync")
	s.deregistrations = f(counter, "deregistrations_total",
		"Targets deregistered (targets, not API calls).", "sync")
	s.dnsQueries = f(counter, "dns_queries_total",
		"DNS resolutions of the endpoint by result: success or the resolver's error kind.", "sync", "result")
	s.dnsDuration = f(histogram, "dns_query_duration_seconds",
		"Duration of one DNS resolution of the endpoint, CNAME chain included.", "sync")
	s.convergence = f(histogram, "convergence_seconds",
		"Time from an address change to its target being registered, and to it being healthy.",
		"sync", "stage")
	s.dnsMode = f(gauge, "dns_mode",
		"1 for the DNS mode the mapping's last answer came in: recursive, authoritative, or fallback "+
			"(authoritative configured, but no name server of the zone could be reached: the recursive servers answered).",
		"sync", "mode")
	s.members = f(gauge, "members",
		"Members of an rds: mapping's source in its last successful membership read, by state: available "+
			"(followed) or unavailable (kept if registered, not added).", "sync", "state")
	s.membershipKnown = f(gauge, "membership_known",
		"1 when the last membership read of an rds: mapping succeeded, 0 while its membership is unknown "+
			"(nothing is deregistered meanwhile).", "sync")
	s.membershipErrs = f(counter, "membership_refresh_errors_total",
		"Failed membership reads of an rds: mapping (RDS API errors, or a member list of zero).", "sync")
	slices.SortFunc(s.families, func(a, b *mappingFamily) int { return strings.Compare(a.name, b.name) })
	return s
}

// record is one mapping's series. Every field after mu is guarded by it. A series of a fixed label value (result,
// state, mode, stage) is an array element, indexed like the list of those values; a label value outside the list
// (a state ELBv2 may add later, a resolver kind this package does not know) goes to a map made only then.
type record struct {
	mu      sync.Mutex
	created time.Time

	runs            [len(syncResults)]float64
	duration        histogram
	lastSuccess     float64
	inSync          float64
	resolved        float64
	addressChanges  float64
	registrations   float64
	deregistrations float64
	targets         [len(targetStates)]float64
	extraTargets    map[string]float64 // other states seen, zeroed once gone
	dnsQueries      [len(dnsResults)]float64
	extraDNS        map[string]float64
	dnsDuration     histogram
	convergence     [len(convergenceStages)]histogram
	dnsMode         [len(dnsModes)]float64
	membership      *membership // rds: mappings only
}

type membership struct {
	members [len(memberStates)]float64
	known   float64
	errs    float64
}

// histogram is one histogram's counts: per bucket (not cumulative; above the last bound only in count), sum, count.
type histogram struct {
	buckets []uint64
	sum     float64
	count   uint64
}

func newHistogram(bounds []float64) histogram { return histogram{buckets: make([]uint64, len(bounds))} }

// observe adds v to h, whose buckets have the upper bounds bounds.
func (h *histogram) observe(bounds []float64, v float64) {
	if i, _ := slices.BinarySearch(bounds, v); i < len(bounds) {
		h.buckets[i]++
	}
	h.sum += v
	h.count++
}

// lookup returns the record of sync, or nil when it has none.
func (s *mappingSeries) lookup(sync string) *record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.records[sync]
}

// get returns the record of sync, made on first use: every series of the mapping then exists (Init).
func (s *mappingSeries) get(sync string) *record {
	if r := s.lookup(sync); r != nil {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[sync]
	if r == nil {
		r = &record{created: time.Now(), duration: newHistogram(syncDurationBuckets[:]),
			dnsDuration: newHistogram(dnsDurationBuckets[:]),
			convergence: [len(convergenceStages)]histogram{newHistogram(convergenceBuckets[:]), newHistogram(convergenceBuckets[:])}}
		s.records[sync] = r
	}
	return r
}

// update runs fn on sync's record under its lock.
func (s *mappingSeries) update(sync string, fn func(*record)) {
	r := s.get(sync)
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r)
}

// forget drops sync's record: none of its series is exported any more.
func (s *mappingSeries) forget(sync string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, sync)
}

// Describe implements prometheus.Collector.
func (s *mappingSeries) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range s.families {
		ch <- f.desc
	}
}
