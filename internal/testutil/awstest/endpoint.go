package awstest

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/targets"
	"github.com/ipsync/ipsync/internal/testutil/motoserver"
)

// Endpoint is an AWS endpoint started for one test, which the SDK's standard configuration points at for the
// rest of the test (motoserver.SetAWSEnv): child processes and targets.NewFactory reach it as they would AWS.
type Endpoint struct {
	URL  string
	Fake *elbv2fake.Server // nil on moto; tests that read the wire log or inject faults need the fake
}

// Moto starts moto_server for the test (skipped when it is not installed; see motoserver.Start).
func Moto(t testing.TB) Endpoint {
	t.Helper()
	url := motoserver.Start(t)
	motoserver.SetAWSEnv(t, url)
	return Endpoint{URL: url}
}

// Fake starts our ELBv2 fake with opts for the test.
func Fake(t testing.TB, opts elbv2fake.Options) Endpoint {
	t.Helper()
	fake := elbv2fake.Start(t, opts)
	motoserver.SetAWSEnv(t, fake.URL())
	return Endpoint{URL: fake.URL(), Fake: fake}
}

// Backends runs fn as the subtests "moto" and "fake", each on its own endpoint, so that one behaviour is
// checked against both emulators.
func Backends(t *testing.T, fn func(t *testing.T, ep Endpoint)) {
	t.Run("moto", func(t *testing.T) { fn(t, Moto(t)) })
	t.Run("fake", func(t *testing.T) { fn(t, Fake(t, elbv2fake.Options{})) })
}

// Client is the production client for the target group arn, built by targets.NewFactory with opts from the
// standard configuration. opts.MaxAttempts defaults to 2 here: enough to see a retry, few enough to keep a
// failing test short. Tests use it to seed and read a group behind the engine's back, or as the engine's seam.
func Client(t testing.TB, arn string, opts targets.FactoryOptions) *targets.Client {
	t.Helper()
	opts.MaxAttempts = cmp.Or(opts.MaxAttempts, 2)
	factory, err := targets.NewFactory(context.Background(), opts)
	if err != nil {
		t.Fatalf("targets factory: %v", err)
	}
	c, err := factory.For(context.Background(), arn, "")
	if err != nil {
		t.Fatalf("client for %s: %v", arn, err)
	}
	return c
}

// Live returns the target group's non-draining targets as c reads them: what a test checks after a pass.
func Live(t testing.TB, c *targets.Client, arn string) []nlb.Target {
	t.Helper()
	hs, err := c.Health(context.Background(), arn)
	if err != nil {
		t.Fatalf("reading %s: %v", arn, err)
	}
	var out []nlb.Target
	for _, h := range hs {
		if !h.Draining() {
			out = append(out, h.Target)
		}
	}
	return out
}

// LiveAddrs returns the addresses of Live, sorted.
func LiveAddrs(t testing.TB, c *targets.Client, arn string) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, h := range Live(t, c, arn) {
		out = append(out, h.IP)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
