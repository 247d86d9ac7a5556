package config_test

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/config"
)

const (
	tgARN    = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef"
	endpoint = "orders.c9abc.us-east-1.rds.amazonaws.com"
	// validSync is one valid mapping; tests append top-level keys to it.
	validSync = "syncs:\n  - endpoint: " + endpoint + "\n    target_group_arn: " + tgARN + "\n"
)

type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// cli binds the shared flags plus command-specific ones the way the CLI does, parses args and applies env.
func cli(t testing.TB, args []string, e env) (*flag.FlagSet, *config.Flags, error) {
	t.Helper()
	fs := flag.NewFlagSet("ipsync sync", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := config.BindFlags(fs)
	config.BindDryRun(fs, "command-specific flag")
	fs.Bool("detailed-exitcode", false, "command-specific flag")
	if err := fs.Parse(args); err != nil {
		return fs, f, err
	}
	return fs, f, config.ApplyEnv(fs, e.lookup)
}

// load runs the whole front end: flags, env, Load.
func load(t testing.TB, args []string, e env) (*config.Config, error) {
	t.Helper()
	_, f, err := cli(t, args, e)
	if err != nil {
		return nil, err
	}
	return config.Load(f)
}

// mustLoad is load for inputs that must parse.
func mustLoad(t testing.TB, args []string, e env) *config.Config {
	t.Helper()
	cfg, err := load(t, args, e)
	if err != nil {
		t.Fatalf("load %q: %v", args, err)
	}
	return cfg
}

// inline loads YAML text through --config (a value with a newline is YAML).
func inline(t testing.TB, doc string) (*config.Config, error) {
	t.Helper()
	return load(t, []string{"--config", doc + "\n"}, nil)
}

func problems(t testing.TB, cfg *config.Config) []string {
	t.Helper()
	err := cfg.Validate()
	if err == nil {
		return nil
	}
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate returned %T (%v), want *config.ValidationError", err, err)
	}
	return ve.Problems
}

func wantSync(name string) config.Sync {
	s := config.DefaultSync()
	s.Name, s.Endpoint, s.TargetGroupARN = name, endpoint, tgARN
	return s
}

func TestDefaults(t *testing.T) {
	want := &config.Config{
		DNS:            config.DNS{Mode: "recursive", Timeout: 2 * time.Second},
		Poll:           config.Poll{Min: time.Second, Max: 30 * time.Second},
		ResyncInterval: 60 * time.Second,
		Listen:         ":9796",
		Log:            config.Log{Level: "info", Format: "json"},
	}
	if got := config.Defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults() = %+v, want %+v", got, want)
	}
	if got := mustLoad(t, nil, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("Load with no input = %+v, want %+v", got, want)
	}
	if got, want := config.DefaultSync(), (config.Sync{AvailabilityZone: "auto", Prune: true, DeregisterAfter: 2}); !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultSync() = %+v, want %+v", got, want)
	}
	if got := problems(t, config.Defaults()); len(got) != 1 || got[0] != "no mappings: set --endpoint and --target-group-arn, or syncs: in --config" {
		t.Errorf("Defaults().Validate() problems = %q, want only the missing mappings", got)
	}
}

func TestSyncDefaults(t *testing.T) {
	cfg := mustLoad(t, []string{"--config", validSync}, nil)
	if want := []config.Sync{wantSync("orders")}; !reflect.DeepEqual(cfg.Syncs, want) {
		t.Errorf("Syncs = %+v, want %+v", cfg.Syncs, want)
	}
	if cfg.Syncs[0].Port != 0 {
		t.Errorf("Port = %d, want 0 (the target group's port)", cfg.Syncs[0].Port)
	}
	if p := problems(t, cfg); p != nil {
		t.Errorf("Validate: %q", p)
	}
}

func TestNameFromEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"orders.c9abc.us-east-1.rds.amazonaws.com":                "orders",
		"my-cluster.cluster-ro-c9abc.eu-west-1.rds.amazonaws.com": "my-cluster",
		"db.":       "db",
		"localhost": "localhost",
		"":          "",
	} {
		if got := config.NameFromEndpoint(in); got != want {
			t.Errorf("NameFromEndpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadSpecExample(t *testing.T) {
	cfg := mustLoad(t, []string{"--config", filepath.Join("testdata", "spec.yaml")}, nil)
	s := wantSync("orders")
	s.Port = 5432
	want := &config.Config{
		Syncs:          []config.Sync{s},
		DNS:            config.DNS{Mode: "recursive", Servers: nil, Timeout: 2 * time.Second},
		Poll:           config.Poll{Min: time.Second, Max: 30 * time.Second},
		ResyncInterval: 60 * time.Second,
		Listen:         ":9796",
		Log:            config.Log{Level: "info", Format: "json"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("the documented example (testdata/spec.yaml):\n got %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the documented example (testdata/spec.yaml) does not validate: %v", err)
	}
}

// TestLoadAllKeys sets every key to a non-default value, so a key that is parsed but not applied shows up.
func TestLoadAllKeys(t *testing.T) {
	cfg, err := inline(t, `
syncs:
  - name: orders_rw
    endpoint: orders.example.com
    target_group_arn: `+tgARN+`
    port: 6432
    availability_zone: vpc
    prune: false
    deregister_after: 5
    role_arn: arn:aws:iam::210987654321:role/ipsync/orders
    allowed_cidrs: [10.1.0.0/16, "fd00::/8"]
dns: {mode: authoritative, servers: [10.0.0.2, "10.0.0.3:5353"], timeout: 750ms}
poll: {min: 2s, max: 1m}
resync_interval: 5m
listen: 127.0.0.1:9000
log: {level: debug, format: console}`)
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		Syncs: []config.Sync{{
			Name: "orders_rw", Endpoint: "orders.example.com", TargetGroupARN: tgARN, Port: 6432,
			AvailabilityZone: "vpc", Prune: false, DeregisterAfter: 5, RoleARN: "arn:aws:iam::210987654321:role/ipsync/orders",
			AllowedCIDRs: []string{"10.1.0.0/16", "fd00::/8"},
		}},
		DNS:            config.DNS{Mode: "authoritative", Servers: []string{"10.0.0.2:53", "10.0.0.3:5353"}, Timeout: 750 * time.Millisecond},
		Poll:           config.Poll{Min: 2 * time.Second, Max: time.Minute},
		ResyncInterval: 5 * time.Minute,
		Listen:         "127.0.0.1:9000",
		Log:            config.Log{Level: "debug", Format: "console"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("\n got %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

func TestLoadConfigPathOrInline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipsync.yaml")
	if err := os.WriteFile(path, []byte(validSync), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("# nothing yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("file path", func(t *testing.T) {
		cfg := mustLoad(t, []string{"--config", path}, nil)
		if len(cfg.Syncs) != 1 || cfg.Syncs[0].Name != "orders" {
			t.Errorf("Syncs = %+v", cfg.Syncs)
		}
	})
	t.Run("file path from IPSYNC_CONFIG", func(t *testing.T) {
		cfg := mustLoad(t, nil, env{"IPSYNC_CONFIG": path})
		if len(cfg.Syncs) != 1 {
			t.Errorf("Syncs = %+v", cfg.Syncs)
		}
	})
	t.Run("inline flag", func(t *testing.T) {
		cfg := mustLoad(t, []string{"--config", validSync}, nil)
		if len(cfg.Syncs) != 1 || cfg.Syncs[0].Endpoint != endpoint {
			t.Errorf("Syncs = %+v", cfg.Syncs)
		}
	})
	t.Run("inline IPSYNC_CONFIG", func(t *testing.T) {
		cfg := mustLoad(t, nil, env{"IPSYNC_CONFIG": validSync + "listen: \"\"\n"})
		if len(cfg.Syncs) != 1 || cfg.Listen != "" {
			t.Errorf("cfg = %+v", cfg)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		cfg := mustLoad(t, []string{"--config", empty}, nil)
		if !reflect.DeepEqual(cfg, config.Defaults()) {
			t.Errorf("cfg = %+v, want defaults", cfg)
		}
	})
	t.Run("one line is a path even if it looks like YAML", func(t *testing.T) {
		_, err := load(t, []string{"--config", "{syncs: []}"}, nil)
		if err == nil || !strings.Contains(err.Error(), "read config file") || !strings.Contains(err.Error(), "{syncs: []}") {
			t.Errorf("err = %v, want a read error naming the path", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		missing := filepath.Join(dir, "nope.yaml")
		_, err := load(t, []string{"--config", missing}, nil)
		if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want not-exist naming %s", err, missing)
		}
	})
	t.Run("path with a trailing newline", func(t *testing.T) {
		_, err := load(t, nil, env{"IPSYNC_CONFIG": path + "\n"})
		if err == nil || !strings.Contains(err.Error(), "read as YAML, not as a file path") {
			t.Errorf("err = %v, want the newline hint", err)
		}
	})
}

func TestLoadUnknownKey(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"top level", validSync + "resync: 60s\n", []string{`line 4: unknown key "resync" in the top level`, "resync_interval"}},
		{"in syncs", "syncs:\n  - endpoint: " + endpoint + "\n    targetGroupArn: x\n", []string{`line 3: unknown key "targetGroupArn" in a syncs entry`, "target_group_arn"}},
		{"second sync", validSync + "  - endpoint: b.example.com\n    weight: 3\n", []string{`line 5: unknown key "weight" in a syncs entry`}},
		{"in dns", validSync + "dns:\n  server: [10.0.0.2]\n", []string{`line 5: unknown key "server" in dns`, "servers"}},
		{"in poll", validSync + "poll: {min: 1s, maximum: 9s}\n", []string{`line 4: unknown key "maximum" in poll`}},
		{"in log", validSync + "log:\n  level: info\n  colour: true\n", []string{`line 6: unknown key "colour" in log`}},
		{"several", "listn: x\nlog: {lvl: x}\n", []string{`line 1: unknown key "listn"`, `line 2: unknown key "lvl"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := inline(t, tc.doc)
			if err == nil {
				t.Fatalf("loaded %+v, want an unknown key error", cfg)
			}
			// Load keeps the rest of the file, so that Validate lists this problem with every other one.
			if cfg == nil {
				t.Fatal("no config with the error")
			}
			for _, e := range []error{err, cfg.Validate()} {
				for _, w := range tc.want {
					if e == nil || !strings.Contains(e.Error(), w) {
						t.Errorf("error %v\ndoes not contain %q", e, w)
					}
				}
			}
		})
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"syntax", validSync + "listen: a: b\nlog: {}\n", []string{"line 4", "mapping values are not allowed"}},
		{"tab indent", "syncs:\n\t- endpoint: x\n", []string{"line 2"}},
		{"duration without unit", validSync + "dns:\n  timeout: 2\n", []string{"line 5", "duration with a unit"}},
		{"bad duration", validSync + "poll: {min: soon}\n", []string{"line 4", "duration with a unit"}},
		{"port not a number", "syncs:\n  - port: http\n", []string{"line 2", "port number"}},
		{"port over int32", "syncs:\n  - port: 5000000000\n", []string{"line 2", "port number"}},
		{"prune not a bool", "syncs:\n  - prune: sometimes\n", []string{"line 2", "bool"}},
		// Issue 9 item 5: yaml.v3 alone truncates a float into an integer field (54.32 -> 54).
		{"fractional port", validSync + "    port: 54.32\n", []string{"line 4", "54.32", "port number"}},
		{"float port", validSync + "    port: 5432.0\n", []string{"line 4", "5432.0", "port number"}},
		{"exponent port", validSync + "    port: 5e3\n", []string{"line 4", "5e3", "port number"}},
		{"fractional deregister_after", validSync + "    deregister_after: 1.9\n", []string{"line 4", "1.9", "whole number"}},
		{"quoted deregister_after", validSync + "    deregister_after: \"2\"\n", []string{"line 4", "whole number"}},
		{"syncs not a list", "syncs: orders\n", []string{"line 1", "expected a list"}},
		{"sync not a mapping", "syncs:\n  - orders.example.com\n", []string{"line 2", "a syncs entry"}},
		{"top level not a mapping", "- a\n- b\n", []string{"line 1", "the top level: expected a mapping"}},
		{"duplicate key", validSync + "listen: :1\nlisten: :2\n", []string{"line 5", "already defined at line 4"}},
		{"two documents", validSync + "---\nlisten: :1\n", []string{"line 4", "second YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := inline(t, tc.doc)
			if err == nil {
				t.Fatalf("loaded %+v, want an error", cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "config.file") {
				t.Errorf("error %q names an internal Go type", err)
			}
		})
	}
}

func TestLoadExplicitZeroAndFalse(t *testing.T) {
	cfg, err := inline(t, validSync+"    prune: false\n    deregister_after: 0\n    port: 0\n")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Syncs[0]
	if s.Prune || s.DeregisterAfter != 0 || s.Port != 0 {
		t.Errorf("sync = %+v, want the explicit values kept", s)
	}
	got := problems(t, cfg)
	want := []string{
		"syncs[0] (orders): port (--port) 0: expected 1-65535; leave port out to use the target group's port",
		"syncs[0] (orders): deregister_after 0: expected 1 or more (successful resolutions an address must be missing from before it is deregistered)",
	}
	if !sameSet(got, want) {
		t.Errorf("problems = %q\nwant %q", got, want)
	}
	// Fixing the port after Load clears the problem: the marker only matters while Port is 0.
	cfg.Syncs[0].Port, cfg.Syncs[0].DeregisterAfter = 5432, 1
	if err := cfg.Validate(); err != nil {
		t.Errorf("after fixing: %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	file := validSync + `
dns: {servers: ["10.0.0.1:53"], timeout: 3s}
poll: {min: 2s}
listen: ":1000"
log: {level: warn, format: console}
`
	e := env{
		"IPSYNC_CONFIG":     file,
		"IPSYNC_LISTEN":     ":2000",
		"IPSYNC_LOG_LEVEL":  "error",
		"IPSYNC_DNS_SERVER": "10.0.0.2:53",
	}
	cfg := mustLoad(t, []string{"--listen", ":3000"}, e)
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"poll.max: default", cfg.Poll.Max, 30 * time.Second},
		{"resync_interval: default", cfg.ResyncInterval, 60 * time.Second},
		{"poll.min: file over default", cfg.Poll.Min, 2 * time.Second},
		{"dns.timeout: file over default", cfg.DNS.Timeout, 3 * time.Second},
		{"log.format: file over default", cfg.Log.Format, "console"},
		{"log.level: env over file", cfg.Log.Level, "error"},
		{"dns.servers: env over file", cfg.DNS.Servers, []string{"10.0.0.2:53"}},
		{"listen: flag over env over file", cfg.Listen, ":3000"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestEnvNames covers the environment variable of every flag, shared and command-specific.
func TestEnvNames(t *testing.T) {
	tests := map[string]struct {
		env, value string
		check      func(*config.Config, *flag.FlagSet) any // returns what the flag produced
		want       any
	}{
		"config": {"IPSYNC_CONFIG", validSync, func(c *config.Config, _ *flag.FlagSet) any { return c.Syncs[0].Name }, "orders"},
		"endpoint": {"IPSYNC_ENDPOINT", "a.example.com",
			func(c *config.Config, _ *flag.FlagSet) any { return c.Syncs[0].Endpoint }, "a.example.com"},
		"target-group-arn": {"IPSYNC_TARGET_GROUP_ARN", tgARN,
			func(c *config.Config, _ *flag.FlagSet) any { return c.Syncs[0].TargetGroupARN }, tgARN},
		"port":       {"IPSYNC_PORT", "5432", func(c *config.Config, _ *flag.FlagSet) any { return c.Syncs[0].Port }, int32(5432)},
		"dns-server": {"IPSYNC_DNS_SERVER", "10.0.0.2", func(c *config.Config, _ *flag.FlagSet) any { return c.DNS.Servers }, []string{"10.0.0.2:53"}},
		"listen":     {"IPSYNC_LISTEN", ":1", func(c *config.Config, _ *flag.FlagSet) any { return c.Listen }, ":1"},
		"log-level":  {"IPSYNC_LOG_LEVEL", "debug", func(c *config.Config, _ *flag.FlagSet) any { return c.Log.Level }, "debug"},
		"log-format": {"IPSYNC_LOG_FORMAT", "console", func(c *config.Config, _ *flag.FlagSet) any { return c.Log.Format }, "console"},
		"dry-run": {"IPSYNC_DRY_RUN", "true",
			func(_ *config.Config, fs *flag.FlagSet) any { return fs.Lookup("dry-run").Value.String() }, "true"},
		"detailed-exitcode": {"IPSYNC_DETAILED_EXITCODE", "1",
			func(_ *config.Config, fs *flag.FlagSet) any { return fs.Lookup("detailed-exitcode").Value.String() }, "true"},
	}
	fs, _, err := cli(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(fl *flag.Flag) {
		if _, ok := tests[fl.Name]; !ok {
			t.Errorf("flag --%s has no environment variable test", fl.Name)
		}
	})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := config.EnvName(name); got != tc.env {
				t.Errorf("EnvName(%q) = %q, want %q", name, got, tc.env)
			}
			fs, f, err := cli(t, nil, env{tc.env: tc.value})
			if err != nil {
				t.Fatal(err)
			}
			set := false
			fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
			if !set {
				t.Errorf("%s did not set --%s", tc.env, name)
			}
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.check(cfg, fs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s=%q gave %v, want %v", tc.env, tc.value, got, tc.want)
			}
		})
	}
}

func TestApplyEnvCommandLineWins(t *testing.T) {
	// --dry-run is the exception (TestDryRunAmbiguous): its variable may only agree with the command line.
	e := env{"IPSYNC_LISTEN": ":2", "IPSYNC_DNS_SERVER": "10.0.0.8:53,10.0.0.9:53", "IPSYNC_DRY_RUN": "1"}
	fs, f, err := cli(t, []string{"--listen", ":1", "--dns-server", "10.0.0.1", "--dry-run"}, e)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":1" || !reflect.DeepEqual(cfg.DNS.Servers, []string{"10.0.0.1:53"}) || fs.Lookup("dry-run").Value.String() != "true" {
		t.Errorf("environment overrode the command line: listen %q, servers %q, dry-run %s",
			cfg.Listen, cfg.DNS.Servers, fs.Lookup("dry-run").Value)
	}
}

// TestDryRunAmbiguous is I8: a dry-run setting given twice with different values, on the command line or on the
// command line and in IPSYNC_DRY_RUN, is an error naming both, where the last or the command line's value would
// otherwise win (and may be "live"). The same value twice is no ambiguity.
func TestDryRunAmbiguous(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  env
		want []string // parts of the error; none: no error
		dry  bool
	}{
		{[]string{"--dry-run", "--dry-run=false"}, nil, []string{`for -dry-run: --dry-run was already given as true`, "never run live"}, false},
		{[]string{"--dry-run=true", "--dry-run=0"}, nil, []string{`for -dry-run: --dry-run was already given as true`}, false},
		{[]string{"--dry-run=false", "--dry-run"}, nil, []string{"--dry-run was already given as false"}, false},
		{[]string{"--dry-run=false"}, env{"IPSYNC_DRY_RUN": "true"}, []string{`IPSYNC_DRY_RUN="true" and --dry-run=false on the command line disagree`, "never run live"}, false},
		{[]string{"--dry-run"}, env{"IPSYNC_DRY_RUN": "false"}, []string{`IPSYNC_DRY_RUN="false" and --dry-run=true`}, false},
		{[]string{"--dry-run"}, env{"IPSYNC_DRY_RUN": ""}, []string{`IPSYNC_DRY_RUN="" and --dry-run=true`}, false},
		{[]string{"--dry-run", "--dry-run"}, env{"IPSYNC_DRY_RUN": "t"}, nil, true},
		{[]string{"--dry-run=false"}, env{"IPSYNC_DRY_RUN": "0"}, nil, false},
		{nil, env{"IPSYNC_DRY_RUN": "true"}, nil, true},
	} {
		fs, _, err := cli(t, tc.args, tc.env)
		what := fmt.Sprintf("%v %v", tc.env, tc.args)
		if len(tc.want) == 0 {
			if err != nil || fs.Lookup("dry-run").Value.String() != strconv.FormatBool(tc.dry) {
				t.Errorf("%s: err %v, dry-run %s; want no error and %t", what, err, fs.Lookup("dry-run").Value, tc.dry)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error, dry-run %s; want the ambiguity refused", what, fs.Lookup("dry-run").Value)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q\ndoes not contain %q", what, err, w)
			}
		}
	}
}

func TestApplyEnvEmptyValue(t *testing.T) {
	// A variable that exists but is empty is a choice: no listener, the system's resolvers.
	cfg := mustLoad(t, nil, env{
		"IPSYNC_CONFIG":     validSync + "dns: {servers: [10.0.0.1]}\n",
		"IPSYNC_LISTEN":     "",
		"IPSYNC_DNS_SERVER": "",
	})
	if cfg.Listen != "" || cfg.DNS.Servers != nil {
		t.Errorf("listen %q, servers %q; want both empty", cfg.Listen, cfg.DNS.Servers)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

func TestApplyEnvErrors(t *testing.T) {
	_, _, err := cli(t, nil, env{"IPSYNC_PORT": "pg", "IPSYNC_DRY_RUN": "maybe", "IPSYNC_LISTEN": ":1"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{`IPSYNC_PORT="pg"`, "--port", "port number", `IPSYNC_DRY_RUN="maybe"`, "--dry-run"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "IPSYNC_LISTEN") {
		t.Errorf("error %q names a good variable", err)
	}

	// A fractional port is refused from the environment and the command line too, never truncated.
	if _, _, err := cli(t, nil, env{"IPSYNC_PORT": "54.32"}); err == nil || !strings.Contains(err.Error(), "54.32") {
		t.Errorf("IPSYNC_PORT=54.32: err = %v, want it refused", err)
	}
	if _, _, err := cli(t, []string{"--port", "54.32"}, nil); err == nil {
		t.Error("--port 54.32: want it refused")
	}

	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	config.BindFlags(fs)
	if err := config.ApplyEnv(fs, env{}.lookup); err == nil || !strings.Contains(err.Error(), "Parse") {
		t.Errorf("ApplyEnv before Parse: err = %v, want an error asking for Parse first", err)
	}
}

func TestDNSServers(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  env
		want []string
	}{
		{"repeated flag", []string{"--dns-server", "10.0.0.2", "--dns-server", "10.0.0.3:5353"}, nil,
			[]string{"10.0.0.2:53", "10.0.0.3:5353"}},
		{"comma-separated flag", []string{"--dns-server", "10.0.0.2:53,10.0.0.3:53"}, nil,
			[]string{"10.0.0.2:53", "10.0.0.3:53"}},
		{"comma-separated env", nil, env{"IPSYNC_DNS_SERVER": "10.0.0.2, 10.0.0.3:5353 ,fd00::2,[fd00::3],dns.internal"},
			[]string{"10.0.0.2:53", "10.0.0.3:5353", "[fd00::2]:53", "[fd00::3]:53", "dns.internal:53"}},
		{"flag replaces file", []string{"--config", validSync + "dns: {servers: [10.0.0.1, 10.0.0.9]}\n", "--dns-server", "127.0.0.1:5300"}, nil,
			[]string{"127.0.0.1:5300"}},
		{"file alone", []string{"--config", validSync + "dns: {servers: [10.0.0.1, \"[::1]:53\"]}\n"}, nil,
			[]string{"10.0.0.1:53", "[::1]:53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustLoad(t, tc.args, tc.env)
			if !reflect.DeepEqual(cfg.DNS.Servers, tc.want) {
				t.Errorf("servers = %q, want %q", cfg.DNS.Servers, tc.want)
			}
			for _, p := range problems(t, cfg) {
				if strings.Contains(p, "dns.servers") {
					t.Error(p)
				}
			}
		})
	}
}

func TestFlagsMapping(t *testing.T) {
	cfg := mustLoad(t, []string{"--endpoint", endpoint, "--target-group-arn", tgARN, "--port", "5432"}, nil)
	want := wantSync("orders")
	want.Port = 5432
	if !reflect.DeepEqual(cfg.Syncs, []config.Sync{want}) {
		t.Errorf("Syncs = %+v, want %+v", cfg.Syncs, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}

	cfg = mustLoad(t, []string{"--endpoint", endpoint, "--target-group-arn", tgARN, "--port", "0"}, nil)
	if p := problems(t, cfg); len(p) != 1 || !strings.Contains(p[0], "port (--port) 0: expected 1-65535") {
		t.Errorf("--port 0: problems %q", p)
	}

	cfg = mustLoad(t, []string{"--port", "70000"}, nil)
	if p := strings.Join(problems(t, cfg), "\n"); !strings.Contains(p, "endpoint (--endpoint): missing") ||
		!strings.Contains(p, "target_group_arn (--target-group-arn): missing") || !strings.Contains(p, "port (--port) 70000") {
		t.Errorf("--port alone: problems\n%s", p)
	}

	if _, err := load(t, []string{"--port", "99999999999"}, nil); err == nil || !strings.Contains(err.Error(), "port number") {
		t.Errorf("--port 99999999999: err = %v", err)
	}
}

func TestFlagsAndConfigSyncsConflict(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  env
	}{
		{"flag", []string{"--config", validSync, "--endpoint", "b.example.com"}, nil},
		{"env", nil, env{"IPSYNC_CONFIG": validSync, "IPSYNC_TARGET_GROUP_ARN": tgARN}},
		{"port only", []string{"--config", validSync, "--port", "5432"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.args, tc.env)
			if err == nil || cfg != nil {
				t.Fatalf("got %+v, %v; want a conflict error", cfg, err)
			}
			if !strings.Contains(err.Error(), "use one or the other") {
				t.Errorf("err = %v", err)
			}
		})
	}
	// A file without syncs: (only settings) combines with a mapping from flags.
	cfg := mustLoad(t, []string{"--config", "log: {level: debug}\nsyncs: []\n", "--endpoint", endpoint, "--target-group-arn", tgARN}, nil)
	if len(cfg.Syncs) != 1 || cfg.Log.Level != "debug" {
		t.Errorf("cfg = %+v", cfg)
	}
}

// validateCases: one row per invalid value. Each document is loaded with --config and must produce exactly
// the listed problems (substrings, in order). FuzzLoad is seeded from these too.
var validateCases = []struct {
	name, doc string
	want      []string
}{
	{"no syncs", "dns: {timeout: 2s}\n", []string{"no mappings: set --endpoint and --target-group-arn, or syncs: in --config"}},
	{"empty syncs", "syncs: []\n", []string{"no mappings"}},
	{"endpoint missing", "syncs:\n  - target_group_arn: " + tgARN + "\n",
		[]string{"syncs[0]: endpoint (--endpoint): missing; expected the database's DNS name, such as orders.c9abc.us-east-1.rds.amazonaws.com"}},
	{"endpoint with space", "syncs:\n  - endpoint: orders.exa mple.com\n    target_group_arn: " + tgARN + "\n",
		[]string{`syncs[0] (orders): endpoint (--endpoint) "orders.exa mple.com": has ' ', which is not allowed`}},
	{"endpoint is an IP", "syncs:\n  - endpoint: 10.0.0.5\n    target_group_arn: " + tgARN + "\n",
		[]string{`syncs[0] (10): endpoint (--endpoint) "10.0.0.5": is an IP address`}},
	{"endpoint is an IPv6 address", "syncs:\n  - {name: v6, endpoint: \"fd00::5\", target_group_arn: " + tgARN + "}\n",
		[]string{`syncs[0] (v6): endpoint (--endpoint) "fd00::5": is an IP address`}},
	{"endpoint with port", "syncs:\n  - endpoint: orders.example.com:5432\n    target_group_arn: " + tgARN + "\n",
		[]string{`endpoint (--endpoint) "orders.example.com:5432": is not a bare DNS name`}},
	{"endpoint is a URL", "syncs:\n  - {name: o, endpoint: \"postgres://orders.example.com\", target_group_arn: " + tgARN + "}\n",
		[]string{`endpoint (--endpoint) "postgres://orders.example.com": looks like a URL`}},
	{"endpoint label too long", "syncs:\n  - endpoint: a." + strings.Repeat("x", 64) + ".com\n    target_group_arn: " + tgARN + "\n",
		[]string{"has a label of 64 characters"}},
	{"endpoint empty label", "syncs:\n  - endpoint: orders..example.com\n    target_group_arn: " + tgARN + "\n",
		[]string{"has a label of 0 characters"}},
	{"endpoint label with hyphen", "syncs:\n  - endpoint: orders.-x.com\n    target_group_arn: " + tgARN + "\n",
		[]string{`label "-x" starts or ends with '-'`}},
	{"target group missing", "syncs:\n  - endpoint: " + endpoint + "\n",
		[]string{"syncs[0] (orders): target_group_arn (--target-group-arn): missing; expected arn:aws:elasticloadbalancing:REGION:ACCOUNT_ID:targetgroup/NAME/ID"}},
	{"target group not an ARN", "syncs:\n  - endpoint: " + endpoint + "\n    target_group_arn: targetgroup/orders/0123456789abcdef\n",
		[]string{`target_group_arn (--target-group-arn) "targetgroup/orders/0123456789abcdef": is not an ARN (arn: invalid prefix); expected arn:aws:elasticloadbalancing:`}},
	{"target group wrong service", "syncs:\n  - endpoint: " + endpoint + "\n    target_group_arn: arn:aws:ec2:us-east-1:123456789012:targetgroup/orders/0123456789abcdef\n",
		[]string{`service is "ec2", not elasticloadbalancing`}},
	{"load balancer ARN", "syncs:\n  - endpoint: " + endpoint + "\n    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/db/50dc6c495c0c9188\n",
		[]string{"is a load balancer ARN; give the ARN of its target group"}},
	{"target group no ID", "syncs:\n  - endpoint: " + endpoint + "\n    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders\n",
		[]string{`resource "targetgroup/orders" is not targetgroup/NAME/ID`}},
	{"target group bad name", "syncs:\n  - endpoint: " + endpoint + "\n    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/or_ders/0123456789abcdef\n",
		[]string{`target group name "or_ders"`}},
	{"target group no region", "syncs:\n  - endpoint: " + endpoint + "\n    target_group_arn: arn:aws:elasticloadbalancing::123456789012:targetgroup/orders/0123456789abcdef\n",
		[]string{`region ""`}},
	{"target group bad account", "syncs:\n  - endpoint: " + endpoint + "\n    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:12345:targetgroup/orders/0123456789abcdef\n",
		[]string{`account ID "12345" is not 12 digits`}},
	{"port 0", validSync + "    port: 0\n", []string{"syncs[0] (orders): port (--port) 0: expected 1-65535; leave port out"}},
	{"port negative", validSync + "    port: -1\n", []string{"port (--port) -1: expected 1-65535"}},
	{"port too big", validSync + "    port: 65536\n", []string{"port (--port) 65536: expected 1-65535"}},
	{"availability zone", validSync + "    availability_zone: us-east-1a\n", []string{`syncs[0] (orders): availability_zone "us-east-1a": expected auto, all or vpc`}},
	{"availability zone empty", validSync + "    availability_zone: \"\"\n", []string{`availability_zone "": expected auto, all or vpc`}},
	{"deregister_after 0", validSync + "    deregister_after: 0\n", []string{"syncs[0] (orders): deregister_after 0: expected 1 or more"}},
	{"deregister_after negative", validSync + "    deregister_after: -2\n", []string{"deregister_after -2: expected 1 or more"}},
	{"role is a user", validSync + "    role_arn: arn:aws:iam::123456789012:user/bob\n",
		[]string{`syncs[0] (orders): role_arn "arn:aws:iam::123456789012:user/bob": resource "user/bob" is not role/NAME; expected arn:aws:iam::ACCOUNT_ID:role/NAME`}},
	{"role is a session", validSync + "    role_arn: arn:aws:sts::123456789012:assumed-role/ipsync/session\n", []string{"is an STS session ARN"}},
	{"role not an ARN", validSync + "    role_arn: ipsync-role\n", []string{`role_arn "ipsync-role": is not an ARN`}},
	{"role with region", validSync + "    role_arn: arn:aws:iam:us-east-1:123456789012:role/x\n", []string{`has region "us-east-1"; IAM ARNs have none`}},
	{"role bad account", validSync + "    role_arn: arn:aws:iam::abc:role/x\n", []string{`account ID "abc"`}},
	{"allowed_cidrs not a CIDR", validSync + "    allowed_cidrs: [10.0.0.0/16, 10.1.0.0]\n",
		[]string{`syncs[0] (orders): allowed_cidrs[1] "10.1.0.0": not a CIDR; expected a range such as 10.0.0.0/16`}},
	{"allowed_cidrs host bits", validSync + "    allowed_cidrs: [\"fd00::1/8\", 10.1.2.3/16]\n",
		[]string{`allowed_cidrs[0] "fd00::1/8": has bits set past the prefix length; did you mean fd00::/8?`, `allowed_cidrs[1] "10.1.2.3/16": has bits set past the prefix length; did you mean 10.1.0.0/16?`}},
	{"duplicate names", validSync + "  - endpoint: orders.other.example.com\n    target_group_arn: " + strings.Replace(tgARN, "/orders/", "/orders2/", 1) + "\n",
		[]string{`syncs[1] (orders): name "orders" is already used by syncs[0]; names must be unique`}},
	{"bad name", validSync + "    name: orders db\n", []string{`syncs[0] (orders db): name "orders db": expected letters, digits, '_', '.' and '-' only`}},
	{"bad default name", "syncs:\n  - endpoint: \"*.example.com\"\n    target_group_arn: " + tgARN + "\n",
		[]string{`endpoint (--endpoint) "*.example.com": has '*'`, `name "*"`}},
	{"same target group with prune", validSync + "  - endpoint: orders-ro.example.com\n    target_group_arn: " + tgARN + "\n    prune: false\n",
		[]string{"syncs[1] (orders-ro): target_group_arn is also used by syncs[0] (orders); one mapping would deregister targets the other still needs"}},
	{"same target group without prune", validSync + "    prune: false\n  - endpoint: orders-ro.example.com\n    target_group_arn: " + tgARN + "\n    prune: false\n",
		[]string{"syncs[1] (orders-ro): target_group_arn is also used by syncs[0] (orders)"}},
	{"dns server not host:port", validSync + "dns: {servers: [\"10.0.0.2:dns\"]}\n", []string{`dns.servers[0] (--dns-server) "10.0.0.2:dns": port "dns" is not a number 1-65535`}},
	{"dns server port 0", validSync + "dns: {servers: [\"10.0.0.2:0\"]}\n", []string{`dns.servers[0] (--dns-server) "10.0.0.2:0": port "0"`}},
	{"dns server no host", validSync + "dns: {servers: [10.0.0.1, \":53\"]}\n", []string{`dns.servers[1] (--dns-server) ":53": no host`}},
	{"dns server bad host", validSync + "dns: {servers: [\"dns server:53\"]}\n", []string{`host "dns server" is neither an IP address nor a DNS name`}},
	{"dns server too many colons", validSync + "dns: {servers: [\"a:b:c\"]}\n", []string{`dns.servers[0] (--dns-server) "a:b:c": not host:port`}},
	{"dns mode", validSync + "dns: {mode: iterative}\n", []string{`dns.mode "iterative": expected recursive or authoritative`}},
	{"authoritative poll min below floor", validSync + "dns: {mode: authoritative}\npoll: {min: 200ms}\n",
		[]string{"poll.min 200ms: expected at least 250ms"}},
	{"dns timeout 0", validSync + "dns: {timeout: 0s}\n", []string{"dns.timeout 0s: expected at least 100ms, such as 2s"}},
	{"dns timeout negative", validSync + "dns: {timeout: -1s}\n", []string{"dns.timeout -1s: expected at least 100ms"}},
	{"poll min 0", validSync + "poll: {min: 0s}\n", []string{"poll.min 0s: expected at least 250ms, such as 1s"}},
	{"poll max below min", validSync + "poll: {min: 10s, max: 5s}\n", []string{"poll.max 5s: expected at least poll.min (10s)"}},
	{"resync 0", validSync + "resync_interval: 0s\n", []string{"resync_interval 0s: expected at least 5s, such as 60s"}},
	{"resync below poll min", validSync + "poll: {min: 10s, max: 30s}\nresync_interval: 6s\n", []string{"resync_interval 6s: expected at least poll.min (10s)"}},
	// Issue 9 item 11: floors, so that no setting makes ipsync flood DNS or throttle the account's AWS API.
	{"poll min 1ms and resync 1ms", validSync + "poll: {min: 1ms}\nresync_interval: 1ms\n", []string{
		"poll.min 1ms: expected at least 250ms", "resync_interval 1ms: expected at least 5s"}},
	{"poll min below floor", validSync + "poll: {min: 249ms}\n", []string{"poll.min 249ms: expected at least 250ms"}},
	{"poll max below floor", validSync + "poll: {min: 250ms, max: 999ms}\n", []string{"poll.max 999ms: expected at least 1s"}},
	{"resync below floor", validSync + "poll: {min: 1s}\nresync_interval: 4s\n", []string{"resync_interval 4s: expected at least 5s"}},
	{"dns timeout below floor", validSync + "dns: {timeout: 99ms}\n", []string{"dns.timeout 99ms: expected at least 100ms"}},
	{"listen no port", validSync + "listen: \"9796\"\n", []string{`listen (--listen) "9796": not host:port; expected host:port such as ":9796"`}},
	{"listen bad port", validSync + "listen: \":99999\"\n", []string{`listen (--listen) ":99999": port "99999" is not a number 0-65535`}},
	{"listen named port", validSync + "listen: \":http\"\n", []string{`port "http"`}},
	{"log level", validSync + "log: {level: verbose}\n", []string{`log.level (--log-level) "verbose": expected debug, info, warn or error`}},
	{"log format", validSync + "log: {format: text}\n", []string{`log.format (--log-format) "text": expected json or console`}},
}

func TestValidate(t *testing.T) {
	for _, tc := range slices.Concat(validateCases, sourceCases) {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := inline(t, tc.doc)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			got := problems(t, cfg)
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n  %s\nwant %d: %q", strings.Join(got, "\n  "), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d:\n  %s\nwant it to contain\n  %s", i, got[i], w)
				}
			}
		})
	}
}

var validCases = []struct{ name, doc string }{
	{"minimal", validSync},
	{"every availability zone", validSync + "    availability_zone: all\n" +
		"  - {endpoint: b.example.com, availability_zone: vpc, target_group_arn: " + strings.Replace(tgARN, "/orders/", "/b/", 1) + "}\n" +
		"  - {endpoint: c.example.com, availability_zone: auto, target_group_arn: " + strings.Replace(tgARN, "/orders/", "/c/", 1) + "}\n"},
	{"ports", validSync + "    port: 1\n  - {name: b, endpoint: b.x, port: 65535, target_group_arn: " + strings.Replace(tgARN, "/orders/", "/b/", 1) + "}\n"},
	{"fqdn endpoint and name with dots", "syncs:\n  - {name: orders.rw_1, endpoint: orders.example.com., target_group_arn: " + tgARN + "}\n"},
	{"single-label endpoint", "syncs:\n  - {endpoint: db, target_group_arn: " + tgARN + "}\n"},
	{"other partition", "syncs:\n  - {endpoint: db.x, target_group_arn: \"arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:targetgroup/db/0123456789abcdef\"}\n"},
	{"role with path", validSync + "    role_arn: arn:aws:iam::123456789012:role/service/ipsync\n"},
	{"allowed_cidrs", validSync + "    allowed_cidrs: [10.1.0.0/16, \"fd00::/8\", 0.0.0.0/0]\n"},
	{"allowed_cidrs empty", validSync + "    allowed_cidrs: []\n"},
	{"listen disabled", validSync + "listen: \"\"\n"},
	{"listen any port", validSync + "listen: \"127.0.0.1:0\"\n"},
	{"listen host name", validSync + "listen: \"localhost:9796\"\n"},
	{"dns servers", validSync + "dns: {servers: [10.0.0.2, \"[fd00::2]:53\", resolver.internal:5353]}\n"},
	{"authoritative at the poll min floor", validSync + "dns: {mode: authoritative}\npoll: {min: 250ms}\n"},
	{"resync equals poll min", validSync + "poll: {min: 5s, max: 5s}\nresync_interval: 5s\n"},
	{"every floor", validSync + "poll: {min: 250ms, max: 1s}\nresync_interval: 5s\ndns: {timeout: 100ms}\n"},
	{"every log level and format", validSync + "log: {level: debug, format: console}\n"},
	{"endpoints", "syncs:\n  - {endpoints: [r1.example.com, r2.example.com.], target_group_arn: " + tgARN + "}\n"},
	{"rds cluster roles", "syncs:\n  - {rds: {cluster: orders, role: writer}, target_group_arn: " + tgARN + "}\n" +
		"  - {rds: {cluster: orders, role: reader, refresh: 5s}, target_group_arn: " + strings.Replace(tgARN, "/orders/", "/r/", 1) + "}\n" +
		"  - {rds: {cluster: orders, role: any, refresh: 10m}, target_group_arn: " + strings.Replace(tgARN, "/orders/", "/a/", 1) + "}\n"},
	{"rds custom endpoint", "syncs:\n  - {rds: {cluster: orders, custom_endpoint: reporting}, target_group_arn: " + tgARN + "}\n"},
	{"rds instance", "syncs:\n  - {rds: {instance: orders, with_replicas: true}, target_group_arn: " + tgARN + "}\n" +
		"  - {rds: {instance: orders, with_replicas: false}, target_group_arn: " + strings.Replace(tgARN, "/orders/", "/i/", 1) + "}\n"},
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := inline(t, tc.doc)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if err := cfg.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	doc := `
syncs:
  - endpoint: orders.example.com
    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:orders
    port: 0
  - name: reports
    target_group_arn: ` + tgARN + `
log: {level: loud}
`
	cfg, err := inline(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want *ValidationError", err)
	}
	want := []string{
		`syncs[0] (orders): target_group_arn (--target-group-arn) "arn:aws:elasticloadbalancing:us-east-1:123456789012:orders": resource "orders" is not targetgroup/NAME/ID; expected arn:aws:elasticloadbalancing:REGION:ACCOUNT_ID:targetgroup/NAME/ID`,
		`syncs[0] (orders): port (--port) 0: expected 1-65535; leave port out to use the target group's port`,
		`syncs[1] (reports): endpoint (--endpoint): missing; expected the database's DNS name, such as orders.c9abc.us-east-1.rds.amazonaws.com`,
		`log.level (--log-level) "loud": expected debug, info, warn or error`,
	}
	if !reflect.DeepEqual(ve.Problems, want) {
		t.Errorf("problems:\n  %s\nwant\n  %s", strings.Join(ve.Problems, "\n  "), strings.Join(want, "\n  "))
	}
	if got, wantMsg := err.Error(), "invalid configuration (4 problems):\n  "+strings.Join(want, "\n  "); got != wantMsg {
		t.Errorf("Error() =\n%s\nwant\n%s", got, wantMsg)
	}

	// An unknown key is a load error; it names the key and line.
	_, err = inline(t, strings.Replace(doc, "    port: 0\n", "    port: 0\n    colour: red\n", 1))
	if err == nil || !strings.Contains(err.Error(), `line 6: unknown key "colour" in a syncs entry`) {
		t.Errorf("unknown key: err = %v", err)
	}
}

func TestValidateNeverPanics(t *testing.T) {
	var nilCfg *config.Config
	if err := nilCfg.Validate(); err == nil {
		t.Error("nil config validated")
	}
	zero := &config.Config{Syncs: []config.Sync{{}}}
	p := problems(t, zero)
	for _, w := range []string{"endpoint (--endpoint): missing", "target_group_arn (--target-group-arn): missing", "availability_zone",
		"deregister_after 0", "dns.timeout 0s", "poll.min 0s", "resync_interval 0s", "log.level", "log.format"} {
		if !strings.Contains(strings.Join(p, "\n"), w) {
			t.Errorf("zero config: no problem mentions %q in\n%s", w, strings.Join(p, "\n"))
		}
	}
	if err := (&config.ValidationError{Problems: []string{"x"}}).Error(); err != "invalid configuration (1 problem):\n  x" {
		t.Errorf("Error() = %q", err)
	}
}

// Load with flags not made by BindFlags, or none, is the defaults.
func TestLoadWithoutFlags(t *testing.T) {
	for _, f := range []*config.Flags{nil, {}} {
		cfg, err := config.Load(f)
		if err != nil || !reflect.DeepEqual(cfg, config.Defaults()) {
			t.Errorf("Load(%v) = %+v, %v; want defaults", f, cfg, err)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}

func TestCheckEnv(t *testing.T) {
	fs, _, err := cli(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	read := []string{"IPSYNC_CONFIG=x", "IPSYNC_DRY_RUN=true", "IPSYNC_FAILOVER_WINDOW=30s", "HOME=/root", "ipsync_lower=1"}
	if err := config.CheckEnv(fs, read, "IPSYNC_FAILOVER_WINDOW"); err != nil {
		t.Errorf("variables the command reads: %v", err)
	}
	err = config.CheckEnv(fs, append(read, "IPSYNC_DRY_RUNN=true", "IPSYNC_SHARD=1/2", "IPSYNC_SHARD=2/2"), "IPSYNC_FAILOVER_WINDOW")
	if err == nil {
		t.Fatal("IPSYNC_DRY_RUNN and IPSYNC_SHARD: want an error")
	}
	for _, w := range []string{"IPSYNC_DRY_RUNN, IPSYNC_SHARD are set", "ipsync sync", "IPSYNC_DRY_RUN,", "IPSYNC_FAILOVER_WINDOW"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
}
