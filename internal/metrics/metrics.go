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
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "ipsync"

// BuildInfo labels ipsync_build_info. Empty Version/Commit become "unknown", empty GoVersion runtime.Version().
type BuildInfo struct{ Version, Commit, GoVersion string }

// Metrics records ipsync's metrics. Its methods are safe for concurrent use and on a nil receiver.
type Metrics struct {
	buildInfo      *prometheus.GaugeVec
	mappings       *mappingSeries // every series labelled sync (mappings.go)
	awsCalls       *prometheus.CounterVec
	awsDuration    *prometheus.HistogramVec
	dnsServer      *prometheus.CounterVec
	budgetWait     *prometheus.HistogramVec
	budgetDeferred *prometheus.CounterVec
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
		mappings: register(reg, newMappingSeries()),
		awsCalls: newCounterVec(reg, "aws_api_calls_total",
			"AWS API call attempts (retries included) by operation and code: OK, the AWS error code, "+
				"Timeout, NetworkError or Canceled.", "operation", "code"),
		awsDuration: newHistogramVec(reg, "aws_api_call_duration_seconds",
			"Duration of one AWS API call attempt (one HTTP round trip).",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "operation"),
		dnsServer: newCounterVec(reg, "dns_server_queries_total",
			"DNS queries sent, one per question to one server (name server lookups included, shared by every mapping "+
				"that follows the name), by mode, server (the name server's host name in authoritative mode, "+
				"\"recursive\" for the configured servers) and result.", "mode", "server", "result"),
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
// the first scrape. It never resets existing values. Recording anything for a mapping creates them too.
func (m *Metrics) Init(sync string) {
	if m == nil {
		return
	}
	m.mappings.get(sync)
}

// Forget deletes every series of a mapping that no longer exists (a configuration reload removed it), so that its
// last in_sync or targets value does not stay behind for alerts to read.
func (m *Metrics) Forget(sync string) {
	if m == nil {
		return
	}
	m.mappings.forget(sync)
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
