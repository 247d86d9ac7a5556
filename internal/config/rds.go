package config

import (
	"fmt"
	"strings"
	"time"
)

// RDS is an rds: source: the mapping follows a set of DB instances read from the RDS API, each through its own
// instance endpoint. Exactly one form is set:
//   - Cluster and Role: an Aurora or Multi-AZ DB cluster's writer, readers, or all members;
//   - Cluster and CustomEndpoint: the members of an Aurora custom endpoint;
//   - Instance, optionally WithReplicas: one DB instance, and with WithReplicas its read replicas too.
type RDS struct {
	Cluster        string        // cluster: DB cluster identifier
	Role           string        // role: RoleWriter | RoleReader | RoleAny; only with Cluster
	CustomEndpoint string        // custom_endpoint: a custom endpoint's identifier (the first label of its DNS name)
	Instance       string        // instance: DB instance identifier
	WithReplicas   bool          // with_replicas: also the instance's read replicas
	Refresh        time.Duration // refresh: how often membership is read again; default DefaultRDSRefresh
}

// rds.role values: which members of a cluster a mapping follows.
const (
	RoleWriter = "writer" // the member whose IsClusterWriter is true, as the cluster endpoint does
	RoleReader = "reader" // every other member, as the reader endpoint would in turn
	RoleAny    = "any"    // every member
)

// DefaultRDSRefresh is how often an rds: mapping reads its membership when refresh is not given. Membership
// changes (a reader added, a failover) take minutes on RDS's side, and the Lambda's RDS events refresh at once.
const DefaultRDSRefresh = 30 * time.Second

// MinRDSRefresh is the lowest refresh: each read costs two or three RDS Describe calls, whose per-account
// throttling budget is shared with the console, CloudFormation and every other tool in the account, and no
// RDS membership change completes in less than a few seconds.
const MinRDSRefresh = 5 * time.Second

// DBIdentifier is the cluster or instance an rds: source reads.
func (r *RDS) DBIdentifier() string {
	if r.Cluster != "" {
		return strings.ToLower(r.Cluster)
	}
	return strings.ToLower(r.Instance)
}

// DefaultName names an rds: mapping that gives no name: the cluster plus its role or custom endpoint
// ("orders-aurora-reader", "orders-aurora-reporting"), the instance ("orders"), or the instance with
// "-with-replicas".
func (r *RDS) DefaultName() string {
	switch {
	case r.Cluster != "" && r.CustomEndpoint != "":
		return r.Cluster + "-" + r.CustomEndpoint
	case r.Cluster != "" && r.Role != "":
		return r.Cluster + "-" + r.Role
	case r.Instance != "" && r.WithReplicas:
		return r.Instance + "-with-replicas"
	case r.Instance != "":
		return r.Instance
	}
	return r.Cluster
}

// String is the source as the user would write it, for messages: "rds: {cluster: orders, role: reader}".
func (r *RDS) String() string {
	switch {
	case r.Cluster != "" && r.CustomEndpoint != "":
		return fmt.Sprintf("rds: {cluster: %s, custom_endpoint: %s}", r.Cluster, r.CustomEndpoint)
	case r.Cluster != "":
		return fmt.Sprintf("rds: {cluster: %s, role: %s}", r.Cluster, r.Role)
	default:
		return fmt.Sprintf("rds: {instance: %s, with_replicas: %t}", r.Instance, r.WithReplicas)
	}
}

// problems checks an rds: source on its own; each problem starts with the key it is about.
func (r *RDS) problems() []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	const forms = "{cluster: ID, role: writer|reader|any}, {cluster: ID, custom_endpoint: NAME} or {instance: ID, with_replicas: true|false}"

	switch {
	case r.Cluster == "" && r.Instance == "":
		add("rds: no cluster: or instance:; expected one of %s", forms)
	case r.Cluster != "" && r.Instance != "":
		add("rds: cluster: and instance: are both set; a source reads either a DB cluster or a DB instance: expected one of %s", forms)
	}
	checkID := func(key, id, what string) {
		if id != "" && !ValidRDSIdentifier(id) {
			add("rds.%s %q: expected a %s identifier (1-63 letters, digits and hyphens, starting with a letter, no \"--\", not ending with '-'), as the RDS console shows it", key, id, what)
		}
	}
	checkID("cluster", r.Cluster, "DB cluster")
	checkID("instance", r.Instance, "DB instance")
	checkID("custom_endpoint", r.CustomEndpoint, "custom endpoint")

	if r.Cluster != "" {
		switch {
		case r.Role != "" && r.CustomEndpoint != "":
			add("rds: role: and custom_endpoint: are both set; a custom endpoint has its own members: keep one of them")
		case r.Role == "" && r.CustomEndpoint == "":
			add("rds: cluster: %s needs role: (writer, reader or any) or custom_endpoint: NAME", r.Cluster)
		}
		if r.WithReplicas && r.Instance == "" {
			add("rds.with_replicas: only with instance:; a cluster's readers are role: reader")
		}
	}
	if r.Instance != "" && r.Cluster == "" && (r.Role != "" || r.CustomEndpoint != "") {
		add("rds: role: and custom_endpoint: go with cluster:, not instance:; an instance's read replicas are with_replicas: true")
	}
	switch r.Role {
	case "", RoleWriter, RoleReader, RoleAny:
	default:
		add("rds.role %q: expected %s, %s or %s", r.Role, RoleWriter, RoleReader, RoleAny)
	}
	if r.Refresh < MinRDSRefresh {
		add("rds.refresh %v: expected at least %v (each refresh costs RDS Describe calls from the account's shared budget); the default is %v",
			r.Refresh, MinRDSRefresh, DefaultRDSRefresh)
	}
	return p
}

// DBIdentifier is the RDS DB instance or cluster identifier whose events (the Lambda's RDS failover events,
// detail.SourceIdentifier / SourceArn) concern this mapping: rds_identifier when set, else the rds: source's
// cluster or instance, else the first label of the (first) endpoint, lower-cased as RDS stores identifiers.
//
// The default is right for RDS instance endpoints (orders.c9abc.us-east-1.rds.amazonaws.com -> "orders") and
// for Aurora and Multi-AZ cluster endpoints, writer and reader alike (orders.cluster-c9abc... and
// orders.cluster-ro-c9abc... -> the cluster "orders", which is what cluster events name). It is wrong for a
// custom cluster endpoint (its first label is the endpoint's own name, not the cluster's) and for RDS Proxy:
// set rds_identifier to the cluster or instance there. It is not stored in RDSIdentifier so that a loaded
// configuration still shows what the user wrote.
func (s Sync) DBIdentifier() string {
	switch {
	case s.RDSIdentifier != "":
		return strings.ToLower(s.RDSIdentifier)
	case s.RDS != nil:
		return s.RDS.DBIdentifier()
	}
	return strings.ToLower(s.DefaultName())
}

// ValidRDSIdentifier applies RDS's rules for DB instance and cluster identifiers: 1-63 letters, digits and
// hyphens, starting with a letter, without two consecutive hyphens or a trailing one.
func ValidRDSIdentifier(id string) bool {
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
