// Command ipsync keeps an AWS NLB IP target group pointed at the addresses a database endpoint resolves to.
// See README.md; everything lives in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ipsync/ipsync/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-ctx.Done()
		stop() // the first signal asks for a clean stop; a second one ends the process at once
	}()
	code := cli.Main(ctx)
	stop()
	os.Exit(code)
}
