package resolver

import (
	"context"
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// query asks each server in turn for (name, qtype) and returns the first NOERROR or NXDOMAIN answer.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, *Error) {
	var fails []attempt
	for _, server := range r.servers {
		if err := ctxDone(ctx); err != nil {
			return nil, "", r.ctxError(err, server)
		}
		resp, err := r.exchange(ctx, server, name, qtype)
		if err != nil {
			if cerr := ctxDone(ctx); cerr != nil {
				return nil, "", r.ctxError(cerr, server)
			}
			if isTimeout(err) {
				fails = append(fails, attempt{server, KindTimeout, fmt.Sprintf("no answer from %s within %s", server, r.timeout)})
			} else {
				fails = append(fails, attempt{server, KindOther, fmt.Sprintf("%s: %v", server, err)})
			}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return resp, server, nil
		case dns.RcodeServerFailure:
			fails = append(fails, attempt{server, KindSERVFAIL, server + " answered SERVFAIL"})
		case dns.RcodeRefused:
			fails = append(fails, attempt{server, KindREFUSED, server + " answered REFUSED"})
		default:
			fails = append(fails, attempt{server, KindOther, fmt.Sprintf("%s answered %s", server, rcodeName(resp.Rcode))})
		}
	}
	return nil, "", r.summarize(fails)
}

// exchange asks one server over UDP and, when the answer is truncated, again over TCP (RFC 7766).
func (r *Resolver) exchange(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype) // sets RD: we want the server to recurse for us
	m.SetEdns0(udpSize, false)
	if !r.forceTCP {
		resp, err := r.exchangeOnce(ctx, r.udp, server, m)
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
	resp, err := r.exchangeOnce(ctx, r.tcp, server, m)
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
func (r *Resolver) exchangeOnce(ctx context.Context, c *dns.Client, server string, m *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		if ctx.Err() != nil && !isTimeout(err) {
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
