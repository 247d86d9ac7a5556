package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/config"
)

func TestLoadDiscoverAndAWS(t *testing.T) {
	cfg, err := inline(t, "discover:\n  tag_key: ipsync:endpoint\n  regions: [us-east-1, eu-west-1]\n  interval: 2m\n"+
		"  role_arn: arn:aws:iam::123456789012:role/ipsync\naws: {describe_rps: 2.5, mutate_rps: 1}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := config.Discover{TagKey: "ipsync:endpoint", Regions: []string{"us-east-1", "eu-west-1"},
		Interval: 2 * time.Minute, RoleARN: "arn:aws:iam::123456789012:role/ipsync"}
	if !reflect.DeepEqual(cfg.Discover, want) {
		t.Errorf("Discover = %+v, want %+v", cfg.Discover, want)
	}
	if cfg.AWS != (config.AWS{DescribeRPS: 2.5, MutateRPS: 1}) {
		t.Errorf("AWS = %+v", cfg.AWS)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("discovery without syncs must validate: %v", err)
	}
}

func TestDiscoverDefaults(t *testing.T) {
	cfg, err := inline(t, "discover: {tag_key: ipsync:endpoint, regions: [us-east-1]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Discover.Interval != config.DefaultDiscoverInterval || !cfg.Discover.Enabled() {
		t.Errorf("Discover = %+v, want interval %v and enabled", cfg.Discover, config.DefaultDiscoverInterval)
	}
	// Without the blocks, discovery is off and the budget is the default.
	d := config.Defaults()
	if d.Discover.Enabled() || d.AWS.DescribeRate() != config.DefaultDescribeRPS || d.AWS.MutateRate() != config.DefaultMutateRPS {
		t.Errorf("defaults: %+v %+v", d.Discover, d.AWS)
	}
	if got := (config.AWS{DescribeRPS: 7, MutateRPS: 3}); got.DescribeRate() != 7 || got.MutateRate() != 3 {
		t.Errorf("explicit rates: %v %v", got.DescribeRate(), got.MutateRate())
	}
	// The defaults leave AWS's published limits room for the other tools of the account, and respect the floor.
	for _, r := range []struct{ def, limit float64 }{{config.DefaultDescribeRPS, config.AWSDescribeLimit}, {config.DefaultMutateRPS, config.AWSMutateLimit}} {
		if r.def >= r.limit || r.def < config.MinRPS {
			t.Errorf("default %v against limit %v and floor %v", r.def, r.limit, config.MinRPS)
		}
	}
}

func TestDiscoverUnknownKey(t *testing.T) {
	for doc, want := range map[string]string{
		"discover: {tag: x}\n":   `unknown key "tag" in discover (known keys: interval, regions, role_arn, tag_key)`,
		"aws: {describe: 1}\n":   `unknown key "describe" in aws (known keys: describe_rps, mutate_rps)`,
		"aws: {mutate_rps: x}\n": "cannot unmarshal !!str `x` into float64: expected a number of calls per second",
	} {
		_, err := inline(t, validSync+doc)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to contain %q", doc, err, want)
		}
	}
}

func TestValidateDiscoverAndAWS(t *testing.T) {
	const on = "discover:\n  tag_key: ipsync:endpoint\n  regions: [us-east-1]\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"no regions", "discover: {tag_key: ipsync:endpoint}\n", "discover.regions: empty; list the regions"},
		{"bad region", "discover: {tag_key: k, regions: [us-east]}\n", `discover.regions[0] "us-east": expected a region such as us-east-1`},
		{"region twice", "discover: {tag_key: k, regions: [us-east-1, us-east-1]}\n", `discover.regions[1] "us-east-1": listed twice`},
		{"interval below floor", on + "  interval: 30s\n", "discover.interval 30s: expected at least 1m0s"},
		{"interval zero", on + "  interval: 0s\n", "discover.interval 0s: expected at least 1m0s"},
		{"role", on + "  role_arn: arn:aws:iam::123:role/x\n", `discover.role_arn "arn:aws:iam::123:role/x": account ID "123" is not 12 digits`},
		{"aws prefix", "discover: {tag_key: \"aws:cloudformation:stack\", regions: [us-east-1]}\n", `starts with "aws:"`},
		{"own tag", "discover: {tag_key: \"ipsync:port\", regions: [us-east-1]}\n", "is one of ipsync's own tags"},
		{"ownership tag", "discover: {tag_key: \"ipsync:owned:1\", regions: [us-east-1]}\n", "is one of ipsync's own tags"},
		{"tag key character", "discover: {tag_key: \"a,b\", regions: [us-east-1]}\n", `has ','`},
		{"tag key too long", "discover: {tag_key: " + strings.Repeat("k", 129) + ", regions: [us-east-1]}\n", "is 129 characters long"},
		{"describe negative", validSync + "aws: {describe_rps: -1}\n", "aws.describe_rps -1: expected 0 (the default) or a number"},
		{"describe not a number", validSync + "aws: {describe_rps: .nan}\n", "aws.describe_rps NaN"},
		{"describe infinite", validSync + "aws: {describe_rps: .inf}\n", "aws.describe_rps +Inf"},
		{"describe below floor", validSync + "aws: {describe_rps: 0.5}\n", "aws.describe_rps 0.5: expected 0 (the default) or at least 1"},
		{"describe above AWS", validSync + "aws: {describe_rps: 11}\n", "aws.describe_rps 11: expected at most 10, AWS's limit for Describe calls"},
		{"mutate above AWS", validSync + "aws: {mutate_rps: 5}\n", "aws.mutate_rps 5: expected at most 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := inline(t, tc.doc)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			got := problems(t, cfg)
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Errorf("problems:\n  %s\nwant one containing\n  %s", strings.Join(got, "\n  "), tc.want)
			}
		})
	}
}

func TestValidateDiscoverAccepts(t *testing.T) {
	for _, doc := range []string{
		"discover: {tag_key: ipsync:endpoint, regions: [us-east-1, us-gov-west-1, cn-north-1], interval: 1m}\n",
		"discover: {tag_key: \"team/db endpoint=+@_.\", regions: [eu-central-2]}\n",
		validSync + "discover: {tag_key: \"\"}\n", // off: the rest of the block is not checked
		validSync + "aws: {describe_rps: 10, mutate_rps: 4}\n",
		validSync + "aws: {describe_rps: 1, mutate_rps: 1}\n",
		validSync + "aws: {describe_rps: 0, mutate_rps: 0}\n",
	} {
		cfg, err := inline(t, doc)
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if p := problems(t, cfg); p != nil {
			t.Errorf("%q: %q", doc, p)
		}
	}
}
