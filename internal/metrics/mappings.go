package metrics

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	membershipErrs *prometheus.Desc

	mu      sync.RWMutex
	records map[string]*record // by mapping name
}

func newMappingSeries() *mappingSeries {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &mappingSeries{
		syncRuns: d("sync_runs_total",
			"Sync passes by result: unchanged, changed (a target was registered or deregistered) or error.",
			"sync", "result"),
		syncDuration: d("sync_duration_seconds",
			"Duration of one sync pass (resolve, describe, register, deregister).", "sync"),
		lastSuccess: d("last_success_timestamp_seconds",
			"Unix time of the last sync pass that did not fail; 0 = none yet.", "sync"),
		inSync: d("in_sync",
			"1 when the registered targets equal the resolved addresses, else 0.", "sync"),
		resolved: d("resolved_addresses",
			"Addresses the endpoint resolved to in the last successful resolution.", "sync"),
		addressChanges: d("address_changes_total",
			"Times the resolved address set changed (failovers seen).", "sync"),
		targets: d("targets",
			"Targets in the target group by ELBv2 health state, from the last DescribeTargetHealth.",
			"sync", "state"),
		registrations: d("registrations_total",
			"Targets registered (targets, not API calls).", "sync"),
		deregistrations: d("deregistrations_total",
			"Targets deregistered (targets, not API calls).", "sync"),
		dnsQueries: d("dns_queries_total",
			"DNS resolutions of the endpoint by result: success or the resolver's error kind.", "sync", "result"),
		dnsDuration: d("dns_query_duration_seconds",
			"Duration of one DNS resolution of the endpoint, CNAME chain included.", "sync"),
		convergence: d("convergence_seconds",
			"Time from an address change to its target being registered, and to it being healthy.",
			"sync", "stage"),
		dnsMode: d("dns_mode",
			"1 for the DNS mode the mapping's last answer came in: recursive, authoritative, or fallback "+
				"(authoritative configured, but no name server of the zone could be reached: the recursive servers answered).",
			"sync", "mode"),
		members: d("members",
			"Members of an rds: mapping's source in its last successful membership read, by state: available "+
				"(followed) or unavailable (kept if registered, not added).", "sync", "state"),
		membershipKnown: d("membership_known",
			"1 when the last membership read of an rds: mapping succeeded, 0 while its membership is unknown "+
				"(nothing is deregistered meanwhile).", "sync"),
		membershipErrs: d("membership_refresh_errors_total",
			"Failed membership reads of an rds: mapping (RDS API errors, or a member list of zero).", "sync"),
		records: map[string]*record{},
	}
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
	for _, d := range []*prometheus.Desc{s.syncRuns, s.syncDuration, s.lastSuccess, s.inSync, s.resolved,
		s.addressChanges, s.targets, s.registrations, s.deregistrations, s.dnsQueries, s.dnsDuration, s.convergence,
		s.dnsMode, s.members, s.membershipKnown, s.membershipErrs} {
		ch <- d
	}
}
