package config_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/config"
)

// FuzzLoad feeds arbitrary YAML through --config: Load and Validate must never panic, Load returns a config
// or an error (never both, never neither), and Validate returns nil or a *ValidationError with problems.
func FuzzLoad(f *testing.F) {
	for _, tc := range validateCases {
		f.Add(tc.doc)
	}
	for _, tc := range validCases {
		f.Add(tc.doc)
	}
	for _, tc := range sourceCases {
		f.Add(tc.doc)
	}
	spec, err := os.ReadFile(filepath.Join("testdata", "spec.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(spec))
	f.Add(validSync + "colour: red\n")
	f.Add("syncs:\n  - &a {endpoint: x}\n  - *a\n")
	f.Add("")

	f.Fuzz(func(t *testing.T, doc string) {
		fs := flag.NewFlagSet("fuzz", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fl := config.BindFlags(fs)
		// The trailing newline makes the value YAML text, never a file path.
		if err := fs.Parse([]string{"--config", doc + "\n"}); err != nil {
			t.Fatalf("parse: %v", err)
		}
		start := time.Now()
		cfg, err := config.Load(fl)
		if d := time.Since(start); d > 5*time.Second { // generous: the machine is shared; this catches pathological inputs, not slowness
			t.Fatalf("Load took %v", d)
		}
		if cfg == nil && err == nil {
			t.Fatal("Load returned neither a config nor an error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error message")
		}
		if cfg == nil {
			return
		}
		// With the problems Load found in the file, the config is partial, and Validate must list them too.
		verr := cfg.Validate()
		if err != nil {
			var lerr, ve *config.ValidationError
			if !errors.As(err, &lerr) || !errors.As(verr, &ve) || len(ve.Problems) < len(lerr.Problems) ||
				!slices.Equal(ve.Problems[:len(lerr.Problems)], lerr.Problems) {
				t.Fatalf("Load returned a config with %v; Validate = %v, want those problems first", err, verr)
			}
		}
		if verr == nil {
			// Spot-check what an accepted configuration promises the engine.
			if len(cfg.Syncs) == 0 || cfg.Poll.Min < config.MinPollMin || cfg.Poll.Max < cfg.Poll.Min || cfg.Poll.Max < config.MinPollMax ||
				cfg.ResyncInterval < config.MinResyncInterval || cfg.DNS.Timeout < config.MinDNSTimeout {
				t.Fatalf("accepted %+v", cfg)
			}
			for _, s := range cfg.Syncs {
				sources := 0
				for _, given := range []bool{s.Endpoint != "", s.Endpoints != nil, s.RDS != nil} {
					if given {
						sources++
					}
				}
				if s.Name == "" || sources != 1 || s.Port < 0 || s.Port > 65535 || s.DeregisterAfter < 1 ||
					s.RDS != nil && (s.RDS.Refresh < config.MinRDSRefresh || s.RDS.DBIdentifier() == "") {
					t.Fatalf("accepted sync %+v", s)
				}
			}
			return
		}
		var ve *config.ValidationError
		if !errors.As(verr, &ve) || len(ve.Problems) == 0 {
			t.Fatalf("Validate = %#v, want *ValidationError with problems", verr)
		}
		for _, p := range ve.Problems {
			if strings.TrimSpace(p) == "" {
				t.Fatalf("empty problem in %q", ve.Problems)
			}
		}
	})
}
