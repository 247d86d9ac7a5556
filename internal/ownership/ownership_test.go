package ownership_test

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/ownership"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestEncodeFormat(t *testing.T) {
	got, err := ownership.Encode([]netip.AddrPort{ap("10.0.2.7:5432"), ap("[fd00::1]:6432"), ap("10.0.1.5:5432"),
		ap("10.0.1.5:5432"), ap("[::ffff:10.0.0.9]:6432")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ipsync:owned": "5432=10.0.1.5+10.0.2.7 6432=10.0.0.9+fd00::1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Encode = %q, want %q", got, want)
	}
	if got, err := ownership.Encode(nil); err != nil || len(got) != 0 {
		t.Errorf("Encode(nil) = %q, %v; want no tags", got, err)
	}
	for _, bad := range []netip.AddrPort{{}, ap("10.0.0.1:0"), netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 5432)} {
		if _, err := ownership.Encode([]netip.AddrPort{bad}); err == nil {
			t.Errorf("Encode(%v) succeeded", bad)
		}
	}
}

// Many targets spill into ipsync:owned:1, :2 ..., each within AWS's value limit, each group complete on its own.
func TestEncodeSplitsAcrossTags(t *testing.T) {
	var owned []netip.AddrPort
	for i := range 60 {
		owned = append(owned, netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i, 100+i)), 5432))
		owned = append(owned, netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("fd00:1234:5678:9abc::%x", 0x1000+i)), 6432))
	}
	tags, err := ownership.Encode(owned)
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) < 3 {
		t.Fatalf("%d tags for 120 targets: %q", len(tags), tags)
	}
	for i := range len(tags) {
		v, ok := tags[ownership.TagKey(i)]
		if !ok {
			t.Fatalf("tags are not numbered 0..%d: %q", len(tags)-1, slices.Sorted(maps.Keys(tags)))
		}
		if len(v) > ownership.MaxValueLen || strings.HasPrefix(v, " ") || strings.HasPrefix(v, "+") {
			t.Errorf("%s = %q (%d characters)", ownership.TagKey(i), v, len(v))
		}
	}
	back, err := ownership.Decode(tags)
	if err != nil || len(back) != len(owned) {
		t.Fatalf("Decode: %d targets, %v; want %d", len(back), err, len(owned))
	}

	// Past MaxTags the record is refused rather than truncated.
	var huge []netip.AddrPort
	for i := range 1000 {
		huge = append(huge, netip.AddrPortFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(i), 14: byte(i >> 8), 7: 1}), 5432))
	}
	if _, err := ownership.Encode(huge); err == nil || !strings.Contains(err.Error(), "more than the 10 allowed") {
		t.Errorf("Encode of 1000 IPv6 targets: %v", err)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		tags map[string]string
		want []netip.AddrPort
		err  string
	}{
		{"no record", map[string]string{"ipsync:endpoint": "orders.example.com", "team": "db"}, nil, ""},
		{"one tag", map[string]string{"ipsync:owned": "5432=10.0.1.5+10.0.2.7"}, []netip.AddrPort{ap("10.0.1.5:5432"), ap("10.0.2.7:5432")}, ""},
		{"union of tags", map[string]string{"ipsync:owned": "5432=10.0.2.7", "ipsync:owned:1": "5432=10.0.1.5 80=fd00::1"},
			[]netip.AddrPort{ap("[fd00::1]:80"), ap("10.0.1.5:5432"), ap("10.0.2.7:5432")}, ""},
		{"extra spaces", map[string]string{"ipsync:owned": "  5432=10.0.1.5   6432=10.0.1.5 "}, []netip.AddrPort{ap("10.0.1.5:5432"), ap("10.0.1.5:6432")}, ""},
		{"empty value", map[string]string{"ipsync:owned": ""}, nil, ""},
		{"look-alike tags of others", map[string]string{"ipsync:ownedby": "team-a", "ipsync:owner": "x"}, nil, ""},
		{"edited by hand", map[string]string{"ipsync:owned": "5432=10.0.1.5, 10.0.2.7"}, nil, `tag ipsync:owned="5432=10.0.1.5, 10.0.2.7" does not parse ("10.0.1.5," is not an IP address); treating the target group as owning nothing`},
		{"one bad tag spoils all", map[string]string{"ipsync:owned": "5432=10.0.1.5", "ipsync:owned:1": "x"}, nil, `"x" is not PORT=ADDRESS+ADDRESS`},
		{"port zero", map[string]string{"ipsync:owned": "0=10.0.1.5"}, nil, `port "0" is not 1-65535`},
		{"port leading zero", map[string]string{"ipsync:owned": "05432=10.0.1.5"}, nil, `port "05432"`},
		{"port too big", map[string]string{"ipsync:owned": "65536=10.0.1.5"}, nil, `port "65536"`},
		{"empty address", map[string]string{"ipsync:owned": "5432=10.0.1.5+"}, nil, `"" is not an IP address`},
		{"zone", map[string]string{"ipsync:owned": "5432=fe80::1%eth0"}, nil, `"fe80::1%eth0" is not an IP address`},
		{"bad record key", map[string]string{"ipsync:owned:01": "5432=10.0.1.5"}, nil, `tag "ipsync:owned:01" looks like ipsync's ownership record but is not`},
		{"record key suffix", map[string]string{"ipsync:owned:x": "5432=10.0.1.5"}, nil, "treating the target group as owning nothing: remove the tag"},
		{"too long", map[string]string{"ipsync:owned": "5432=" + strings.Repeat("10.0.0.1+", 40) + "10.0.0.1"}, nil, "more than a tag value holds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ownership.Decode(tc.tags)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error = %v, want %q", err, tc.err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Decode = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestChanges(t *testing.T) {
	current := map[string]string{"ipsync:endpoint": "orders.example.com", "ipsync:owned": "5432=10.0.1.5",
		"ipsync:owned:1": "5432=10.0.2.7", "ipsync:owned:x": "junk"}
	set, remove, err := ownership.Changes(current, []netip.AddrPort{ap("10.0.3.9:5432")})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(set, map[string]string{"ipsync:owned": "5432=10.0.3.9"}) ||
		!slices.Equal(remove, []string{"ipsync:owned:1", "ipsync:owned:x"}) {
		t.Errorf("Changes = %q, %q", set, remove)
	}
	// The record already says so: nothing to write.
	set, remove, err = ownership.Changes(map[string]string{"ipsync:owned": "5432=10.0.3.9"}, []netip.AddrPort{ap("10.0.3.9:5432")})
	if err != nil || set != nil || remove != nil {
		t.Errorf("unchanged record: %q, %q, %v", set, remove, err)
	}
	// Owning nothing removes the record.
	set, remove, err = ownership.Changes(map[string]string{"ipsync:owned": "5432=10.0.3.9"}, nil)
	if err != nil || set != nil || !slices.Equal(remove, []string{"ipsync:owned"}) {
		t.Errorf("empty set: %q, %q, %v", set, remove, err)
	}
}

func TestIsKey(t *testing.T) {
	for k, want := range map[string]bool{"ipsync:owned": true, "ipsync:owned:1": true, "ipsync:owned:12": true,
		"ipsync:owned:0": false, "ipsync:owned:01": false, "ipsync:owned:": false, "ipsync:owned:-1": false, "ipsync:ownedby": false} {
		if ownership.IsKey(k) != want {
			t.Errorf("IsKey(%q) = %v", k, !want)
		}
	}
}

// discover.tag_key must stay clear of the record; config refuses it by this prefix.
func TestConfigKnowsTheRecordKey(t *testing.T) {
	if config.OwnedTagPrefix != ownership.Key {
		t.Errorf("config.OwnedTagPrefix = %q, ownership.Key = %q", config.OwnedTagPrefix, ownership.Key)
	}
	if err := config.CheckTagKey(ownership.TagKey(3)); err == nil {
		t.Errorf("config accepts %s as discover.tag_key", ownership.TagKey(3))
	}
}

// awsTagValue reports whether v uses only characters AWS allows in ELBv2 tag values.
func awsTagValue(v string) bool {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" _.:/=+-@", r)) {
			return false
		}
	}
	return true
}

