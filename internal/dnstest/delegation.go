package dnstest

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Delegation is a small DNS tree for tests of authoritative mode: a parent zone whose server delegates a child
// zone to the child zone's servers, and a recursive server that knows both zones' name servers, as the resolver
// of a VPC would. Name server addresses are published from 192.0.2.0/24 and routed to the servers by Addrs.
type Delegation struct {
	ParentZone, ChildZone string    // lower-case FQDNs
	Recursive             *Server   // the server to configure as dns.servers
	Parent                *Server   // authoritative for ParentZone, name server ns.<ParentZone>
	Children              []*Server // authoritative for ChildZone, name servers ns1.<ChildZone>, ns2.<ChildZone>, ...
	Addrs                 *AddrMap  // for resolver.AuthoritativeConfig.NameServerAddr
}

// NewDelegation starts 2+children servers. ttl is the TTL of the NS records and of the name servers'
// addresses. The zones hold no other records yet: set them on each child server (or all with SetA).
func NewDelegation(parentZone, childZone string, children int, ttl uint32) (*Delegation, error) {
	parentZone, childZone = key(parentZone), key(childZone)
	if children < 1 || children > 200 {
		return nil, fmt.Errorf("dnstest: %d child zone servers; want 1 to 200", children)
	}
	d := &Delegation{ParentZone: parentZone, ChildZone: childZone, Addrs: &AddrMap{}}
	servers := make([]*Server, 2+children)
	for i := range servers {
		s, err := New()
		if err != nil {
			_ = closeAll(servers[:i])
			return nil, err
		}
		servers[i] = s
	}
	d.Recursive, d.Parent, d.Children = servers[0], servers[1], servers[2:]

	publish := func(host string, ip string, s *Server) {
		d.Addrs.Set(netip.MustParseAddr(ip), s)
		d.Recursive.SetA(host, ttl, ip)
	}
	parentNS := "ns." + parentZone
	d.Parent.SetZone(parentZone, ttl, parentNS)
	d.Recursive.SetNS(parentZone, ttl, parentNS)
	publish(parentNS, "192.0.2.1", d.Parent)
	d.Parent.SetA(parentNS, ttl, "192.0.2.1")

	childNS := make([]string, children)
	for i := range childNS {
		childNS[i] = "ns" + strconv.Itoa(i+1) + "." + childZone
	}
	d.Parent.SetNS(childZone, ttl, childNS...)
	d.Recursive.SetNS(childZone, ttl, childNS...)
	for i, c := range d.Children {
		c.SetZone(childZone, ttl, childNS...)
		ip := "192.0.2." + strconv.Itoa(10+i)
		publish(childNS[i], ip, c)
		d.Parent.SetA(childNS[i], ttl, ip) // glue
		for _, cc := range d.Children {
			cc.SetA(childNS[i], ttl, ip)
		}
	}
	return d, nil
}

// SetA sets the A records of name on every child zone server.
func (d *Delegation) SetA(name string, ttl uint32, ips ...string) {
	for _, c := range d.Children {
		c.SetA(name, ttl, ips...)
	}
}

// Close stops every server.
func (d *Delegation) Close() error {
	return closeAll(append([]*Server{d.Recursive, d.Parent}, d.Children...))
}

func closeAll(servers []*Server) error {
	var errs []error
	for _, s := range servers {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
