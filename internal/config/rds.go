package config

import "strings"

// DBIdentifier is the RDS DB instance or cluster identifier whose events (the Lambda's RDS failover events,
// detail.SourceIdentifier / SourceArn) concern this mapping: rds_identifier when set, else the endpoint's first
// DNS label, lower-cased as RDS stores identifiers.
//
// The default is right for RDS instance endpoints (orders.c9abc.us-east-1.rds.amazonaws.com -> "orders") and
// for Aurora and Multi-AZ cluster endpoints, writer and reader alike (orders.cluster-c9abc... and
// orders.cluster-ro-c9abc... -> the cluster "orders", which is what cluster events name). It is wrong for a
// custom cluster endpoint (its first label is the endpoint's own name, not the cluster's) and for RDS Proxy:
// set rds_identifier to the cluster or instance there. It is not stored in RDSIdentifier so that a loaded
// configuration still shows what the user wrote.
func (s Sync) DBIdentifier() string {
	if s.RDSIdentifier != "" {
		return strings.ToLower(s.RDSIdentifier)
	}
	return strings.ToLower(NameFromEndpoint(s.Endpoint))
}

// validRDSIdentifier applies RDS's rules for DB instance and cluster identifiers: 1-63 letters, digits and
// hyphens, starting with a letter, without two consecutive hyphens or a trailing one.
func validRDSIdentifier(id string) bool {
	if len(id) == 0 || len(id) > 63 || strings.Contains(id, "--") || strings.HasSuffix(id, "-") {
		return false
	}
	for i, r := range id {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter || !letter && !(r >= '0' && r <= '9') && r != '-' {
			return false
		}
	}
	return true
}
