package metrics

import (
	"slices"
	"time"
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

var dnsModes = [...]string{DNSModeRecursive, DNSModeAuthoritative, DNSModeFallback}

// DNSSuccess is the result label of a successful DNS query; failures use the resolver's error kind.
const DNSSuccess = "success"

// dnsResults mirror the resolver's kinds (not imported, to keep this package a leaf).
var dnsResults = [...]string{DNSSuccess, "nxdomain", "servfail", "refused", "timeout", "no_address", "cname_loop",
	"chain_too_long", "unreachable", "error"}

// SetDNSMode sets the mapping's DNS mode in use (DNSModeRecursive, DNSModeAuthoritative or DNSModeFallback) to 1
// and the others to 0.
func (m *Metrics) SetDNSMode(sync, mode string) {
	if m == nil {
		return
	}
	m.mappings.update(sync, func(r *record) {
		for i, x := range dnsModes[:] {
			r.dnsMode[i] = 0
			if x == mode {
				r.dnsMode[i] = 1
			}
		}
	})
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

// DNSQuery records one resolution. result is DNSSuccess or the resolver's kind; "" (what resolver.KindOf gives
// for a nil error) counts as DNSSuccess rather than exporting an empty label value.
func (m *Metrics) DNSQuery(sync, result string, d time.Duration) {
	if m == nil {
		return
	}
	if result == "" {
		result = DNSSuccess
	}
	m.mappings.update(sync, func(r *record) {
		if i := slices.Index(dnsResults[:], result); i >= 0 {
			r.dnsQueries[i]++
		} else {
			if r.extraDNS == nil {
				r.extraDNS = map[string]float64{}
			}
			r.extraDNS[result]++
		}
		r.dnsDuration.observe(dnsDurationBuckets[:], seconds(d))
	})
}