// targetsFrom turns fuzz bytes into targets: a family byte, 4 or 16 address bytes, 2 port bytes, repeated.
func targetsFrom(data []byte) []netip.AddrPort {
	var out []netip.AddrPort
	for len(data) > 0 {
		n := 4
		if data[0]&1 == 1 {
			n = 16
		}
		data = data[1:]
		if len(data) < n+2 {
			break
		}
		a, _ := netip.AddrFromSlice(data[:n])
		port := uint16(data[n])<<8 | uint16(data[n+1])
		data = data[n+2:]
		if port == 0 {
			port = 1
		}
		out = append(out, netip.AddrPortFrom(a, port))
	}
	return out
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0, 10, 0, 1, 5, 0x15, 0x38, 1, 0xfd, 15: 1, 17: 0x19, 18: 0x20})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		owned := targetsFrom(data)
		tags, err := ownership.Encode(owned)
		if err != nil {
			if !strings.Contains(err.Error(), "more than the") {
				t.Fatalf("Encode(%v): %v", owned, err)
			}
			return
		}
		for k, v := range tags {
			if !ownership.IsKey(k) || len(v) > ownership.MaxValueLen || len(v) == 0 || !awsTagValue(v) {
				t.Fatalf("Encode wrote %s=%q", k, v)
			}
		}
		back, err := ownership.Decode(tags)
		if err != nil {
			t.Fatalf("Decode(Encode(%v)) = %v", owned, err)
		}
		want := map[netip.AddrPort]bool{}
		for _, o := range owned {
			want[netip.AddrPortFrom(o.Addr().Unmap(), o.Port())] = true
		}
		got := map[netip.AddrPort]bool{}
		for _, b := range back {
			got[b] = true
		}
		if !maps.Equal(got, want) || len(back) != len(got) {
			t.Fatalf("round trip of %v gave %v", owned, back)
		}
	})
}

// FuzzDecode feeds garbage as the record: Decode never panics, and it either fails owning nothing or returns a
// set that encodes and decodes back to itself.
func FuzzDecode(f *testing.F) {
	f.Add("5432=10.0.1.5+10.0.2.7 6432=fd00::1", "5432=10.0.3.1", "1")
	f.Add("5432=10.0.1.5,10.0.2.7", "", "x")
	f.Add("=", "+", "01")
	f.Fuzz(func(t *testing.T, v0, v1, suffix string) {
		tags := map[string]string{ownership.Key: v0, ownership.Key + ":" + suffix: v1, "other": v0}
		got, err := ownership.Decode(tags)
		if err != nil {
			if got != nil {
				t.Fatalf("Decode failed (%v) but owns %v", err, got)
			}
			return
		}
		again, err := ownership.Encode(got)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)) = %v", tags, err)
		}
		back, err := ownership.Decode(again)
		if err != nil || !slices.Equal(back, got) {
			t.Fatalf("Decode(%q) = %v, re-encoded %q, decoded %v, %v", tags, got, again, back, err)
		}
	})
}
