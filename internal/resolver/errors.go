package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Kind classifies a failed resolution, for metrics and for deciding what to tell the operator.
type Kind string

// Kinds. Every one of them means "desired state unknown" to the caller, which must not change targets on it (I1).
const (
	KindNXDOMAIN     Kind = "nxdomain"
	KindSERVFAIL     Kind = "servfail"
	KindREFUSED      Kind = "refused"
	KindTimeout      Kind = "timeout"
	KindNoAddress    Kind = "no_address"
	KindLoop         Kind = "cname_loop"
	KindChainTooLong Kind = "chain_too_long"
	KindOther        Kind = "error"
	// KindUnreachable: authoritative mode found the zone's name servers (or none) but none of them gave an
	// authoritative answer. The error wraps ErrNoAuthoritative; recursive mode may still work (Fallback).
	KindUnreachable Kind = "unreachable"
)

// ErrNoAuthoritative is wrapped by every authoritative-mode error after which asking the recursive servers
// instead may work: no name server of the zone could be found or reached, or none answered authoritatively.
// A VPC without internet egress gets it for every name. Test with errors.Is.
var ErrNoAuthoritative = errors.New("no authoritative name server answered")

// Error is every error Resolve returns.
type Error struct {
	Kind   Kind
	Name   string // the name as passed to Resolve
	Server string // host:port whose answer (or silence) decided the error; "" if none was asked
	Err    error  // what happened
}

func (e *Error) Error() string {
	msg := "resolve " + e.Name + ": "
	if e.Err != nil {
		msg += e.Err.Error()
	} else {
		msg += string(e.Kind)
	}
	if h := hint(e.Kind); h != "" {
		msg += "; " + h
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// hint says what to check for each kind. KindOther errors carry their own advice in Err.
func hint(k Kind) string {
	switch k {
	case KindTimeout:
		return "check dns.servers and network access"
	case KindSERVFAIL:
		return "the DNS server could not resolve the name; check the endpoint's DNS zone and the server's upstream"
	case KindREFUSED:
		return "the DNS server will not answer this client; check dns.servers"
	case KindNXDOMAIN:
		return "check the endpoint name"
	case KindNoAddress:
		return "check the endpoint name and the target group's IP address type"
	case KindLoop, KindChainTooLong:
		return "fix the endpoint's CNAME records"
	case KindUnreachable:
		return "the zone's name servers cannot be reached from here (no DNS to the internet?); allow DNS (port 53) to the internet or set dns.mode: recursive"
	}
	return ""
}

// KindOf returns the Kind of a Resolve error: "" for nil, KindOther for errors not from this package.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// attempt is one server's failure to give a usable answer.
type attempt struct {
	server string
	kind   Kind
	desc   string
}

// rank orders failures by how much they tell the operator: a server that answered beats one that did not.
func rank(k Kind) int {
	switch k {
	case KindSERVFAIL:
		return 4
	case KindREFUSED:
		return 3
	case KindTimeout:
		return 2
	}
	return 1
}

// summarize turns every server's failure into one error whose Kind is the most informative failure.
func (r *Resolver) summarize(fails []attempt) *Error {
	if len(fails) == 0 { // only a Resolver not made by New has no servers
		return &Error{Kind: KindOther, Err: errors.New("no DNS servers to ask; build the Resolver with resolver.New")}
	}
	best := fails[0]
	allTimeout := true
	descs := make([]string, len(fails))
	servers := make([]string, len(fails))
	for i, f := range fails {
		if rank(f.kind) > rank(best.kind) {
			best = f
		}
		allTimeout = allTimeout && f.kind == KindTimeout
		descs[i], servers[i] = f.desc, f.server
	}
	if allTimeout {
		return &Error{Kind: KindTimeout, Server: best.server,
			Err: fmt.Errorf("no answer from %s within %s (timeout)", strings.Join(servers, ", "), r.timeout)}
	}
	msg := strings.Join(descs, ", ")
	if best.kind == KindOther {
		msg += "; check dns.servers and network access"
	}
	return &Error{Kind: best.kind, Server: best.server, Err: errors.New(msg)}
}

// ctxDone is ctx.Err(), but also reports a deadline that has passed before ctx's timer marked it: the read that
// timed out at ctx's deadline can return first, and the next server would then be asked with no time left.
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// ctxError reports that the caller's context ended the resolution: a deadline counts as a timeout.
func ctxError(err error, server string) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Server: server,
			Err: fmt.Errorf("no answer from %s before the caller's deadline (timeout): %w", server, err)}
	}
	return &Error{Kind: KindOther, Server: server, Err: fmt.Errorf("stopped while asking %s: %w", server, err)}
}

func rcodeName(rcode int) string {
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(rcode)
}

func isTimeout(err error) bool {
	var ne net.Error
	return (errors.As(err, &ne) && ne.Timeout()) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}
