package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/config"
)

// run runs the command line args in-process with an empty environment.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(Env{Args: args, Stdout: &out, Stderr: &errOut, Getenv: func(string) (string, bool) { return "", false },
		Environ: func() []string { return nil }, Signals: context.Background()})
	return code, out.String(), errOut.String()
}

// TestHelp: help goes to stdout with exit 0, and each command's help lists its own flags, each with its variable.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, errOut := run(t, args...)
		if code != 0 || !strings.Contains(out, "Commands:") || errOut != "" {
			t.Errorf("ipsync %v: exit %d, stdout %q, stderr %q; want the command list on stdout and exit 0", args, code, out, errOut)
		}
	}
	for _, tc := range []struct {
		args      []string
		has, hasn []string
	}{
		{[]string{"run", "-h"}, []string{"--dry-run ", "IPSYNC_DRY_RUN", "--listen string", "IPSYNC_LISTEN", "--config string", "IPSYNC_CONFIG"}, []string{"--output", "--remote"}},
		{[]string{"sync", "--help"}, []string{"--detailed-exitcode", "IPSYNC_DETAILED_EXITCODE", "--output string", "IPSYNC_OUTPUT", "IPSYNC_PUSHGATEWAY_URL"}, []string{"--listen", "--remote"}},
		// --remote says what it checks; it does not check the port, it only shows the one targets will use.
		{[]string{"help", "validate"}, []string{"--remote", "IPSYNC_REMOTE", "inside allowed_cidrs", "prints the port targets will use"},
			[]string{"--dry-run", "--output", "protocol, port"}},
		{[]string{"healthcheck", "-h"}, []string{"--listen", "--config"}, []string{"--endpoint", "--log-level", "--dns-server"}},
		{[]string{"version", "-h"}, []string{"Usage: ipsync version"}, []string{"Flags"}},
	} {
		code, out, errOut := run(t, tc.args...)
		if code != 0 || errOut != "" {
			t.Errorf("ipsync %v: exit %d, stderr %q; want help on stdout and exit 0", tc.args, code, errOut)
		}
		for _, w := range tc.has {
			if !strings.Contains(out, w) {
				t.Errorf("ipsync %v: help lacks %q:\n%s", tc.args, w, out)
			}
		}
		for _, w := range tc.hasn {
			if strings.Contains(out, w) {
				t.Errorf("ipsync %v: help shows %q, a flag of another command:\n%s", tc.args, w, out)
			}
		}
	}
}

// TestDidYouMean: an unknown command or flag is an error on stderr that names the closest known one.
func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"snyc"}, `unknown command "snyc"; did you mean sync?`},
		{[]string{"valdate"}, "did you mean validate?"},
		{[]string{"stat"}, "did you mean status?"},
		{[]string{"sync", "--dryrun"}, "unknown flag --dryrun; did you mean --dry-run?"},
		{[]string{"run", "--target-group"}, "did you mean --target-group-arn?"},
		{[]string{"validate", "--remot"}, "did you mean --remote?"},
		{[]string{"completion", "bsh"}, "did you mean bash?"},
	} {
		code, out, errOut := run(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(out, "Flags") {
			t.Errorf("ipsync %v: exit %d, stderr %q, stdout %q; want exit 1 and %q on stderr", tc.args, code, errOut, out, tc.want)
		}
	}
	if _, _, errOut := run(t, "xyzzy"); strings.Contains(errOut, "did you mean") {
		t.Errorf("a name close to nothing got a suggestion: %q", errOut)
	}
}

func TestLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"sync", "sync", 0}, {"snyc", "sync", 2}, {"", "run", 3}, {"kitten", "sitting", 3}, {"dryrun", "dry-run", 1}} {
		if got := levenshtein(tc.a, tc.b); got != tc.want {
			t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestCompletion: each shell's script is produced and passes that shell's syntax check; bash's and fish's
// scripts complete commands and a command's own flags.
func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	for _, shell := range shells {
		code, out, errOut := run(t, "completion", shell)
		if code != 0 || errOut != "" || !strings.Contains(out, "dry-run") || !strings.Contains(out, "pushgateway-url") {
			t.Fatalf("completion %s: exit %d, stderr %q; want a script naming every command's flags:\n%s", shell, code, errOut, out)
		}
		path := filepath.Join(dir, "ipsync."+shell)
		if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := exec.LookPath(shell); err != nil {
			if os.Getenv("IPSYNC_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s is not installed (apt-get install zsh fish)", shell)
			}
			t.Logf("%s not installed (apt-get install zsh fish): its script's syntax is not checked; IPSYNC_REQUIRE_TOOLS=1 makes this a failure", shell)
			continue
		}
		if msg, err := exec.Command(shell, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", shell, err, msg)
		}
	}

	complete := map[string]func(line string) string{
		"bash": func(line string) string {
			script := `source "$1"; read -ra COMP_WORDS <<< "$2"; [[ "$2" == *" " ]] && COMP_WORDS+=(""); ` +
				`COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _ipsync; echo "${COMPREPLY[*]}"`
			out, err := exec.Command("bash", "-c", script, "bash", filepath.Join(dir, "ipsync.bash"), line).CombinedOutput()
			if err != nil {
				t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
			}
			return string(out)
		},
		"fish": func(line string) string {
			out, err := exec.Command("fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", filepath.Join(dir, "ipsync.fish"), line).CombinedOutput()
			if err != nil {
				t.Fatalf("fish completion of %q: %v\n%s", line, err, out)
			}
			return string(out)
		},
	}
	for shell, comp := range complete {
		if _, err := exec.LookPath(shell); err != nil {
			continue
		}
		for line, want := range map[string]string{"ipsync val": "validate", "ipsync sync --dr": "--dry-run", "ipsync completion z": "zsh"} {
			if got := comp(line); !strings.Contains(got, want) {
				t.Errorf("%s: completing %q gave %q, want %q", shell, line, got, want)
			}
		}
		if got := comp("ipsync sync --li"); strings.Contains(got, "--listen") {
			t.Errorf("%s: completing sync's flags offers --listen, which sync does not have: %q", shell, got)
		}
	}
}

// TestSyncToleratesListenEnv: sync and status have no --listen, but run in the daemon's environment.
func TestSyncToleratesListenEnv(t *testing.T) {
	var errOut bytes.Buffer
	env := map[string]string{config.EnvName(config.FlagListen): ":9796", config.EnvName(config.FlagConfig): "syncs: [\n"}
	code := Run(Env{Args: []string{"sync"}, Stdout: &bytes.Buffer{}, Stderr: &errOut,
		Getenv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Environ: func() []string { return []string{"IPSYNC_LISTEN=:9796", "IPSYNC_CONFIG=syncs: [\n"} }, Signals: context.Background()})
	if code != 1 || strings.Contains(errOut.String(), "IPSYNC_LISTEN") || !strings.Contains(errOut.String(), "IPSYNC_CONFIG") {
		t.Errorf("exit %d, stderr %q; want the configuration's syntax error, and no word on IPSYNC_LISTEN", code, errOut.String())
	}
}
