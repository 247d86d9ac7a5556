package discover

import (
	"fmt"
	"strings"

	"github.com/ipsync/ipsync/internal/config"
)

// Source is what a discovered target group follows, as its tag's value names it: a DNS name, or RDS members.
type Source struct {
	Endpoint string     // a DNS name; "" when RDS is set
	RDS      *RDSSource // members read from the RDS API
}

// RDSSource is the short form of an rds: source in a tag value. Exactly one of Cluster and Instance is set.
//
//	rds:cluster/ID/writer | reader | any   the cluster's members in that role
//	rds:cluster/ID/custom/NAME             the members of the cluster's custom endpoint NAME
//	rds:instance/ID                        the instance
//	rds:instance/ID/replicas               the instance and its read replicas
type RDSSource struct {
	Cluster        string
	Role           string // with Cluster: RoleWriter | RoleReader | RoleAny; "" with CustomEndpoint
	CustomEndpoint string // with Cluster
	Instance       string
	WithReplicas   bool // with Instance
}

// Cluster member roles of an rds: source.
const (
	RoleWriter = "writer"
	RoleReader = "reader"
	RoleAny    = "any"
)

// rdsForms lists the accepted shapes, for messages.
const rdsForms = "rds:cluster/ID/writer, rds:cluster/ID/reader, rds:cluster/ID/any, rds:cluster/ID/custom/NAME, rds:instance/ID or rds:instance/ID/replicas"

// ParseSource reads the value of the discovery tag: a DNS name such as orders.c9abc.us-east-1.rds.amazonaws.com,
// or an rds: short form (see RDSSource).
func ParseSource(value string) (Source, error) {
	rest, isRDS := strings.CutPrefix(value, "rds:")
	if !isRDS {
		if err := config.CheckDNSName(value); err != nil {
			return Source{}, fmt.Errorf("%q %w; expected a DNS name such as orders.c9abc.us-east-1.rds.amazonaws.com, or %s", value, err, rdsForms)
		}
		return Source{Endpoint: value}, nil
	}
	parts := strings.Split(rest, "/")
	bad := func(why string) (Source, error) {
		return Source{}, fmt.Errorf("%q: %s; expected %s", value, why, rdsForms)
	}
	if len(parts) < 2 {
		return bad("too short")
	}
	if !config.ValidRDSIdentifier(parts[1]) {
		return bad(fmt.Sprintf("%q is not an RDS identifier (1-63 letters, digits and hyphens, starting with a letter)", parts[1]))
	}
	r := &RDSSource{}
	switch kind := parts[0]; {
	case kind == "cluster" && len(parts) == 3 && (parts[2] == RoleWriter || parts[2] == RoleReader || parts[2] == RoleAny):
		r.Cluster, r.Role = parts[1], parts[2]
	case kind == "cluster" && len(parts) == 4 && parts[2] == "custom":
		if !config.ValidRDSIdentifier(parts[3]) {
			return bad(fmt.Sprintf("custom endpoint %q is not an RDS identifier", parts[3]))
		}
		r.Cluster, r.CustomEndpoint = parts[1], parts[3]
	case kind == "cluster":
		return bad("a cluster source names the members' role (writer, reader or any) or custom/NAME")
	case kind == "instance" && len(parts) == 2:
		r.Instance = parts[1]
	case kind == "instance" && len(parts) == 3 && parts[2] == "replicas":
		r.Instance, r.WithReplicas = parts[1], true
	default:
		return bad(fmt.Sprintf("unknown form after rds:%s", kind))
	}
	return Source{RDS: r}, nil
}

// String gives the source back in the tag's form.
func (s Source) String() string {
	r := s.RDS
	switch {
	case r == nil:
		return s.Endpoint
	case r.CustomEndpoint != "":
		return "rds:cluster/" + r.Cluster + "/custom/" + r.CustomEndpoint
	case r.Cluster != "":
		return "rds:cluster/" + r.Cluster + "/" + r.Role
	case r.WithReplicas:
		return "rds:instance/" + r.Instance + "/replicas"
	}
	return "rds:instance/" + r.Instance
}

// Config is the source as the configuration's rds: block says it, refresh at its default; nil for a DNS name.
func (s Source) Config() *config.RDS {
	r := s.RDS
	if r == nil {
		return nil
	}
	return &config.RDS{Cluster: r.Cluster, Role: r.Role, CustomEndpoint: r.CustomEndpoint, Instance: r.Instance,
		WithReplicas: r.WithReplicas, Refresh: config.DefaultRDSRefresh}
}
