package main_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/elbv2fake"
)

// TestSyncShards: with IPSYNC_SHARD=i/n (or --shard), each of n processes given the same configuration keeps
// exactly the mappings whose target group hashes to its shard; together they cover every mapping once.
func TestSyncShards(t *testing.T) {
	w, env, arns := shardWorld(t)
	checkShards(t, env, arns)
	if len(w.fake.MutatingCalls()) != 0 {
		t.Errorf("--dry-run made mutating calls: %v", w.fake.MutatingCalls())
	}

	if code, out := run(t, env, "sync", "--shard", "3/3"); code != 1 || !strings.Contains(out, "0 to 2") {
		t.Errorf("--shard 3/3: exit %d, want 1 and what a shard may be:\n%s", code, out)
	}
}

// TestStatusAndValidateShards: status and validate take --shard (IPSYNC_SHARD) as run and sync do: each shows or
// checks exactly the mappings of its shard, and validate says how many of the configuration's those are.
func TestStatusAndValidateShards(t *testing.T) {
	w, env, arns := shardWorld(t)
	shown := func(out, name string) bool { return strings.Contains(out, name+"  ") }
	checkShardsOf(t, env, arns, []string{"status"}, shown)
	checked := func(out, name string) bool { return strings.Contains(out, "ok   "+name+":") }
	checkShardsOf(t, env, arns, []string{"validate", "--remote"}, checked)
	if len(w.fake.MutatingCalls()) != 0 {
		t.Errorf("status and validate made mutating calls: %v", w.fake.MutatingCalls())
	}

	owned := 0
	for _, arn := range arns {
		if config.ShardOf(arn, 3) == 1 {
			owned++
		}
	}
	want := fmt.Sprintf("configuration is valid: %d mappings in shard 1/3 (8 in the configuration)", owned)
	if code, out := run(t, append(slices.Clip(env), "IPSYNC_SHARD=1/3"), "validate"); code != 0 || !strings.Contains(out, want) {
		t.Errorf("validate with IPSYNC_SHARD=1/3: exit %d, want 0 and %q:\n%s", code, want, out)
	}
	for _, cmd := range []string{"status", "validate"} {
		if code, out := run(t, env, cmd, "--shard", "3/3"); code != 1 || !strings.Contains(out, "0 to 2") {
			t.Errorf("%s --shard 3/3: exit %d, want 1 and what a shard may be:\n%s", cmd, code, out)
		}
	}
}

// shardWorld is a world with 8 mappings (db0 .. db7), the configuration that holds them, and their target groups.
func shardWorld(t *testing.T) (*world, []string, map[string]string) {
	w := newWorld(t, true)
	var y strings.Builder
	fmt.Fprintf(&y, "dns:\n  servers: [%q]\n  timeout: 500ms\nsyncs:\n", w.dns.Addr())
	arns := map[string]string{}
	for _, g := range w.groups("db", 8) {
		fmt.Fprintf(&y, "  - {name: %s, endpoint: %s, target_group_arn: %s}\n", g.name, g.endpoint, g.arn)
		arns[g.name] = g.arn
	}
	return w, []string{"IPSYNC_CONFIG=" + y.String()}, arns
}

// TestSyncShardsDiscover: with discover:, each shard also finds only the tagged target groups that hash to it.
func TestSyncShardsDiscover(t *testing.T) {
	w := newWorld(t, true)
	arns := map[string]string{}
	for _, g := range w.groups("found", 8) {
		if err := w.direct.AddTags(context.Background(), g.arn, map[string]string{"ipsync:endpoint": g.endpoint}); err != nil {
			t.Fatal(err)
		}
		arns[g.name] = g.arn
	}
	cfg := fmt.Sprintf("discover: {tag_key: \"ipsync:endpoint\", regions: [us-east-1]}\ndns: {servers: [%q], timeout: 500ms}\n", w.dns.Addr())
	tagged := len(w.fake.MutatingCalls()) // the AddTags above
	checkShards(t, []string{"IPSYNC_CONFIG=" + cfg}, arns)
	if calls := w.fake.MutatingCalls()[tagged:]; len(calls) != 0 {
		t.Errorf("--dry-run made mutating calls: %v", calls)
	}
}

// namedGroup is a target group of the fake with an endpoint of its own.
type namedGroup struct{ name, endpoint, arn string }

// groups creates n target groups on the fake, named prefix0, prefix1 ..., each with an endpoint that DNS serves
// with an address of its own.
func (w *world) groups(prefix string, n int) []namedGroup {
	out := make([]namedGroup, 0, n)
	for i := range n {
		name := fmt.Sprintf("%s%d", prefix, i)
		g := namedGroup{name: name, endpoint: name + ".c9abc.us-east-1.rds.test",
			arn: w.fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: name, Port: 5432, VPCID: w.group.VPCID})}
		w.dns.SetA(g.endpoint, 5, fmt.Sprintf("10.0.1.%d", 10+i))
		out = append(out, g)
	}
	return out
}

// checkShards runs `sync --dry-run` as shards 0/3 (--shard), 1/3 and 2/3 (IPSYNC_SHARD) with env, and checks that
// each mapping of arns (name: target group ARN) is synced by exactly one of them, the one its ARN hashes to, and
// that each logs its shard.
func checkShards(t *testing.T, env []string, arns map[string]string) {
	t.Helper()
	synced := func(out, name string) bool { return strings.Contains(out, name+"  ") }
	outs := checkShardsOf(t, env, arns, []string{"sync", "--dry-run"}, synced)
	for i, out := range outs {
		if !strings.Contains(out, `"shard":"`+fmt.Sprintf("%d/3", i)+`"`) {
			t.Errorf("shard %d/3 did not log its shard:\n%s", i, out)
		}
	}
}

// checkShardsOf runs args as shards 0/3 (--shard), 1/3 and 2/3 (IPSYNC_SHARD) with env, and checks that each
// exits 0 and that each mapping of arns is in the output (has(out, name)) of exactly one of them, the one its ARN
// hashes to. It returns the outputs by shard.
func checkShardsOf(t *testing.T, env []string, arns map[string]string, args []string, has func(out, name string) bool) []string {
	t.Helper()
	seen := map[string]int{}
	var outs []string
	for i := range 3 {
		shardArgs, shardEnv := slices.Clone(args), env
		if i == 0 {
			shardArgs = append(shardArgs, "--shard", "0/3")
		} else {
			shardEnv = append(slices.Clip(env), fmt.Sprintf("IPSYNC_SHARD=%d/3", i))
		}
		code, out := run(t, shardEnv, shardArgs...)
		if code != 0 {
			t.Fatalf("%v as shard %d/3: exit %d, want 0:\n%s", args, i, code, out)
		}
		outs = append(outs, out)
		for name, arn := range arns {
			if !has(out, name) {
				continue
			}
			seen[name]++
			if owner := config.ShardOf(arn, 3); owner != i {
				t.Errorf("%v as shard %d/3 took %s, which hashes to shard %d", args, i, name, owner)
			}
		}
	}
	for name := range arns {
		if seen[name] != 1 {
			t.Errorf("%v: %s was taken by %d of 3 shards, want exactly 1", args, name, seen[name])
		}
	}
	return outs
}
