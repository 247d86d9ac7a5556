package engine_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
)

// The I10 fuzz test runs whole passes on in-memory doubles, so that thousands of answers take a second: for any
// answer with an address that cannot be a database's, the pass makes no Register or Deregister call and fails
// hard; an answer of allowed addresses only is never refused for I10. The double enforces AWS's zone rule, so
// the same passes check the zone each availability_zone policy ends up with, and that a registration AWS
// refuses deregisters nothing (I3).

var (
	fuzzVPC       = netip.MustParsePrefix("10.0.0.0/16")
	fuzzForbidden = []netip.Addr{
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("169.254.169.254"),
		netip.MustParseAddr("224.0.0.251"), netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("::1"), netip.MustParseAddr("::"),
		netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::1"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:127.0.0.1"), netip.MustParseAddr("100.128.0.1"), netip.MustParseAddr("172.32.0.1"),
	}
	fuzzAllowed = []netip.Addr{
		netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.200.0.1"), netip.MustParseAddr("172.16.0.1"),
		netip.MustParseAddr("172.31.255.254"), netip.MustParseAddr("192.168.1.1"), netip.MustParseAddr("100.64.0.1"),
		netip.MustParseAddr("100.127.255.254"), netip.MustParseAddr("fd00::10"), netip.MustParseAddr("fc00::1"),
	}
)

// databaseAddr is the test's own statement of I10's default: a unicast address, not loopback, link-local or
// unspecified, inside RFC 1918, RFC 6598 or fc00::/7. The VPC's own CIDRs are not in the default.
func databaseAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() || a == netip.MustParseAddr("255.255.255.255") {
		return false
	}
	for _, p := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}

// fuzzAnswer decodes an answer: per address a kind byte, then four bytes.
func fuzzAnswer(data []byte) []netip.Addr {
	var out []netip.Addr
	for len(data) >= 5 && len(out) < 8 {
		k, b := data[0], [4]byte(data[1:5])
		data = data[5:]
		switch k % 5 {
		case 0:
			out = append(out, fuzzForbidden[int(b[0])%len(fuzzForbidden)])
		case 1:
			out = append(out, fuzzAllowed[int(b[0])%len(fuzzAllowed)])
		case 2:
			out = append(out, netip.AddrFrom4(b))
		case 3: // near the edges of the private ranges
			out = append(out, netip.AddrFrom4([4]byte{[]byte{10, 172, 192, 100, 169}[b[0]%5], b[1], b[2], b[3]}))
		case 4:
			var v6 [16]byte
			v6[0], v6[1], v6[14], v6[15] = []byte{0xfc, 0xfd, 0xfe, 0xff, 0x20, 0x00}[b[0]%6], b[1], b[2], b[3]
			out = append(out, netip.AddrFrom16(v6))
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// memGroup is an in-memory ip target group in fuzzVPC holding 10.0.1.10; it counts mutating calls. Like AWS, it
// refuses a whole registration with ValidationError when an address inside the VPC carries AvailabilityZone all
// or one outside it does not.
type memGroup struct {
	mu        sync.Mutex
	current   []nlb.TargetHealth
	mutations int
}

func (g *memGroup) Group(context.Context, string) (targets.Group, error) {
	return targets.Group{TargetType: "ip", Protocol: "TCP", VPCID: "vpc-fuzz", IPAddressType: "ipv4", Port: port}, nil
}

func (g *memGroup) Health(context.Context, string) ([]nlb.TargetHealth, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.current), nil
}

func (g *memGroup) Register(_ context.Context, _ string, ts []nlb.Target) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mutations++
	for _, t := range ts {
		if fuzzVPC.Contains(t.IP) != (t.AvailabilityZone == "") {
			return &smithy.GenericAPIError{Code: "ValidationError", Message: "zone " + t.AvailabilityZone + " for " + t.IP.String()}
		}
	}
	for _, t := range ts {
		g.current = append(g.current, nlb.TargetHealth{Target: t, State: nlb.StateInitial})
	}
	return nil
}

func (g *memGroup) Deregister(_ context.Context, _ string, ts []nlb.Target) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mutations++
	g.current = slices.DeleteFunc(g.current, func(h nlb.TargetHealth) bool { return slices.Contains(ts, h.Target) })
	return nil
}

// The fuzzed mappings prune: they never touch the ownership record.
func (g *memGroup) Tags(context.Context, string) (map[string]string, error) { return nil, nil }
func (g *memGroup) AddTags(context.Context, string, map[string]string) error {
	return errors.New("memGroup: no ownership record")
}
func (g *memGroup) RemoveTags(context.Context, string, []string) error {
	return errors.New("memGroup: no ownership record")
}

// fixedAnswer resolves every name to addrs.
type fixedAnswer []netip.Addr

