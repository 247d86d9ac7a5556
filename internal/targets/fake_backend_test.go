package targets_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/targets"
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

// TestAssumeRoleDeniedNamesAssumeRole: with role_arn, a denied sts:AssumeRole fails the ELBv2 call that needed
// its credentials; the SDK's error wraps both calls, and the fix names sts:AssumeRole and the role's trust policy,
// not the ELBv2 call's permission, which the credentials never got to use.
func TestAssumeRoleDeniedNamesAssumeRole(t *testing.T) {
	ep := awstest.Fake(t, elbv2fake.Options{})
	g := awstest.NewTargetGroup(t, 5432)
	ep.Fake.SetFault(func(action string, _ url.Values) *elbv2fake.Fault {
		if action != "AssumeRole" {
			return nil
		}
		return &elbv2fake.Fault{Status: 403, Code: "AccessDenied", Message: "User: arn:aws:sts::123456789012:assumed-role/ipsync/task " +
			"is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/ipsync-target"}
	})
	fac, err := targets.NewFactory(context.Background(), targets.FactoryOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := fac.For(context.Background(), g.ARN, "arn:aws:iam::123456789012:role/ipsync-target")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Group(context.Background(), g.ARN)
	fix, hard := awserr.Hard(err)
	if !hard || !strings.Contains(fix, "sts:AssumeRole") || !strings.Contains(fix, "trust policy") || strings.Contains(fix, "DescribeTargetGroups") {
		t.Errorf("Group with AssumeRole denied: %v\nHard = %q, %v; want hard, naming sts:AssumeRole and the trust policy", err, fix, hard)
	}
}
