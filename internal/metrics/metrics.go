// Package metrics holds ipsync's Prometheus metrics, the smithy-go middleware that counts AWS API
// attempts, and the /metrics /healthz /readyz HTTP handler.
//
// Every collector lives on the prometheus.Registerer given to New; nothing is global. The `sync` label is the
// mapping name; IPs, ARNs and endpoint names never become label values. The one host name that does is an
// authoritative name server's (ns-1.awsdns-01.org): a zone has a handful, and which one answers is worth seeing. A nil *Metrics is a valid no-op, so callers
// without metrics need no fake.
package metrics

import (
	"errors"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "ipsync"

// BuildInfo labels ipsync_build_info. Empty Version/Commit become "unknown", empty GoVersion runtime.Version().
type BuildInfo struct{ Version, Commit, GoVersion string }

// Metrics records ipsync's metrics. Its methods are safe for concurrent use and on a nil receiver.
type Metrics struct {
	buildInfo       *prometheus.GaugeVec
	syncRuns        *prometheus.CounterVec
	syncDuration    *prometheus.HistogramVec
	lastSuccess     *prometheus.GaugeVec
	inSync          *prometheus.GaugeVec
	resolved        *prometheus.GaugeVec
	addressChanges  *prometheus.CounterVec
	targets         *prometheus.GaugeVec
	registrations   *prometheus.CounterVec
	deregistrations *prometheus.CounterVec
	dnsQueries      *prometheus.CounterVec
	dnsDuration     *prometheus.HistogramVec
	awsCalls        *prometheus.CounterVec
	awsDuration     *prometheus.HistogramVec
	convergence     *prometheus.HistogramVec
	dnsMode         *prometheus.GaugeVec
	dnsServer       *prometheus.CounterVec
	members         *prometheus.GaugeVec
	membershipKnown *prometheus.GaugeVec
	membershipErrs  *prometheus.CounterVec
	budgetWait      *prometheus.HistogramVec
	budgetDeferred  *prometheus.CounterVec

	mu sync.Mutex
	// extraStates remembers target states outside targetStates() per mapping, so that SetTargets can zero
	// them once they disappear instead of leaving a stale count behind.
	extraStates map[string]map[string]struct{}
}

// New builds the metrics and registers them on reg, then sets ipsync_build_info.
//
// Calling New twice on one registry shares the already registered collectors. A nil reg gives working but
// unexported metrics. Any other registration error cannot happen with this package's fixed names (the promlint
// test registers them all), and there is no error to return in this signature, so it leaves the metric unexported.
func New(reg prometheus.Registerer, info BuildInfo) *Metrics {
	m := &Metrics{
		buildInfo: newGaugeVec(reg, "build_info",
			"Always 1; labels say which ipsync build is running.", "version", "commit", "goversion"),
		syncRuns: newCounterVec(reg, "sync_runs_total",
			"Sync passes by result: unchanged, changed (a target was registered or deregistered) or error.",
			"sync", "result"),
		syncDuration: newHistogramVec(reg, "sync_duration_seconds",
			"Duration of one sync pass (resolve, describe, register, deregister).",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}, "sync"),
		lastSuccess: newGaugeVec(reg, "last_success_timestamp_seconds",
			"Unix time of the last sync pass that did not fail; 0 = none yet.", "sync"),
		inSync: newGaugeVec(reg, "in_sync",
			"1 when the registered targets equal the resolved addresses, else 0.", "sync"),
		resolved: newGaugeVec(reg, "resolved_addresses",
			"Addresses the endpoint resolved to in the last successful resolution.", "sync"),
		addressChanges: newCounterVec(reg, "address_changes_total",
			"Times the resolved address set changed (failovers seen).", "sync"),
		targets: newGaugeVec(reg, "targets",
			"Targets in the target group by ELBv2 health state, from the last DescribeTargetHealth.",
			"sync", "state"),
		registrations: newCounterVec(reg, "registrations_total",
			"Targets registered (targets, not API calls).", "sync"),
		deregistrations: newCounterVec(reg, "deregistrations_total",
			"Targets deregistered (targets, not API calls).", "sync"),
		dnsQueries: newCounterVec(reg, "dns_queries_total",
			"DNS resolutions of the endpoint by result: success or the resolver's error kind.", "sync", "result"),
		dnsDuration: newHistogramVec(reg, "dns_query_duration_seconds",
			"Duration of one DNS resolution of the endpoint, CNAME chain included.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}, "sync"),
		awsCalls: newCounterVec(reg, "aws_api_calls_total",
			"AWS API call attempts (retries included) by operation and code: OK, the AWS error code, "+
				"Timeout, NetworkError or Canceled.", "operation", "code"),
		awsDuration: newHistogramVec(reg, "aws_api_call_duration_seconds",
			"Duration of one AWS API call attempt (one HTTP round trip).",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "operation"),
		// Buckets dense around the goal of TTL + 1 s (2 s for reader endpoints, 6 s for instances) and
		// sparse up to the minutes NLB health checks can take.
		convergence: newHistogramVec(reg, "convergence_seconds",
			"Time from an address change to its target being registered, and to it being healthy.",
			[]float64{0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60, 120, 300, 600}, "sync", "stage"),
		dnsMode: newGaugeVec(reg, "dns_mode",
			"1 for the DNS mode the mapping's last answer came in: recursive, authoritative, or fallback "+
				"(authoritative configured, but no name server of the zone could be reached: the recursive servers answered).",
			"sync", "mode"),
		dnsServer: newCounterVec(reg, "dns_server_queries_total",
			"DNS queries sent, one per question to one server (name server lookups included, shared by every mapping "+
				"that follows the name), by mode, server (the name server's host name in authoritative mode, "+
				"\"recursive\" for the configured servers) and result.", "mode", "server", "result"),
		members: newGaugeVec(reg, "members",
			"Members of an rds: mapping's source in its last successful membership read, by state: available "+
				"(followed) or unavailable (kept if registered, not added).", "sync", "state"),
		membershipKnown: newGaugeVec(reg, "membership_known",
			"1 when the last membership read of an rds: mapping succeeded, 0 while its membership is unknown "+
				"(nothing is deregistered meanwhile).", "sync"),
		membershipErrs: newCounterVec(reg, "membership_refresh_errors_total",
			"Failed membership reads of an rds: mapping (RDS API errors, or a member list of zero).", "sync"),
		budgetWait: newHistogramVec(reg, "aws_budget_wait_seconds",
			"Time an AWS API call attempt waited for ipsync's own API budget (aws.describe_rps, aws.mutate_rps) "+
				"before it was sent, by budget: describe, mutate or rds_describe.",
			[]float64{0, .01, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60}, "budget"),
		budgetDeferred: newCounterVec(reg, "aws_budget_deferred_calls_total",
			"AWS API call attempts that could not go at once and waited for ipsync's own API budget, by budget.",
			"budget"),
	}
	if info.Version == "" {
		info.Version = "unknown"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.GoVersion == "" {
		info.GoVersion = runtime.Version()
	}
	m.buildInfo.WithLabelValues(info.Version, info.Commit, info.GoVersion).Set(1)
	return m
}

// Init creates a mapping's series at their zero value, so rate(), increase() and absent-based alerts work from
// the first scrape. It never resets existing values.
func (m *Metrics) Init(sync string) {
	if m == nil {
		return
	}
	for _, r := range syncResults() {
		m.syncRuns.WithLabelValues(sync, r)
	}
	m.syncDuration.WithLabelValues(sync)
	m.lastSuccess.WithLabelValues(sync)
	m.inSync.WithLabelValues(sync)
	m.resolved.WithLabelValues(sync)
	m.addressChanges.WithLabelValues(sync)
	for _, s := range targetStates() {
		m.targets.WithLabelValues(sync, s)
	}
	m.registrations.WithLabelValues(sync)
	m.deregistrations.WithLabelValues(sync)
	for _, r := range dnsResults() {
		m.dnsQueries.WithLabelValues(sync, r)
	}
	m.dnsDuration.WithLabelValues(sync)
	m.convergence.WithLabelValues(sync, StageRegistered)
	m.convergence.WithLabelValues(sync, StageHealthy)
	for _, mode := range dnsModes() {
		m.dnsMode.WithLabelValues(sync, mode)
	}
}

// Forget deletes every series of a mapping that no longer exists (a configuration reload removed it), so that its
// last in_sync or targets value does not stay behind for alerts to read.
func (m *Metrics) Forget(sync string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"sync": sync}
	m.syncRuns.DeletePartialMatch(labels)
	m.syncDuration.DeletePartialMatch(labels)
	m.lastSuccess.DeletePartialMatch(labels)
	m.inSync.DeletePartialMatch(labels)
	m.resolved.DeletePartialMatch(labels)
	m.addressChanges.DeletePartialMatch(labels)
	m.targets.DeletePartialMatch(labels)
	m.registrations.DeletePartialMatch(labels)
	m.deregistrations.DeletePartialMatch(labels)
	m.dnsQueries.DeletePartialMatch(labels)
	m.dnsDuration.DeletePartialMatch(labels)
	m.convergence.DeletePartialMatch(labels)
	m.dnsMode.DeletePartialMatch(labels)
	m.ForgetMembership(sync)
}

// seconds clamps negative durations to 0: they can only come from a caller bug, and a histogram sum must not
// go down.
func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

func newCounterVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	return register(reg, prometheus.NewCounterVec(
		prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels))
}

func newGaugeVec(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.GaugeVec {
	return register(reg, prometheus.NewGaugeVec(
		prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels))
}

func newHistogramVec(reg prometheus.Registerer, name, help string, buckets []float64,
	labels ...string) *prometheus.HistogramVec {
	return register(reg, prometheus.NewHistogramVec(
		prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels))
}

// register registers c on reg and returns it, or the identical collector a previous New registered there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
