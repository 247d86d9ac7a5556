package engine_test

import (
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/engine"
)

// TestReadinessStarting: before its first successful pass a mapping is "starting", also when its first passes
// failed softly (a DNS server that needs a moment at start-up), and only a whole readiness window after the start
// without a success turns it into "error (soft)" with "no successful pass in ...".
func TestReadinessStarting(t *testing.T) {
	f := newFaultEnv(t, faultOpts{})
	eng := f.engine(nil)
	wantState := func(want, detail string) {
		t.Helper()
		rs := eng.Readiness()
		if len(rs) != 1 || rs[0].State != want {
			t.Fatalf("Readiness() = %+v, want one mapping %q", rs, want)
		}
		wantNotReady(t, eng, detail)
	}
	wantState(engine.ReadyStarting, "starting, no pass yet")

	f.dns.SetNameFault(endpoint, dnstest.FaultServFail)
	f.dnsDown = true
	f.pass(eng)
	wantState(engine.ReadyStarting, "starting, no successful pass yet")
	if err := eng.Ready(); strings.Contains(err.Error(), "no successful pass in") {
		t.Fatalf("Ready() = %q: a mapping that just started is not one without success for a window", err)
	}
	f.clock.Advance(readinessWindow / 2)
	f.pass(eng)
	wantState(engine.ReadyStarting, "SERVFAIL")

	f.clock.Advance(readinessWindow/2 + 1)
	f.pass(eng)
	wantState(engine.ReadySoft, "no successful pass in")

	f.dnsDown = false
	f.dns.SetNameFault(endpoint, dnstest.FaultNone)
	f.serve(ipA)
	f.converge(eng, 2)
	if err := eng.Ready(); err != nil {
		t.Fatalf("after DNS answers: %v", err)
	}
}
