package engine_test

// availability_zone auto without reading the VPC: ipsync learns from AWS's answers which addresses are outside
// the target group's VPC. The fake enforces AWS's rule (an address inside the VPC takes no zone, one outside it
// only "all"); moto does not, so these tests run on the fake.

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
)

// TestZoneMixedBatch: one answer with an address inside the VPC (A) and one outside it (X). AWS refuses the
// batch; each address is registered alone, A without a zone and X with all, in the same pass. X stays learned:
// removed behind ipsync's back and registered again, it goes out with all at once, in one call.
func TestZoneMixedBatch(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String(), ipX.String())
	eng := e.engine(engine.Options{})
	r := mustOK(t, e.pass(eng))
	wantRegs := []string{"Register [10.0.1.10:5432 172.31.0.10:5432]", "Register [10.0.1.10:5432]", "Register [172.31.0.10:5432]", "Register [172.31.0.10:5432/all]"}
	if regs := e.rec.Calls("Register"); !slices.Equal(regs, wantRegs) {
		t.Fatalf("registrations %v, want %v", regs, wantRegs)
	}
	a, x := nlb.Target{IP: ipA, Port: port}, nlb.Target{IP: ipX, Port: port, AvailabilityZone: "all"}
	if !slices.Equal(r.Registered, []nlb.Target{a, x}) {
		t.Fatalf("report registered %v, want %v with the zones AWS took", r.Registered, []nlb.Target{a, x})
	}
	if live := e.live(); len(live) != 2 || !slices.Contains(live, a) || !slices.Contains(live, x) {
		t.Fatalf("live %v, want %v and %v", live, a, x)
	}
	if e.logs.FilterMessage("AWS takes the address only with this zone; later registrations send it at once").Len() != 1 {
		t.Error("the log does not say what was learned (once, for X)")
	}

	// Both removed behind ipsync's back: the next read registers them again, each with its zone, in one call.
	if err := e.fake.SetTargets(e.group.ARN); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute) // past resync_interval
	e.rec.reset()
	mustOK(t, e.pass(eng))
	if regs := e.rec.Calls("Register"); !slices.Equal(regs, []string{"Register [10.0.1.10:5432 172.31.0.10:5432/all]"}) {
		t.Fatalf("registrations %v: X's learned zone must be sent at once", regs)
	}
}

// TestZoneFromTheGroup: a target the group already lists with zone all (registered before this ipsync started)
// counts as learned: after a failover away and back while it drains, it is registered again with all, at once.
func TestZoneFromTheGroup(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{DrainFor: time.Hour})
	if err := e.direct.Register(t.Context(), e.group.ARN, []nlb.Target{{IP: ipX, Port: port, AvailabilityZone: "all"}}); err != nil {
		t.Fatal(err)
	}
	e.dns.SetA(endpoint, 5, ipX.String())
	s := e.mapping()
	s.DeregisterAfter = 1
	eng := e.engine(engine.Options{}, s)
	mustOK(t, e.pass(eng))
	e.dns.SetA(endpoint, 5, ipA.String())
	if r := mustOK(t, e.pass(eng)); len(r.Deregistered) != 1 {
		t.Fatalf("X must be deregistered: %+v", r)
	}
	e.rec.reset()
	e.dns.SetA(endpoint, 5, ipX.String())
	mustOK(t, e.pass(eng))
	if regs := e.rec.Calls("Register"); !slices.Equal(regs, []string{"Register [172.31.0.10:5432/all]"}) {
		t.Fatalf("registrations %v: the group listed X with zone all, so all must be sent at once", regs)
	}
}

// TestZoneRefusedBothWays: AWS refuses an address without a zone and with all. That is a hard error for the
// mapping naming the address and both of AWS's answers; the address registered before it in the same pass stays,
// and nothing is deregistered (I3).
func TestZoneRefusedBothWays(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	refused := netip.MustParseAddr("10.0.3.30")
	e.dns.SetA(endpoint, 5, ipA.String())
	s := e.mapping()
	s.DeregisterAfter = 1
	eng := e.engine(engine.Options{}, s)
	mustOK(t, e.pass(eng))
	e.fake.SetFault(func(action string, params url.Values) *elbv2fake.Fault {
		for i := 1; action == "RegisterTargets"; i++ {
			switch params.Get(fmt.Sprintf("Targets.member.%d.Id", i)) {
			case "":
				return nil
			case refused.String():
				return &elbv2fake.Fault{Code: "ValidationError", Message: "The IP address '10.0.3.30' is not valid for this target group"}
			}
		}
		return nil
	})
	e.dns.SetA(endpoint, 5, ipB.String(), refused.String())
	e.rec.reset()
	r := e.pass(eng)
	if !engine.IsHard(r.Err()) || !strings.Contains(r.Error, "AWS refuses to register 10.0.3.30:5432") ||
		!strings.Contains(r.Error, "both without an AvailabilityZone") || !strings.Contains(r.Error, "is not valid for this target group") ||
		!strings.Contains(r.Error, "nothing deregistered") {
		t.Fatalf("pass: %q, want a hard error naming 10.0.3.30, AWS's answer, and that nothing was deregistered", r.Error)
	}
	want := []string{"Register [10.0.2.20:5432 10.0.3.30:5432]", "Register [10.0.2.20:5432]", "Register [10.0.3.30:5432]", "Register [10.0.3.30:5432/all]"}
	if regs := e.rec.Calls("Register"); !slices.Equal(regs, want) {
		t.Fatalf("registrations %v, want %v", regs, want)
	}
	if deregs := e.rec.Calls("Deregister"); len(deregs) != 0 {
		t.Fatalf("I3: deregistered %v while a new address was not registered", deregs)
	}
	if !slices.Equal(r.Registered, []nlb.Target{{IP: ipB, Port: port}}) {
		t.Fatalf("report registered %v, want only B (what AWS took before the refusal)", r.Registered)
	}
	e.wantLive(ipA, ipB)
	wantNotReady(t, eng, "10.0.3.30")
}

