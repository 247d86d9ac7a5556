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

// Values of the result label of ipsync_sync_runs_total.
const (
	ResultUnchanged = "unchanged"
	ResultChanged   = "changed"
	ResultError     = "error"
)

// Values of the stage label of ipsync_convergence_seconds.
const (
	StageRegistered = "registered"
	StageHealthy    = "healthy"
)

// Values of the mode label of ipsync_dns_mode and ipsync_dns_server_queries_total. DNSModeFallback is authoritative
// mode configured but answered by the recursive servers, because no authoritative server could be reached.
const (
	DNSModeRecursive     = "recursive"
	DNSModeAuthoritative = "authoritative"
	DNSModeFallback      = "fallback"
)

// DNSServerRecursive is the server label of ipsync_dns_server_queries_total for queries to the configured
// (recursive) servers, whose addresses must not become label values.
const DNSServerRecursive = "recursive"

func dnsModes() []string { return []string{DNSModeRecursive, DNSModeAuthoritative, DNSModeFallback} }

// DNSSuccess is the result label of a successful DNS query; failures use the resolver's error kind.
const DNSSuccess = "success"

// targetStates are the ELBv2 target health states; each is exported for every known mapping, 0 when none.
func targetStates() []string {
	return []string{"initial", "healthy", "unhealthy", "unhealthy.draining", "unused", "draining", "unavailable"}
}

// syncResults are pre-created by Init so that increase() sees the first error.
func syncResults() []string { return []string{ResultUnchanged, ResultChanged, ResultError} }

// dnsResults mirror the resolver's kinds (not imported, to keep this package a leaf).
func dnsResults() []string {
	return []string{DNSSuccess, "nxdomain", "servfail", "refused", "timeout", "no_address", "cname_loop",
		"chain_too_long", "unreachable", "error"}
}

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

// SetDNSMode sets the mapping's DNS mode in use (DNSModeRecursive, DNSModeAuthoritative or DNSModeFallback) to 1
// and the others to 0.
func (m *Metrics) SetDNSMode(sync, mode string) {
	if m == nil {
		return
	}
	for _, x := range dnsModes() {
		v := 0.0
		if x == mode {
			v = 1
		}
		m.dnsMode.WithLabelValues(sync, x).Set(v)
	}
}

// DNSServerQuery counts one query to one server. server is the authoritative name server's host name without
// the trailing dot, or DNSServerRecursive; result is DNSSuccess (or "") or the resolver's error kind.
func (m *Metrics) DNSServerQuery(mode, server, result string) {
	if m == nil {
		return
	}
	if result == "" {
		result = DNSSuccess
	}
	m.dnsServer.WithLabelValues(mode, server, result).Inc()
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

// Values of the state label of ipsync_members.
const (
	MemberAvailable   = "available"
	MemberUnavailable = "unavailable"
)

// InitMembership creates an rds: mapping's membership series; other mappings have none.
func (m *Metrics) InitMembership(sync string) {
	if m == nil {
		return
	}
	m.members.WithLabelValues(sync, MemberAvailable)
	m.members.WithLabelValues(sync, MemberUnavailable)
	m.membershipKnown.WithLabelValues(sync)
	m.membershipErrs.WithLabelValues(sync)
}

// ForgetMembership deletes a mapping's membership series: it no longer follows an rds: source.
func (m *Metrics) ForgetMembership(sync string) {
	if m == nil {
		return
	}
	labels := prometheus.Labels{"sync": sync}
	m.members.DeletePartialMatch(labels)
	m.membershipKnown.DeletePartialMatch(labels)
	m.membershipErrs.DeletePartialMatch(labels)
}

// MembershipRead records one membership read of an rds: mapping: ok is false when it failed.
func (m *Metrics) MembershipRead(sync string, ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.membershipErrs.WithLabelValues(sync).Inc()
		m.membershipKnown.WithLabelValues(sync).Set(0)
		return
	}
	m.membershipKnown.WithLabelValues(sync).Set(1)
}

// SetMembers sets the members of an rds: mapping's last successful membership read.
func (m *Metrics) SetMembers(sync string, available, unavailable int) {
	if m == nil {
		return
	}
	m.members.WithLabelValues(sync, MemberAvailable).Set(float64(available))
	m.members.WithLabelValues(sync, MemberUnavailable).Set(float64(unavailable))
}

