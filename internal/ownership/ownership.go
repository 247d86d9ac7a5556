// Package ownership records, on the target group itself, which targets ipsync registered there, so that a mapping
// with prune: false remembers what it may deregister (I7) across restarts, and a second daemon or the Lambda
// reads the same answer.
//
// The record is one or more ELBv2 tags: Key, then Key:1, Key:2 ... each value at most MaxValueLen characters.
// A value lists targets grouped by port, groups separated by a space, addresses by '+':
//
//	5432=10.0.1.5+10.0.2.7 6432=fd00::1
//
// Only characters AWS allows in tag values are used (digits, letters, '.', ':', '=', '+', ' '). Within a group,
// addresses are sorted; groups are sorted by port. Reading is strict: a record that does not parse, for example
// one edited by hand, means ipsync owns nothing in that group, and Decode says why so the caller can log it.
// Owning too little is safe (a stale target stays); owning too much could remove someone else's target.
package ownership

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Key is the first tag of the record; the others are Key:1, Key:2, ...
const Key = "ipsync:owned"

// MaxValueLen is AWS's limit on a tag value, in characters.
const MaxValueLen = 256

// MaxTags bounds the tags one record may use, out of the 50 a target group may carry: about 160 IPv4 or 60 IPv6
// targets, far more than a database has.
const MaxTags = 10

// TagKey is the key of the record's i-th tag (0 = Key).
func TagKey(i int) string {
	if i == 0 {
		return Key
	}
	return Key + ":" + strconv.Itoa(i)
}

// IsKey reports whether key belongs to the record: Key, or Key:N for a decimal N of 1 or more (no leading zero).
func IsKey(key string) bool {
	if key == Key {
		return true
	}
	n, ok := strings.CutPrefix(key, Key+":")
	return ok && n != "" && n[0] != '0' && strings.Trim(n, "0123456789") == ""
}

// inRecordSpace reports whether key is Key or starts with "Key:": the record's tags, and hand-made look-alikes.
func inRecordSpace(key string) bool { return key == Key || strings.HasPrefix(key, Key+":") }

// Encode returns the tags recording owned (order and duplicates do not matter): none for an empty set. It fails
// when the record needs more than MaxTags tags, or a target is not a plain IP address and port.
func Encode(owned []netip.AddrPort) (map[string]string, error) {
	targets, err := normalize(owned)
	if err != nil {
		return nil, err
	}
	var values []string
	var cur strings.Builder
	lastPort := -1
	for _, t := range targets {
		addr := t.Addr().String()
		// Continue the port's group with "+addr", or open a new group with " port=addr".
		piece := "+" + addr
		if int(t.Port()) != lastPort {
			piece = " " + strconv.Itoa(int(t.Port())) + "=" + addr
		}
		if cur.Len() > 0 && cur.Len()+len(piece) > MaxValueLen {
			values = append(values, cur.String())
			cur.Reset()
			piece = strconv.Itoa(int(t.Port())) + "=" + addr // a new tag opens its group again
		} else if cur.Len() == 0 {
			piece = strings.TrimPrefix(piece, " ")
		}
		cur.WriteString(piece)
		lastPort = int(t.Port())
	}
	if cur.Len() > 0 {
		values = append(values, cur.String())
	}
	if len(values) > MaxTags {
		return nil, fmt.Errorf("recording %d owned targets takes %d tags, more than the %d allowed", len(targets), len(values), MaxTags)
	}
	tags := make(map[string]string, len(values))
	for i, v := range values {
		tags[TagKey(i)] = v
	}
	return tags, nil
}

// normalize returns the targets sorted, without duplicates, IPv4-mapped IPv6 addresses as IPv4.
func normalize(owned []netip.AddrPort) ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, len(owned))
	for _, t := range owned {
		a := t.Addr().Unmap()
		if !a.IsValid() || a.Zone() != "" || t.Port() == 0 {
			return nil, fmt.Errorf("owned target %v is not an IP address (without zone) and a port 1-65535", t)
		}
		out = append(out, netip.AddrPortFrom(a, t.Port()))
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int {
		return cmp.Or(cmp.Compare(a.Port(), b.Port()), a.Addr().Compare(b.Addr()))
	})
	return slices.Compact(out), nil
}

// Decode reads the record from a target group's tags (other tags are ignored) and returns the owned targets,
// sorted. A missing record owns nothing. A record that does not parse returns nil, owning nothing, and an error
// naming the tag and what is wrong with it.
func Decode(tags map[string]string) ([]netip.AddrPort, error) {
	var owned []netip.AddrPort
	for _, key := range slices.Sorted(maps.Keys(tags)) {
		if !inRecordSpace(key) {
			continue
		}
		if !IsKey(key) {
			return nil, fmt.Errorf("tag %q looks like ipsync's ownership record but is not %s or %s:N; "+
				"treating the target group as owning nothing: remove the tag", key, Key, Key)
		}
		ts, err := decodeValue(tags[key])
		if err != nil {
			return nil, fmt.Errorf("tag %s=%q does not parse (%v); treating the target group as owning nothing: "+
				"ipsync writes it again at its next registration, and until then deregisters none of the targets it registered earlier", key, tags[key], err)
		}
		owned = append(owned, ts...)
	}
	owned, err := normalize(owned)
	if err != nil { // decodeValue already refused anything normalize would
		return nil, err
	}
	if len(owned) == 0 {
		return nil, nil
	}
	return owned, nil
}

func decodeValue(v string) ([]netip.AddrPort, error) {
	if len(v) > MaxValueLen {
		return nil, fmt.Errorf("%d characters, more than a tag value holds", len(v))
	}
	var out []netip.AddrPort
	for _, group := range strings.Fields(v) {
		ps, addrs, ok := strings.Cut(group, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not PORT=ADDRESS+ADDRESS", group)
		}
		port, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || port == 0 || ps[0] == '0' {
			return nil, fmt.Errorf("port %q is not 1-65535", ps)
		}
		for _, as := range strings.Split(addrs, "+") {
			a, err := netip.ParseAddr(as)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an IP address", as)
			}
			out = append(out, netip.AddrPortFrom(a, uint16(port)))
		}
	}
	return out, nil
}

// Changes returns the tag writes that turn the record in current (a target group's tags) into one of owned:
// set for AddTags (which overwrites), remove for RemoveTags; both empty when the record already says so. Record
// tags that are not part of the new record, hand-made ones included, are removed.
func Changes(current map[string]string, owned []netip.AddrPort) (set map[string]string, remove []string, err error) {
	want, err := Encode(owned)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range want {
		if old, ok := current[k]; !ok || old != v {
			if set == nil {
				set = map[string]string{}
			}
			set[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(current)) {
		if _, keep := want[k]; !keep && inRecordSpace(k) {
			remove = append(remove, k)
		}
	}
	return set, remove, nil
}
