//go:build !nodemo

// The demo command, with the loopback DNS server and ELBv2 emulator it runs on. Release builds (-tags nodemo)
// leave this file, and so those test doubles, out of the binary; nodemo.go answers `ipsync demo` there.

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/ipsync/ipsync/internal/demo"
)

var demoCommand = command{"demo", "the whole system on this machine, no AWS account needed", runDemo}

const tryDemo = "Try it with no AWS account: ipsync demo."

func runDemo(env Env, args []string) int {
	fs := newFlagSet(env, "demo", "Run ipsync against a local DNS server and a local ELBv2 and RDS endpoint, with a failover every few seconds. No AWS account needed; Ctrl-C to stop.")
	opts := demo.Options{}
	fs.DurationVar(&opts.TTL, "ttl", 2*time.Second, "DNS TTL of the demo endpoints")
	fs.DurationVar(&opts.FailoverEvery, "failover-every", 10*time.Second, "time between simulated failovers")
	fs.DurationVar(&opts.Duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	plain := fs.Bool("plain", false, "print one line per event instead of a live view (default when stdout is not a terminal)")
	if code := parse(env, fs, args); code >= 0 {
		return code
	}
	opts.Live = !*plain && isTerminal(env.Stdout)
	if err := demo.Run(env.Signals, env.Stdout, opts); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(env.Stderr, "ipsync demo: %v\n", err)
		return exitError
	}
	return exitOK
}

// isTerminal reports whether w is a terminal, where the live view can redraw itself.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
