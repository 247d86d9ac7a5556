package config

import (
	"fmt"
	"strings"
)

// Warnings lists configurations that are valid but will not do what the user most likely wants, each naming the
// mapping and what to write instead. Validate does not report them: a warning never stops ipsync.
func (c *Config) Warnings() []string {
	if c == nil {
		return nil
	}
	var w []string
	for i := range c.Syncs {
		s := &c.Syncs[i]
		for _, name := range s.DNSNames() {
			if msg := rotatingEndpoint(name, s.RDSIdentifier); msg != "" {
				key := "endpoint"
				if s.Endpoint == "" {
					key = "endpoints"
				}
				w = append(w, fmt.Sprintf("%s: %s %q %s", s.label(i), key, name, msg))
			}
		}
	}
	return w
}

// rotatingEndpoint explains why an Aurora reader or custom endpoint cannot be followed through DNS, and which
// rds: form follows it, or returns "" for any other name. Such endpoints answer one member per query, picked at
// random with a 1-second TTL: the mapping would see the members take turns, register the one it sees and
// deregister the others, draining healthy readers over and over.
func rotatingEndpoint(name, rdsIdentifier string) string {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if !strings.Contains(name, ".rds.amazonaws.com") {
		return ""
	}
	first, rest, _ := strings.Cut(name, ".")
	second, _, _ := strings.Cut(rest, ".")
	const why = "answers one member per query, at random, so following it through DNS would register and drain members in turn"
	switch {
	case strings.HasPrefix(second, "cluster-ro-"):
		// The first label of a reader endpoint is the cluster's identifier.
		return fmt.Sprintf("is an Aurora reader endpoint, which %s: use rds: {cluster: %s, role: reader} instead", why, first)
	case strings.HasPrefix(second, "cluster-custom-"):
		// The first label of a custom endpoint is its own name; the cluster is only known from rds_identifier.
		cluster := "CLUSTER_ID"
		if rdsIdentifier != "" {
			cluster = strings.ToLower(rdsIdentifier)
		}
		return fmt.Sprintf("is an Aurora custom endpoint, which %s: use rds: {cluster: %s, custom_endpoint: %s} instead", why, cluster, first)
	}
	return ""
}
