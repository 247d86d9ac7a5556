package resolver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Query describes one query sent to one server. Config.OnQuery receives every query either mode sends, for
// metrics (queries per server and mode) and logs.
type Query struct {
	Mode Mode
	// Server is the host:port asked. NameServer is the name server's host name in authoritative mode
	// ("ns-1.awsdns-01.org."), "" in recursive mode: a metric label can use it where an IP must not be one.
	Server, NameServer string
	Name               string // the question's name, lower-case FQDN
	Type               uint16 // the question's type (dns.TypeA, dns.TypeNS, ...)
	Rcode              int    // the answer's rcode; -1 when no answer came
	Err                error  // why no answer came (timeout, network error); nil otherwise
	Duration           time.Duration
}

// Kind classifies the query's outcome as an error's Kind would: "" for a NOERROR answer, KindNXDOMAIN,
// KindSERVFAIL, KindREFUSED, KindTimeout, or KindOther for any other rcode or network error.
func (q Query) Kind() Kind {
	switch {
	case q.Err != nil && isTimeout(q.Err):
		return KindTimeout
	case q.Err != nil:
		return KindOther
	}
	switch q.Rcode {
	case dns.RcodeSuccess:
		return ""
	case dns.RcodeNameError:
		return KindNXDOMAIN
	case dns.RcodeServerFailure:
		return KindSERVFAIL
	case dns.RcodeRefused:
		return KindREFUSED
	}
	return KindOther
}

// transport sends one query to one server: over UDP and, when the answer is truncated, again over TCP.
// It holds no mutable state.
type transport struct {
	mode      Mode
	recursion bool // the RD bit: ask the server to resolve for us (recursive) or to answer from its zones
	timeout   time.Duration
	forceTCP  bool
	udp, tcp  *dns.Client
	onQuery   func(Query)
}

func newTransport(mode Mode, timeout time.Duration, forceTCP bool, onQuery func(Query)) transport {
	return transport{
		mode:      mode,
		recursion: mode == ModeRecursive,
		timeout:   timeout,
		forceTCP:  forceTCP,
		udp:       &dns.Client{Net: "udp", Timeout: timeout, UDPSize: udpSize},
		tcp:       &dns.Client{Net: "tcp", Timeout: timeout},
		onQuery:   onQuery,
	}
}

// failure classifies an exchange that gave no usable answer: a network error, or an rcode other than NOERROR
// and NXDOMAIN. ok is true for a usable answer.
func (t *transport) failure(server string, resp *dns.Msg, err error) (a attempt, ok bool) {
	if err != nil {
		if isTimeout(err) {
			return attempt{server, KindTimeout, fmt.Sprintf("no answer from %s within %s", server, t.timeout)}, false
		}
		return attempt{server, KindOther, fmt.Sprintf("%s: %v", server, err)}, false
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return attempt{}, true
	case dns.RcodeServerFailure:
		return attempt{server, KindSERVFAIL, server + " answered SERVFAIL"}, false
	case dns.RcodeRefused:
		return attempt{server, KindREFUSED, server + " answered REFUSED"}, false
	}
	return attempt{server, KindOther, fmt.Sprintf("%s answered %s", server, rcodeName(resp.Rcode))}, false
}

// query asks each server in turn for (name, qtype) and returns the first NOERROR or NXDOMAIN answer.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, *Error) {
	var fails []attempt
	for _, server := range r.servers {
		if err := ctxDone(ctx); err != nil {
			return nil, "", ctxError(err, server)
		}
		resp, err := r.exchange(ctx, server, "", name, qtype)
		if err != nil {
			if cerr := ctxDone(ctx); cerr != nil {
				return nil, "", ctxError(cerr, server)
			}
		}
		if f, ok := r.failure(server, resp, err); !ok {
			fails = append(fails, f)
			continue
		}
		return resp, server, nil
	}
	return nil, "", r.summarize(fails)
}

// exchange asks one server over UDP and, when the answer is truncated, again over TCP (RFC 7766), and reports
// the query to onQuery. nameServer is the server's host name in authoritative mode.
func (t *transport) exchange(ctx context.Context, server, nameServer, name string, qtype uint16) (*dns.Msg, error) {
	start := time.Now()
	resp, err := t.exchangeTCPOnTruncation(ctx, server, name, qtype)
	if t.onQuery != nil {
		q := Query{Mode: t.mode, Server: server, NameServer: nameServer, Name: name, Type: qtype, Rcode: -1,
			Err: err, Duration: time.Since(start)}
		if resp != nil {
			q.Rcode = resp.Rcode
		}
		t.onQuery(q)
	}
	return resp, err
}

func (t *transport) exchangeTCPOnTruncation(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = t.recursion
	m.SetEdns0(udpSize, false)
	if !t.forceTCP {
		resp, err := t.exchangeOnce(ctx, t.udp, server, m)
		switch {
		case resp != nil && resp.Truncated:
			// Ask again over TCP. A server that cut the UDP answer mid-record gives a parse error with it.
		case err != nil:
			return nil, err
		default:
			return resp, nil
		}
		m.Id = dns.Id()
	}
	resp, err := t.exchangeOnce(ctx, t.tcp, server, m)
	if err != nil {
		return nil, err
	}
	if resp.Truncated {
		// Not even TCP carried the whole answer (over 64 KiB). Acting on part of it could deregister the
		// addresses that were cut off: the desired state is unknown (I1).
		return nil, errors.New("the answer is truncated even over TCP (larger than 64 KiB); ipsync does not act on part of an answer")
	}
	return resp, nil
}

// exchangeOnce runs one query under min(timeout, ctx deadline). dns.Client only reads ctx's deadline, so a
// cancelled ctx closes the connection to unblock the read at once.
func (t *transport) exchangeOnce(ctx context.Context, c *dns.Client, server string, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		if ctx.Err() != nil && !isTimeout(err) {
			//nolint:errorlint // only ctx.Err() may decide the error's kind; the closed connection's error is for people
			err = fmt.Errorf("%w (%v)", ctx.Err(), err) // closed by AfterFunc: report why
		}
		if resp != nil && resp.Truncated && resp.Id == m.Id {
			return resp, err // the caller retries over TCP
		}
		return nil, err
	}
	// Some servers leave the question out of an error answer (REFUSED); one that is there must be ours.
	q := m.Question[0]
	if len(resp.Question) > 0 && (!sameName(resp.Question[0].Name, q.Name) || resp.Question[0].Qtype != q.Qtype) {
		return nil, fmt.Errorf("answer is for %s %s, not the question asked (%s %s)", resp.Question[0].Name,
			dns.TypeToString[resp.Question[0].Qtype], q.Name, dns.TypeToString[q.Qtype])
	}
	return resp, nil
}
