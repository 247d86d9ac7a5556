package targets_test

import (
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/testutil/awstest"
)

// fakeMaxTargets is the fake's per-group limit; above ChunksOf100's 250 so only TooManyTargets reaches it.
const fakeMaxTargets = 300

func newFakeBackend(t *testing.T) *backend {
	ep := awstest.Fake(t, elbv2fake.Options{DrainFor: time.Hour, MaxTargets: fakeMaxTargets})
	s := ep.Fake
	var vpcs atomic.Int64
	return &backend{
		name: "fake",
		url:  ep.URL,
		newGroup: func(t *testing.T) fixture {
			t.Helper()
			id := fmt.Sprintf("vpc-%017x", vpcs.Add(1))
			if err := s.AddVPC(id, "10.0.0.0/16", "100.64.0.0/16"); err != nil {
				t.Fatal(err)
			}
			return createTargetGroup(t, sdkConfig(t), id)
		},
		calls: func() []call {
			cs := []call{}
			for _, c := range s.Calls() {
				cs = append(cs, call{Action: c.Action, Params: c.Params, Code: c.Code, AccessKeyID: c.AccessKeyID})
			}
			return cs
		},
		resetCalls:  s.ResetCalls,
		drains:      true,
		storesAZ:    true,
		matchesPort: true,
		maxTargets:  fakeMaxTargets,
		setFault: func(fn func(action string) (string, time.Duration, bool)) {
			if fn == nil {
				s.SetFault(nil)
				return
			}
			s.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
				code, delay, ok := fn(action)
				if !ok {
					return nil
				}
				return &elbv2fake.Fault{Code: code, Delay: delay}
			})
		},
	}
}