// SyncRun records one pass. Any result but ResultError also sets the last success time to now.
func (m *Metrics) SyncRun(sync, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.syncRuns.WithLabelValues(sync, result).Inc()
	m.syncDuration.WithLabelValues(sync).Observe(seconds(d))
	if result != ResultError {
		m.lastSuccess.WithLabelValues(sync).SetToCurrentTime()
	}
}

// SetInSync sets ipsync_in_sync to 1 or 0.
func (m *Metrics) SetInSync(sync string, in bool) {
	if m == nil {
		return
	}
	v := 0.0
	if in {
		v = 1
	}
	m.inSync.WithLabelValues(sync).Set(v)
}

// SetResolvedAddresses sets how many addresses the endpoint resolved to.
func (m *Metrics) SetResolvedAddresses(sync string, n int) {
	if m == nil {
		return
	}
	m.resolved.WithLabelValues(sync).Set(float64(n))
}

// AddressChange counts one change of the resolved address set.
func (m *Metrics) AddressChange(sync string) {
	if m == nil {
		return
	}
	m.addressChanges.WithLabelValues(sync).Inc()
}

// SetTargets sets the target count of every state: states missing from byState are set to 0. A state ELBv2 may
// add later is exported too, and zeroed once it is gone; a key that does not look like a state is ignored, so a
// caller bug cannot turn an IP or ARN into a label value.
func (m *Metrics) SetTargets(sync string, byState map[string]int) {
	if m == nil {
		return
	}
	known := make(map[string]bool, len(targetStates()))
	for _, s := range targetStates() {
		known[s] = true
		m.targets.WithLabelValues(sync, s).Set(float64(byState[s]))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	extra := m.extraStates[sync]
	for s := range extra {
		if _, ok := byState[s]; !ok {
			m.targets.WithLabelValues(sync, s).Set(0)
		}
	}
	for s, n := range byState {
		if known[s] || !looksLikeState(s) {
			continue
		}
		if extra == nil {
			if m.extraStates == nil {
				m.extraStates = make(map[string]map[string]struct{})
			}
			extra = make(map[string]struct{})
			m.extraStates[sync] = extra
		}
		extra[s] = struct{}{}
		m.targets.WithLabelValues(sync, s).Set(float64(n))
	}
}

// looksLikeState accepts what an ELBv2 state looks like: short, lower-case letters, '.' and '_'.
func looksLikeState(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '.' && r != '_' {
			return false
		}
	}
	return true
}

// Registered counts n targets registered. n <= 0 is ignored (a counter cannot go down).
func (m *Metrics) Registered(sync string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.registrations.WithLabelValues(sync).Add(float64(n))
}

// Deregistered counts n targets deregistered. n <= 0 is ignored.
func (m *Metrics) Deregistered(sync string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.deregistrations.WithLabelValues(sync).Add(float64(n))
}

// DNSQuery records one resolution. result is DNSSuccess or the resolver's kind; "" (what resolver.KindOf gives
// for a nil error) counts as DNSSuccess rather than exporting an empty label value.
func (m *Metrics) DNSQuery(sync, result string, d time.Duration) {
	if m == nil {
		return
	}
	if result == "" {
		result = DNSSuccess
	}
	m.dnsQueries.WithLabelValues(sync, result).Inc()
	m.dnsDuration.WithLabelValues(sync).Observe(seconds(d))
}

// Converged records the time from an address change to stage (StageRegistered or StageHealthy).
func (m *Metrics) Converged(sync, stage string, d time.Duration) {
	if m == nil {
		return
	}
	m.convergence.WithLabelValues(sync, stage).Observe(seconds(d))
}

// Budgets are the values of the budget label of the AWS API budget metrics.
func Budgets() []string { return []string{"describe", "mutate", "rds_describe"} }

// InitBudgets creates the budget series at 0, so that alerts on their rate work from the first scrape.
func (m *Metrics) InitBudgets() {
	if m == nil {
		return
	}
	for _, b := range Budgets() {
		m.budgetWait.WithLabelValues(b)
		m.budgetDeferred.WithLabelValues(b)
	}
}

// BudgetWait records how long one call attempt waited for the API budget; a wait above 0 also counts the
// attempt as deferred.
func (m *Metrics) BudgetWait(budget string, d time.Duration) {
	if m == nil {
		return
	}
	m.budgetWait.WithLabelValues(budget).Observe(seconds(d))
	if d > 0 {
		m.budgetDeferred.WithLabelValues(budget).Inc()
	}
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
