package config_test

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/config"
)

func TestParseShard(t *testing.T) {
	for in, want := range map[string]config.Shard{"0/1": {0, 1}, "0/3": {0, 3}, "2/3": {2, 3}, "09/10": {9, 10}} {
		got, err := config.ParseShard(in)
		if err != nil || got != want {
			t.Errorf("ParseShard(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if s := got.String(); s != fmt.Sprintf("%d/%d", want.Index, want.Count) {
			t.Errorf("String() = %q", s)
		}
	}
	for in, want := range map[string]string{
		"": "expected i/n", "1": "expected i/n", "a/b": "expected i/n", "-1/3": "expected i/n", "+1/3": "expected i/n",
		" 1/3": "expected i/n", "1/3/4": "expected i/n", "0x1/3": "expected i/n", "1/99999999999999999999": "expected i/n",
		"0/0": "n is 0; expected 1 or more", "3/3": "i is 3; expected 0 to 2", "1/1": "i is 1; expected 0 to 0",
	} {
		_, err := config.ParseShard(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseShard(%q) error = %v, want it to contain %q", in, err, want)
		}
	}
}

// The hash is part of the contract: these values were computed outside Go (FNV-1a 64, offset basis
// 0xcbf29ce484222325, prime 0x100000001b3, over the ARN's bytes), and must never change.
func TestShardOfIsFNV1a64(t *testing.T) {
	const (
		orders  = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef"  // 0x32ea7b0c4b2cb762
		billing = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/billing/89abcdef01234567" // 0x5fc67e7bfabe60ec
	)
	for _, tc := range []struct {
		arn          string
		count, shard int
	}{{orders, 7, 6}, {orders, 3, 0}, {billing, 7, 3}, {billing, 3, 0}, {orders, 1, 0}} {
		if got := config.ShardOf(tc.arn, tc.count); got != tc.shard {
			t.Errorf("ShardOf(%s, %d) = %d, want %d", tc.arn, tc.count, got, tc.shard)
		}
	}
	if !(config.Shard{Index: 6, Count: 7}).Owns(orders) || (config.Shard{Index: 5, Count: 7}).Owns(orders) {
		t.Error("Owns disagrees with ShardOf")
	}
}

// Every group belongs to exactly one shard, and 3,000 groups spread evenly enough that no task carries much more
// than its share.
func TestShardsPartitionTheFleet(t *testing.T) {
	const groups, n = 3000, 4
	counts := make([]int, n)
	for g := range groups {
		arn := fmt.Sprintf("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/db-%d/%016x", g, g*7919)
		owners := 0
		for i := range n {
			if (config.Shard{Index: i, Count: n}).Owns(arn) {
				owners++
				counts[i]++
			}
		}
		if owners != 1 {
			t.Fatalf("%s belongs to %d shards", arn, owners)
		}
	}
	for i, c := range counts {
		if c < groups/n*8/10 || c > groups/n*12/10 {
			t.Errorf("shard %d/%d has %d of %d groups: %v", i, n, c, groups, counts)
		}
	}
	var whole config.Shard
	if !whole.Owns("anything") || whole.String() != "" {
		t.Error("the zero Shard must own every group")
	}
}

func TestShardIsAFlag(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var s config.Shard
	fs.Var(&s, "shard", "i/n")
	if err := fs.Parse([]string{"--shard", "1/2"}); err != nil || s != (config.Shard{Index: 1, Count: 2}) {
		t.Errorf("--shard 1/2: %+v, %v", s, err)
	}
	if err := fs.Parse([]string{"--shard", "2/2"}); err == nil {
		t.Error("--shard 2/2 accepted")
	}
}

func TestShardOwnedSplitsMappings(t *testing.T) {
	var syncs []config.Sync
	for i := range 30 {
		s := config.DefaultSync()
		s.Name = fmt.Sprintf("db%d", i)
		s.TargetGroupARN = fmt.Sprintf("arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/db%d/%016x", i, i)
		syncs = append(syncs, s)
	}
	if got := (config.Shard{}).Owned(syncs); len(got) != len(syncs) {
		t.Errorf("the zero shard owns %d of %d mappings", len(got), len(syncs))
	}
	seen := map[string]int{}
	for i := range 3 {
		sh := config.Shard{Index: i, Count: 3}
		for _, s := range sh.Owned(syncs) {
			if !sh.Owns(s.TargetGroupARN) {
				t.Errorf("shard %v kept %s, which it does not own", sh, s.Name)
			}
			seen[s.Name]++
		}
	}
	for _, s := range syncs {
		if seen[s.Name] != 1 {
			t.Errorf("%s is kept by %d of 3 shards, want exactly 1", s.Name, seen[s.Name])
		}
	}
}
