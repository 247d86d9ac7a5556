package config

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shard is this process's share of the mappings (--shard i/n): n processes started with shards 0/n .. n-1/n
// split a fleet with no coordinator, each keeping the mappings whose target group ARN hashes to its index.
// The zero value is the whole fleet. Two processes given the same shard are safe, the safety rules hold for
// each of them alone, but every call is made twice.
type Shard struct {
	Index int // 0 <= Index < Count
	Count int // 0 or 1: one process does everything
}

// ParseShard reads "i/n": two decimal numbers, 0 <= i < n.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, ierr := parseCount(is)
	n, nerr := parseCount(ns)
	switch {
	case !ok || ierr != nil || nerr != nil:
		return Shard{}, fmt.Errorf("shard %q: expected i/n, two whole numbers such as 0/3", s)
	case n < 1:
		return Shard{}, fmt.Errorf("shard %q: n is %d; expected 1 or more processes", s, n)
	case i >= n:
		return Shard{}, fmt.Errorf("shard %q: i is %d; expected 0 to %d (shards are counted from 0)", s, i, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// parseCount accepts plain decimal digits only: no sign, space or base prefix.
func parseCount(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a whole number")
	}
	return strconv.Atoi(s)
}

// Owns reports whether the mapping of targetGroupARN belongs to this shard: FNV-1a 64 of the ARN's bytes,
// modulo Count, equals Index. The hash is fixed (it must never change between versions, or two processes of
// different versions would both skip or both take a group) and easy to compute in any language, e.g. for a
// script that checks which task handles a group.
func (s Shard) Owns(targetGroupARN string) bool {
	if s.Count <= 1 {
		return true
	}
	return ShardOf(targetGroupARN, s.Count) == s.Index
}

// ShardOf is the shard, out of count, that handles targetGroupARN.
func ShardOf(targetGroupARN string, count int) int {
	if count <= 1 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(targetGroupARN))
	return int(h.Sum64() % uint64(count)) //nolint:gosec // G115: less than count, an int
}

// String is "i/n", or "" for the zero value.
func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Set parses i/n, so that a *Shard is a flag.Value: fs.Var(&shard, "shard", ...).
func (s *Shard) Set(v string) error {
	p, err := ParseShard(v)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// Owned returns the mappings of syncs that belong to this shard, in order.
func (s Shard) Owned(syncs []Sync) []Sync {
	var out []Sync
	for _, sy := range syncs {
		if s.Owns(sy.TargetGroupARN) {
			out = append(out, sy)
		}
	}
	return out
}
