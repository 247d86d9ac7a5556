package cli

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
)

// TestPrintReportZoneAndPartialChange: a dry run says which zones AWS decides at registration (availability_zone
// auto cannot learn them without registering), and a pass that failed after registering some targets does not
// claim that nothing changed.
func TestPrintReportZoneAndPartialChange(t *testing.T) {
	a, x := netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("172.31.0.10")
	var b strings.Builder
	printReport(&b, engine.Report{Sync: "orders", DryRun: true, Registered: []nlb.Target{{IP: a, Port: 5432}, {IP: x, Port: 5432}},
		ZoneAtRegistration: []netip.Addr{a, x}}, false)
	if want := "  zone:         10.0.1.10, 172.31.0.10 decided by AWS at registration"; !strings.Contains(b.String(), want) {
		t.Errorf("dry run report:\n%s\nwant a line %q", b.String(), want)
	}
	b.Reset()
	printReport(&b, engine.Report{Sync: "orders", Error: "AWS refuses to register 10.0.3.30:5432 ...", Registered: []nlb.Target{{IP: a, Port: 5432}}}, false)
	if out := b.String(); !strings.Contains(out, "register:   10.0.1.10:5432") || strings.Contains(out, "nothing changed") ||
		!strings.Contains(out, "error: only the changes above were made") {
		t.Errorf("report of a pass that failed after registering A:\n%s\nwant the registration listed and no \"nothing changed\"", out)
	}
}

// TestPrintReportTTL: the TTL is printed in whole seconds, as DNS tools show it, not as what was left of a cached
// answer's TTL to the nanosecond.
func TestPrintReportTTL(t *testing.T) {
	a := netip.MustParseAddr("10.0.1.10")
	for ttl, want := range map[time.Duration]string{
		4999569277 * time.Nanosecond: "ttl 5s,", 60 * time.Second: "ttl 60s,", 3600 * time.Second: "ttl 3600s,",
		300 * time.Millisecond: "ttl 0s,", 0: "ttl 0s,",
	} {
		var b strings.Builder
		printReport(&b, engine.Report{Sync: "orders", Addresses: []netip.Addr{a}, TTL: ttl}, false)
		if !strings.Contains(b.String(), "dns:          10.0.1.10 ("+want) {
			t.Errorf("TTL %v printed as:\n%s\nwant %q", ttl, b.String(), want)
		}
	}
}