// TestZoneVPC: availability_zone vpc never sends a zone and never retries with all: an address outside the VPC
// is AWS's ValidationError, a hard error that says what to change, and nothing is deregistered.
func TestZoneVPC(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	s := e.mapping()
	s.DeregisterAfter, s.AvailabilityZone = 1, "vpc"
	eng := e.engine(engine.Options{}, s)
	mustOK(t, e.pass(eng))
	e.rec.reset()
	e.dns.SetA(endpoint, 5, ipX.String())
	r := e.pass(eng)
	if !engine.IsHard(r.Err()) || !strings.Contains(r.Error, "ValidationError") || !strings.Contains(r.Error, "availability_zone") {
		t.Fatalf("pass: %q, want AWS's ValidationError as a hard error pointing at availability_zone", r.Error)
	}
	if muts := e.rec.Mutations(); !slices.Equal(muts, []string{"Register [172.31.0.10:5432]"}) {
		t.Fatalf("mutating calls %v: want the one registration AWS refused, no retry with all, no deregistration", muts)
	}
	e.wantLive(ipA)
}

// TestZoneDryRun: a dry run sends nothing, so it cannot learn a zone (I8): the report says which registrations
// AWS's answer would decide, and a zone already known (all, or the group's) is reported as it would be sent.
func TestZoneDryRun(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String(), ipX.String())
	r := mustOK(t, e.pass(e.engine(engine.Options{DryRun: true})))
	if !slices.Equal(r.Registered, []nlb.Target{{IP: ipA, Port: port}, {IP: ipX, Port: port}}) || !slices.Equal(r.ZoneAtRegistration, []netip.Addr{ipA, ipX}) {
		t.Fatalf("dry run: registered %v, zone at registration %v; want both without a zone, decided at registration", r.Registered, r.ZoneAtRegistration)
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I8: a dry run made mutating calls: %v", muts)
	}
	s := e.mapping()
	s.AvailabilityZone = "all"
	r = mustOK(t, e.pass(e.engine(engine.Options{DryRun: true}, s)))
	if len(r.ZoneAtRegistration) != 0 || r.Registered[0].AvailabilityZone != "all" {
		t.Fatalf("dry run with availability_zone all: %+v, want zone all and nothing left to AWS", r)
	}
}

// TestPublicVPCCIDR: a VPC may use a public CIDR block. ipsync does not read the VPC, so by default (I10) such
// an address is refused before any change, with the hint to list the VPC's CIDR in allowed_cidrs; listed, it is
// registered without a zone, at the first try.
func TestPublicVPCCIDR(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	if err := e.fake.AddVPC(e.group.VPCID, "10.0.0.0/16", "203.0.113.0/24"); err != nil {
		t.Fatal(err)
	}
	public := netip.MustParseAddr("203.0.113.5")
	e.dns.SetA(endpoint, 5, public.String())
	r := e.pass(e.engine(engine.Options{}))
	if !engine.IsHard(r.Err()) || !strings.Contains(r.Error, "outside allowed_cidrs (default: RFC 1918, RFC 6598 and IPv6 ULA)") ||
		!strings.Contains(r.Error, "if the target group's VPC "+e.group.VPCID+" uses a public CIDR block, add the VPC's CIDR to allowed_cidrs") {
		t.Fatalf("pass: %q, want the I10 refusal with the allowed_cidrs hint", r.Error)
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I10: mutating calls %v", muts)
	}
	s := e.mapping()
	s.AllowedCIDRs = []string{"10.0.0.0/16", "203.0.113.0/24"}
	r = mustOK(t, e.pass(e.engine(engine.Options{}, s)))
	if !slices.Equal(r.Registered, []nlb.Target{{IP: public, Port: port}}) || len(e.rec.Calls("Register")) != 1 {
		t.Fatalf("listed in allowed_cidrs: registered %v in %v; want it without a zone, at once", r.Registered, e.rec.Calls("Register"))
	}
}

