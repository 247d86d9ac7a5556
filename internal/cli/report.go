package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
)

// printReports writes pass reports for people or as JSON.
func printReports(w io.Writer, output string, reports []engine.Report, status bool) {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Syncs []engine.Report `json:"syncs"`
		}{reports})
		return
	}
	for _, r := range reports {
		printReport(w, r, status)
	}
}

// printReport writes one mapping's pass for people. With status, it is the state found and what the next pass
// would change.
func printReport(w io.Writer, r engine.Report, status bool) {
	fmt.Fprintf(w, "%s  %s -> %s\n", r.Sync, r.Endpoint, r.TargetGroupARN)
	if r.Error != "" {
		fmt.Fprintf(w, "  error:        %s\n", r.Error)
	}
	if len(r.Addresses) > 0 {
		fmt.Fprintf(w, "  dns:          %s (ttl %s, via %s, server %s, %s mode)\n", joinAddrs(r.Addresses), ttlText(r.TTL), strings.Join(r.Chain, " -> "), r.Server, r.DNSMode)
	}
	if r.DNSFallback != "" {
		fmt.Fprintf(w, "  dns mode:     fallback to recursive (dns.servers): %s\n", r.DNSFallback)
	}
	if len(r.Sources) > 1 || len(r.Sources) == 1 && r.Sources[0].InstanceID != "" {
		for _, s := range r.Sources {
			fmt.Fprintf(w, "  source:       %s\n", describeSourceReport(s))
		}
	}
	if status || r.Error == "" {
		fmt.Fprintf(w, "  targets:      %s\n", joinHealth(r.Targets))
	}
	verb := changeVerb(r, status)
	if len(r.Registered) > 0 {
		fmt.Fprintf(w, "  %sregister:   %s\n", verb, joinTargets(r.Registered))
	}
	if len(r.ZoneAtRegistration) > 0 {
		fmt.Fprintf(w, "  zone:         %s decided by AWS at registration (availability_zone auto: none inside the target group's VPC, all outside it)\n",
			joinAddrs(r.ZoneAtRegistration))
	}
	if len(r.Deregistered) > 0 {
		fmt.Fprintf(w, "  %sderegister: %s\n", verb, joinTargets(r.Deregistered))
	}
	if len(r.Waiting) > 0 {
		fmt.Fprintf(w, "  waiting:      %s (stale; deregistered after deregister_after resolutions without it)\n", joinAddrs(r.Waiting))
	}
	if len(r.Kept) > 0 {
		fmt.Fprintf(w, "  kept:         %s (stale, not registered by ipsync; prune is false)\n", joinAddrs(r.Kept))
	}
	if len(r.Held) > 0 {
		fmt.Fprintf(w, "  held:         %s (stale for now, but a source that is unknown or not available stands for it)\n", joinAddrs(r.Held))
	}
	fmt.Fprintf(w, "  result:       %s\n", reportState(r))
}

// ttlText is a TTL as DNS tools show it, in whole seconds: what is left of a cached answer's TTL is a fraction
// ("4.999569277s") that says nothing more.
func ttlText(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(d.Round(time.Second)/time.Second))
}

// changeVerb prefixes the register and deregister lines: "would " for a dry run, "next pass would " in status
// when the next pass would change the group.
func changeVerb(r engine.Report, status bool) string {
	verb := ""
	if r.DryRun && !status {
		verb = "would "
	}
	if status && r.Changed() {
		verb = "next pass would "
	}
	return verb
}

// reportState is the result line of one mapping's pass.
func reportState(r engine.Report) string {
	state := "in sync"
	switch {
	case r.Error != "" && len(r.Sources) > 0 && len(r.Addresses) > 0:
		state = "error: some sources are unknown; what they stood for was kept"
	case r.Error != "" && r.Changed() && !r.DryRun:
		state = "error: only the changes above were made, nothing else" // e.g. an address AWS refused after others were registered
	case r.Error != "":
		state = "error: nothing changed"
	case r.Changed() && r.DryRun:
		state = "out of sync"
	case r.Changed():
		state = "changed"
	case !r.InSync:
		state = "converging"
	}
	return state
}

// describeSourceReport is one source of a mapping on one line: "orders-2 (reader, available) orders-2.c9.rds.amazonaws.com: answered 10.0.1.5".
func describeSourceReport(s engine.SourceReport) string {
	var b strings.Builder
	if s.InstanceID != "" {
		fmt.Fprintf(&b, "%s (%s, %s) ", s.InstanceID, s.Role, cmp.Or(s.Status, "not described"))
	}
	fmt.Fprintf(&b, "%s: %s", cmp.Or(s.Name, "no endpoint"), s.State)
	if len(s.Addresses) > 0 {
		b.WriteString(" " + joinAddrs(s.Addresses))
	}
	if s.Error != "" {
		b.WriteString(" (" + s.Error + ")")
	}
	return b.String()
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func joinTargets(ts []nlb.Target) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

func joinHealth(hs []nlb.TargetHealth) string {
	if len(hs) == 0 {
		return "none"
	}
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.Target.String() + " " + h.State
	}
	return strings.Join(s, ", ")
}
