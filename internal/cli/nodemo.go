//go:build nodemo

// Release builds (-tags nodemo) leave the demo out, and with it the loopback DNS server and ELBv2 emulator it
// runs on: the container image and the Lambda bootstrap carry no test doubles. `ipsync demo` says where to find it.

package cli

import "fmt"

var demoCommand = command{"demo", "left out of this build; from the source: go run ./cmd/ipsync demo", runDemo}

const tryDemo = "Try it with no AWS account, from the source: go run ./cmd/ipsync demo."

func runDemo(env Env, _ []string) int {
	fmt.Fprintln(env.Stderr, "ipsync demo: this build leaves the demo out; run it from source: go run ./cmd/ipsync demo")
	return exitError
}
