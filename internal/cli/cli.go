// Package cli is ipsync's command line: it parses flags and environment, builds the engine and its collaborators,
// and turns results into output and exit codes. main calls Main and nothing else.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/ipsync/ipsync/internal/config"
)

// Set at build time: go build -ldflags "-X github.com/ipsync/ipsync/internal/cli.version=v1.2.3 -X ...commit=abc".
var (
	version = "dev"
	commit  = ""
)

// Exit codes.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // sync --detailed-exitcode: changes were (or with --dry-run would be) made
)

// Env is the process environment the commands read, injectable for tests.
type Env struct {
	Args   []string // without the program name
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) (string, bool)
	// Environ lists the environment as "NAME=value" (os.Environ), to find IPSYNC_* variables no flag reads.
	Environ func() []string
	// Signals is cancelled when the process should stop (SIGTERM, SIGINT).
	Signals context.Context

	// inspect, when set, is given each flag set a command makes: completion learns every command's flags by
	// running it with -h, which returns before anything else happens.
	inspect func(*flag.FlagSet)
}

type command struct {
	name, summary string
	run           func(env Env, args []string) int
}

func commands() []command {
	return []command{
		{"run", "the daemon: keep every mapping in sync until SIGTERM/SIGINT", runDaemon},
		{"sync", "one pass over every mapping, then exit (--dry-run, --detailed-exitcode)", runSync},
		{"status", "resolved addresses and registered targets with health, per mapping", runStatus},
		{"validate", "check the configuration (--remote: also each target group)", runValidate},
		demoCommand,
		{"healthcheck", "exit 0 when the local daemon is ready (container health check)", runHealthcheck},
		{"completion", "a shell completion script: ipsync completion bash|zsh|fish", runCompletion},
		{"version", "version, commit, Go version", runVersion},
	}
}

// Run runs the command in env.Args and returns the process exit code.
func Run(env Env) int {
	if len(env.Args) == 0 {
		usage(env.Stderr)
		return exitError
	}
	name, args := env.Args[0], env.Args[1:]
	switch name {
	case "help", "-h", "--help", "-help":
		if len(args) == 1 && !strings.HasPrefix(args[0], "-") { // help COMMAND: that command's flags
			return Run(Env{Args: []string{args[0], "-h"}, Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv, Environ: env.Environ, Signals: env.Signals})
		}
		usage(env.Stdout)
		return exitOK
	case "--version", "-version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(env, args)
		}
	}
	names := []string{"help"}
	for _, c := range commands() {
		names = append(names, c.name)
	}
	fmt.Fprintf(env.Stderr, "ipsync: unknown command %q%s\n\n", name, didYouMean(name, names, ""))
	usage(env.Stderr)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "ipsync keeps an NLB IP target group pointed at the addresses a database endpoint resolves to.")
	fmt.Fprintln(w, "\nUsage: ipsync <command> [flags]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n"+tryDemo+" Flags of a command, each with its IPSYNC_* environment variable: ipsync <command> -h")
}

// newFlagSet makes a command's flag set. Help (-h) goes to stdout; errors go to stderr (see parseArgs).
func newFlagSet(env Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("ipsync "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parseArgs prints errors and help itself
	fs.Usage = func() {
		fmt.Fprintf(env.Stdout, "Usage: ipsync %s [flags]\n%s\n", name, synopsis)
		printFlags(env.Stdout, fs)
	}
	if env.inspect != nil {
		env.inspect(fs)
	}
	return fs
}

// printFlags lists the flags of fs, each with the environment variable that also sets it.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags (a flag not given is read from its environment variable):")
	fs.VisitAll(func(fl *flag.Flag) {
		kind, text := flag.UnquoteUsage(fl)
		head := "--" + fl.Name
		if kind != "" {
			head += " " + kind
		}
		fmt.Fprintf(w, "  %-28s %s\n", head, config.EnvName(fl.Name))
		if !zeroDefault(fl) {
			text += fmt.Sprintf(" (default %q)", fl.DefValue)
		}
		fmt.Fprintf(w, "      %s\n", text)
	})
}

func zeroDefault(fl *flag.Flag) bool {
	switch fl.DefValue {
	case "", "0", "false", "0s":
		return true
	}
	return false
}

// parse parses args, then fills unset flags from IPSYNC_* variables; an IPSYNC_* variable that no flag reads, and
// that is not one of also, is an error. It returns -1 to go on, or an exit code.
func parse(env Env, fs *flag.FlagSet, args []string, also ...string) int {
	if code := parseArgs(env, fs, args); code >= 0 {
		return code
	}
	if err := applyEnv(fs, env.Getenv); err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", fs.Name(), err)
		return exitError
	}
	var environ []string
	if env.Environ != nil {
		environ = env.Environ()
	}
	if err := config.CheckEnv(fs, environ, also...); err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", fs.Name(), err)
		return exitError
	}
	return -1
}

// parseArgs parses the command line alone. It returns -1 to go on, or an exit code: 0 after -h (help on
// stdout), 1 after an error (on stderr, with the flag the user most likely meant).
func parseArgs(env Env, fs *flag.FlagSet, args []string) int {
	// The flag package prints the help after any error too; here it is printed for -h only.
	help := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = help
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help()
			return exitOK
		}
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			var names []string
			fs.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
			msg = "unknown flag --" + name + didYouMean(name, names, "--")
		}
		fmt.Fprintf(env.Stderr, "%s: %s\n(flags of this command: %s -h)\n", fs.Name(), msg, fs.Name())
		return exitError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "%s: unexpected arguments %q; flags go before nothing else\n", fs.Name(), fs.Args())
		return exitError
	}
	return -1
}

func runVersion(env Env, args []string) int {
	fs := newFlagSet(env, "version", "Print the version, commit and Go version.")
	// No environment: version reads no configuration, so no variable can mislead it, and it must work in any
	// container's environment.
	if code := parseArgs(env, fs, args); code >= 0 {
		return code
	}
	v := buildInfo()
	fmt.Fprintf(env.Stdout, "ipsync %s (commit %s, %s %s/%s)\n", v.Version, v.Commit, v.GoVersion, runtime.GOOS, runtime.GOARCH)
	return exitOK
}

type versionInfo struct{ Version, Commit, GoVersion string }

// buildInfo prefers the values stamped with -ldflags and falls back to what the Go toolchain recorded.
func buildInfo() versionInfo {
	v := versionInfo{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v.Commit == "" {
				v.Commit = s.Value
			}
		}
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

// Main is the process entry point's body: real args, streams, environment and signals.
func Main(signals context.Context) int {
	env := Env{Args: os.Args[1:], Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.LookupEnv, Environ: os.Environ, Signals: signals}
	if inLambda(env) {
		return runLambda(env) // the same binary, run by the Lambda runtime as bootstrap
	}
	return Run(env)
}

// didYouMean is "; did you mean PREFIX+NAME?" for the known name closest to typed when it is close enough to be a
// typo (two edits, or a third of the letters in a long name), or else the first that typed begins; "" otherwise.
func didYouMean(typed string, known []string, prefix string) string {
	best, bestDist := "", max(2, len(typed)/3)+1
	for _, k := range known {
		if d := levenshtein(typed, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	for _, k := range known {
		if best == "" && len(typed) >= 2 && strings.HasPrefix(k, typed) {
			best = k
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s%s?", prefix, best)
}

// levenshtein is the edit distance between a and b (insertions, deletions and substitutions of bytes).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
