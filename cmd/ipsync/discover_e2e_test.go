package main_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/ownership"
	"github.com/ipsync/ipsync/internal/testutil"
)

// TestDaemonDiscovers (issue 12): the built daemon, configured with discover: and no syncs:, finds a tagged target
// group on moto, fills it, records what it registered on the group's tags (prune: false from the group's own
// tag), follows a failover while leaving a foreign target, and once the tag is removed (picked up at SIGHUP)
// stops the mapping and touches the group no more.
func TestDaemonDiscovers(t *testing.T) {
	const a, b, c, foreign = "10.0.1.10", "10.0.2.20", "10.0.3.30", "10.0.9.9"
	w := newWorld(t, false)
	ctx := context.Background()
	if err := w.direct.Register(ctx, w.group.ARN, []nlb.Target{{IP: netip.MustParseAddr(foreign), Port: 5432}}); err != nil {
		t.Fatal(err)
	}
	if err := w.direct.AddTags(ctx, w.group.ARN, map[string]string{"ipsync:endpoint": endpoint, "ipsync:prune": "false"}); err != nil {
		t.Fatal(err)
	}
	w.dns.SetA(endpoint, 1, a)
	path := filepath.Join(t.TempDir(), "ipsync.yaml")
	cfg := fmt.Sprintf(`discover: {tag_key: "ipsync:endpoint", regions: [us-east-1], interval: 1m}
dns: {servers: [%q], timeout: 500ms}
poll: {min: 1s, max: 30s}
`, w.dns.Addr())
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startDaemon(t, path)

	w.waitLive(20*time.Second, a, foreign)
	testutil.Eventually(t, 10*time.Second, "the group's tags record A as ipsync's", func() bool {
		tags, err := w.direct.Tags(ctx, w.group.ARN)
		owned, derr := ownership.Decode(tags)
		return err == nil && derr == nil && slices.Equal(owned, []netip.AddrPort{netip.MustParseAddrPort(a + ":5432")})
	})

	w.dns.SetA(endpoint, 1, b)
	w.waitLive(20*time.Second, b, foreign) // A was ipsync's: deregistered; the foreign target stays (I7)

	if err := w.direct.RemoveTags(ctx, w.group.ARN, []string{"ipsync:endpoint"}); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, "the untagged group's mapping is removed", func() bool {
		return strings.Contains(p.out.String(), `"msg":"SIGHUP: configuration reloaded"`) && strings.Contains(p.out.String(), `"removed":["`)
	})
	w.dns.SetA(endpoint, 1, c)
	time.Sleep(4 * time.Second) // several TTLs
	if got := w.live(); !slices.Equal(got, []netip.Addr{netip.MustParseAddr(b), netip.MustParseAddr(foreign)}) {
		t.Fatalf("the untagged group was touched: %v\n%s", got, p.out.String())
	}
}
