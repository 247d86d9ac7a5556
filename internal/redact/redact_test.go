package redact_test

import (
	"testing"

	"github.com/ipsync/ipsync/internal/redact"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://pushgateway:9091":                       "http://pushgateway:9091",
		"http://user:pass@pushgateway:9091":             "http://redacted@pushgateway:9091",
		"https://token@pushgateway:9091/path?q=a@b#x@y": "https://redacted@pushgateway:9091/path?q=a@b#x@y",
		"http://us@er:p@ss@host/":                       "http://redacted@host/",
		"http://user:pa ss@host":                        "http://redacted@host",
		"user:pass@host:9091":                           "redacted@host:9091",
		"ftp://user:pass@host":                          "ftp://redacted@host",
		"http://host/path@with-at":                      "http://host/path@with-at",
		"":                                              "",
		"pushgateway:9091":                              "pushgateway:9091",
		"http://[fd00::1]:9091":                         "http://[fd00::1]:9091",
		"http://u:p@[fd00::1]:9091/metrics":             "http://redacted@[fd00::1]:9091/metrics",
	} {
		if got := redact.URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}
