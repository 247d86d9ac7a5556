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
	fmt.Fprintf(env.Stderr, "ipsync: unknown command %q\n\n", name)
	usage(env.Stderr)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "ipsync keeps an NLB IP target group pointed at the addresses a database endpoint resolves to.")
	fmt.Fprintln(w, "\nUsage: ipsync <command> [flags]   (every flag is also an env var IPSYNC_<FLAG_NAME>)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n"+tryDemo+" Flags of a command: ipsync <command> -h")
}

// newFlagSet makes a command's flag set whose errors and help go to stderr.
func newFlagSet(env Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("ipsync "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: ipsync %s [flags]\n%s\n\nFlags (each also an environment variable IPSYNC_<FLAG_NAME>, e.g. --dry-run = IPSYNC_DRY_RUN):\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
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

// parseArgs parses the command line alone. It returns -1 to go on, or an exit code.
func parseArgs(env Env, fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
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

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
