package engine

import (
	"fmt"
	"net/netip"
	"strings"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/resolver"
)

// This file is how the engine asks DNS: the resolver every command builds from dns.mode, and what a mapping
// does with the mode an answer came in.

// NewResolver builds what the daemon, `sync`, `status`, `validate --remote` and the Lambda handler resolve with,
// one instance shared by all the mappings of a process. In recursive mode it asks dns.servers. In authoritative
// mode it asks each endpoint's zone's name servers, found through dns.servers, and falls back to dns.servers per
// name when none of them can be reached. Either way a Coalescer in front keeps the query budget, however many
// mappings follow a name: one query per name per TTL in recursive mode (the servers' cache would answer the same
// until then; within poll.min and poll.max), one per name per poll.min in authoritative mode, which looks for a
// change before the TTL is over. Every query to every server is counted in m (ipsync_dns_server_queries_total).
//
// nameServerAddr is for tests only: it routes the made-up addresses of test name servers to loopback servers
// (dnstest.AddrMap). nil asks port 53 of each name server's address, as on the internet.
func NewResolver(cfg *config.Config, m *metrics.Metrics, nameServerAddr func(netip.Addr) string) (resolver.Lookup, error) {
	rec, err := resolver.New(resolver.Config{Servers: cfg.DNS.Servers, Timeout: cfg.DNS.Timeout, OnQuery: countQuery(m)})
	if err != nil {
		return nil, err
	}
	if cfg.DNS.Mode == config.DNSModeAuthoritative {
		auth := resolver.NewAuthoritative(rec, resolver.AuthoritativeConfig{NameServerAddr: nameServerAddr})
		return resolver.NewCoalescer(resolver.NewFallback(auth, 0), cfg.Poll.Min), nil
	}
	return resolver.NewTTLCoalescer(rec, cfg.Poll.Min, cfg.Poll.Max), nil
}

// countQuery counts each query by mode, server and result. An authoritative name server is labelled by its host
// name; the configured servers, whose addresses must not become label values, are "recursive".
func countQuery(m *metrics.Metrics) func(resolver.Query) {
	if m == nil {
		return nil
	}
	return func(q resolver.Query) {
		server := metrics.DNSServerRecursive
		if q.Mode == resolver.ModeAuthoritative {
			server = strings.TrimSuffix(q.NameServer, ".")
		}
		m.DNSServerQuery(string(q.Mode), server, string(q.Kind())) // "" counts as success
	}
}

// modeOf is the mode an answer came in, as the ipsync_dns_mode label and the report say it.
func modeOf(res resolver.Result) string {
	if res.Fallback != nil {
		return metrics.DNSModeFallback
	}
	return string(res.Mode)
}

// noteMode records the mode of a successful answer: the metric, the report, and one log line when the mapping
// falls back to the recursive servers or comes back from them. The resolver keeps a fallen-back name on the
// recursive servers for a while and then tries its name servers again; a failed retry is not logged again.
// The caller holds m.busy.
func (m *mapping) noteMode(res resolver.Result, rep *Report) {
	mode := modeOf(res)
	rep.DNSMode = mode
	m.e.deps.Metrics.SetDNSMode(m.cfg.Name, mode)
	switch {
	case res.Fallback != nil:
		rep.DNSFallback = res.Fallback.Error()
		if !m.fellBack {
			m.log.Warn("authoritative name servers unreachable: resolving through dns.servers (recursive mode) for this mapping, "+
				"so a change shows only when their cached answer expires; allow DNS (port 53) to the internet to see changes sooner",
				zap.NamedError("cause", res.Fallback), zap.Strings("dns_servers", m.e.cfg.DNS.Servers))
		}
		m.fellBack = true
	case m.fellBack && res.Mode == resolver.ModeAuthoritative:
		m.log.Info("authoritative name servers answer again: back to authoritative mode", zap.String("dns_server", res.Server))
		m.fellBack = false
	}
}

// modeSummary says how an answer was obtained, for `validate --remote`.
func modeSummary(res resolver.Result) string {
	if res.Fallback != nil {
		return fmt.Sprintf("in recursive mode from %s, falling back: %v", res.Server, res.Fallback)
	}
	return fmt.Sprintf("in %s mode from %s", res.Mode, res.Server)
}