func (f fixedAnswer) Resolve(context.Context, string, resolver.Family) (resolver.Result, error) {
	return resolver.Result{Addrs: f, TTL: 5 * time.Second}, nil
}

// checkForbiddenAnswer runs one pass on answer over a group holding 10.0.1.10 (stale after one resolution, so a
// pass that went ahead would deregister it) with every availability_zone policy.
func checkForbiddenAnswer(t *testing.T, answer []netip.Addr) {
	if len(answer) == 0 {
		return // the resolver never succeeds with no address
	}
	old := netip.MustParseAddr("10.0.1.10")
	refused := slices.ContainsFunc(answer, func(a netip.Addr) bool { return !databaseAddr(a) })
	for _, az := range []string{"auto", "all", "vpc"} {
		g := &memGroup{current: []nlb.TargetHealth{{Target: nlb.Target{IP: old, Port: port}, State: nlb.StateHealthy}}}
		s := config.DefaultSync()
		s.Name, s.Endpoint, s.AvailabilityZone, s.DeregisterAfter = "orders", endpoint, az, 1
		s.TargetGroupARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef"
		cfg := config.Defaults()
		cfg.Syncs = []config.Sync{s}
		eng := engine.New(cfg, engine.Deps{
			Resolver: fixedAnswer(answer),
			Clients:  func(context.Context, string, string) (engine.TargetGroup, error) { return g, nil },
		}, engine.Options{})
		r := eng.RunOnce(context.Background())[0]
		// AWS refuses a new address the policy sends the wrong way: all refuses one inside the VPC, vpc one
		// outside it; auto learns the zone of each.
		wrongZone := slices.ContainsFunc(answer, func(a netip.Addr) bool {
			return a != old && (az == "all" && fuzzVPC.Contains(a) || az == "vpc" && !fuzzVPC.Contains(a))
		})
		switch {
		case refused && (g.mutations != 0 || !engine.IsHard(r.Err())):
			t.Fatalf("I10: answer %v (availability_zone %s): %d mutating calls, error %v; want none and a hard error", answer, az, g.mutations, r.Err())
		case refused:
		case wrongZone && !engine.IsHard(r.Err()):
			t.Fatalf("answer %v (availability_zone %s): AWS refused a zone, want a hard error, got %v", answer, az, r.Err())
		case wrongZone && !slices.Contains(answer, old) && !slices.ContainsFunc(g.current, func(h nlb.TargetHealth) bool { return h.IP == old }):
			t.Fatalf("I3: answer %v (availability_zone %s): %v deregistered although a registration failed", answer, az, old)
		case !wrongZone && r.Err() != nil:
			t.Fatalf("answer %v of database addresses (availability_zone %s) refused: %v", answer, az, r.Err())
		case !wrongZone:
			for _, a := range answer {
				want := ""
				if !fuzzVPC.Contains(a) {
					want = "all"
				}
				if !slices.ContainsFunc(g.current, func(h nlb.TargetHealth) bool { return h.IP == a && h.AvailabilityZone == want }) {
					t.Fatalf("answer %v (availability_zone %s): %v not registered with zone %q: %v", answer, az, a, want, g.current)
				}
			}
		}
	}
}

func FuzzForbiddenAnswerChangesNothing(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // 10.0.1.10 and 127.0.0.1
	f.Add([]byte{1, 3, 0, 0, 0})
	f.Add([]byte{2, 8, 8, 8, 8, 1, 5, 0, 0, 0})
	f.Add([]byte{3, 1, 16, 0, 1, 3, 3, 64, 0, 1, 3, 4, 254, 1, 1})
	f.Add([]byte{4, 0, 1, 2, 3, 4, 3, 1, 2, 3, 4, 2, 0, 0, 0})
	f.Add([]byte{1, 1, 0, 0, 0, 3, 0, 0, 5, 5})                // 10.200.0.1 (outside the VPC) and 10.0.5.5 (inside)
	f.Add([]byte{1, 1, 0, 0, 0, 3, 0, 0, 5, 5, 0, 5, 0, 0, 0}) // the same with 8.8.8.8: nothing registered
	f.Add([]byte{1, 1, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0, 0, 0, 0}) // 10.200.0.1, 172.16.0.1 (outside) and 10.0.1.10
	f.Fuzz(func(t *testing.T, data []byte) { checkForbiddenAnswer(t, fuzzAnswer(data)) })
}

// TestForbiddenAnswersSeeded runs the fuzz property over many pseudo-random answers in the normal suite.
func TestForbiddenAnswersSeeded(t *testing.T) {
	seed := uint64(0x2545f4914f6cdd1d)
	for range 3000 {
		data := make([]byte, 1+int(seed%4)*5)
		for j := range data {
			seed ^= seed << 13
			seed ^= seed >> 7
			seed ^= seed << 17
			data[j] = byte(seed)
		}
		checkForbiddenAnswer(t, fuzzAnswer(data))
	}
}