// TestIPv6VPCCIDR: AWS gives VPCs global unicast IPv6 ranges, never ULA, so with the default allowed_cidrs an
// ipv6 target group's database is refused (I10) with a hint that says so and shows such a CIDR, not the "public
// CIDR block" one; CheckRemote (validate --remote) warns about the ipv6 group until allowed_cidrs lists an IPv6
// range outside ULA. Listed, the address is registered.
func TestIPv6VPCCIDR(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	const vpc, vpcV6 = "vpc-0000000000000abcd", "2600:1f18:1234:5600::/56"
	if err := e.fake.AddVPC(vpc, "10.0.0.0/16", vpcV6); err != nil {
		t.Fatal(err)
	}
	arn := e.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "v6", Port: port, VPCID: vpc, IPAddressType: "ipv6"})
	db := netip.MustParseAddr("2600:1f18:1234:5601::10")
	e.dns.SetAAAA(endpoint, 5, db.String())
	s := e.mapping()
	s.TargetGroupARN = arn
	check := func(s config.Sync) engine.CheckResult {
		cfg := config.Defaults()
		cfg.Syncs = []config.Sync{s}
		return engine.CheckRemote(context.Background(), cfg, e.res, func(context.Context, string, string) (engine.TargetGroup, error) { return e.rec, nil }, nil)[0]
	}
	const warning = "is ipv6, but allowed_cidrs allows no IPv6 range outside ULA (fc00::/7)"

	r := e.pass(e.engine(engine.Options{}, s))
	if !engine.IsHard(r.Err()) || !strings.Contains(r.Error, "AWS VPC IPv6 addresses are global unicast: add the IPv6 CIDR of the target group's VPC "+vpc+" (e.g. 2600:1f18:1234:5600::/56) to allowed_cidrs") ||
		strings.Contains(r.Error, "public CIDR block") {
		t.Fatalf("pass with the default allowed_cidrs: %q, want the I10 refusal with the IPv6 hint", r.Error)
	}
	if c := check(s); c.Err == nil || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], warning) || !strings.Contains(c.Warnings[0], vpc) {
		t.Fatalf("CheckRemote with the default allowed_cidrs: %+v, want the I10 error and the ipv6 warning", c)
	}
	for _, cidrs := range [][]string{{"10.0.0.0/8", "fd00::/8"}, {"::ffff:10.0.0.0/104"}} {
		s.AllowedCIDRs = cidrs
		if c := check(s); len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], warning) {
			t.Fatalf("CheckRemote with allowed_cidrs %v: %+v, want the ipv6 warning", cidrs, c)
		}
	}
	if muts := e.fake.MutatingCalls(); len(muts) != 0 {
		t.Fatalf("I10: mutating calls %v", muts)
	}

	s.AllowedCIDRs = []string{"10.0.0.0/16", vpcV6}
	if c := check(s); c.Err != nil || len(c.Warnings) != 0 {
		t.Fatalf("CheckRemote with the VPC's IPv6 CIDR listed: %+v, want ok and no warning", c)
	}
	if r := mustOK(t, e.pass(e.engine(engine.Options{}, s))); !slices.Equal(r.Registered, []nlb.Target{{IP: db, Port: port}}) {
		t.Fatalf("with the VPC's IPv6 CIDR listed: registered %v, want %v", r.Registered, db)
	}
	// An IPv4 target group gets no such warning.
	s = e.mapping()
	if c := check(s); len(c.Warnings) != 0 {
		t.Fatalf("CheckRemote on an ipv4 group: warnings %v", c.Warnings)
	}
}

// TestZoneRefusedAddressKeepsNoOtherOut: AWS refuses one address of the answer both ways. The others are still
// registered alone in the same pass (a refused address that sorts first must not keep a new writer out); the pass
// is a hard error naming the refused one, and nothing is deregistered (I3).
func TestZoneRefusedAddressKeepsNoOtherOut(t *testing.T) {
	e := newFakeEnv(t, elbv2fake.Options{})
	e.dns.SetA(endpoint, 5, ipA.String())
	eng := e.engine(engine.Options{})
	mustOK(t, e.pass(eng))
	const refused = "10.0.0.5" // sorts before ipB
	e.fake.SetFault(func(action string, v url.Values) *elbv2fake.Fault {
		if action == "RegisterTargets" && v.Get("Targets.member.1.Id") == refused {
			return &elbv2fake.Fault{Code: "ValidationError", Message: "refused " + refused}
		}
		return nil
	})
	e.dns.SetA(endpoint, 5, refused, ipB.String())
	for range 3 {
		r := e.pass(eng)
		if !strings.Contains(r.Error, refused) || !strings.Contains(r.Error, "both without an AvailabilityZone") {
			t.Fatalf("pass error %q, want the refusal of %s", r.Error, refused)
		}
		e.clock.Advance(31 * time.Second)
	}
	if d := e.rec.Calls("Deregister"); len(d) > 0 {
		t.Fatalf("I3: deregistered %v while an address of the answer is refused", d)
	}
	e.wantLive(ipA, ipB)
}
