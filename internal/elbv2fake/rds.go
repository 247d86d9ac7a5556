package elbv2fake

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/smithy-go/middleware"

	"github.com/ipsync/ipsync/internal/config"
)

// RDS: DB clusters and their members (one writer, readers), custom cluster endpoints with static or excluded
// members, standalone instances and their read replicas, instance status, failover. It serves what ipsync reads
// (DescribeDBClusters, DescribeDBClusterEndpoints, DescribeDBInstances, with Marker paging) and what tests need
// to set that state up through the SDK as they would on moto (CreateDBCluster, CreateDBInstance,
// CreateDBInstanceReadReplica, CreateDBClusterEndpoint, DeleteDBInstance, FailoverDBCluster). Moto has no
// custom endpoints. Faults (throttling, access denied) come from SetFault and FailNext like every other call.

// RDS instance status values the fake uses; any other string may be set with SetDBInstanceStatus.
const (
	DBStatusAvailable = "available"
	DBStatusCreating  = "creating"
	DBStatusRebooting = "rebooting"
	DBStatusDeleting  = "deleting"
)

// rdsDNSHash stands for the 12-character account-and-region hash of real RDS endpoint names.
const rdsDNSHash = "c9fake000000"

// DBInstanceSpec describes an instance made with CreateDBInstance.
type DBInstanceSpec struct {
	ID        string // DB instance identifier; stored lower-cased, as RDS does
	Cluster   string // the DB cluster it joins (the first member becomes the writer); "" = standalone
	ReplicaOf string // the standalone instance it is a read replica of; "" = none
	Status    string // default DBStatusAvailable
}

// DBClusterEndpointSpec describes a custom endpoint made with CreateDBClusterEndpoint.
type DBClusterEndpointSpec struct {
	Cluster  string
	ID       string   // the endpoint's identifier, the first label of its DNS name
	Type     string   // "READER" (never the writer) or "ANY"
	Static   []string // exactly these members; when empty, every member but Excluded
	Excluded []string
}

type dbCluster struct {
	id        string
	members   []string // creation order
	writer    string
	endpoints []*DBClusterEndpointSpec
}

type dbInstance struct {
	id, cluster, replicaOf, status string
	unlisted                       bool // DescribeDBInstances leaves it out (SetDBInstanceListed)
}

// ---- Go helpers ----

// CreateDBCluster makes an empty DB cluster (no member yet; DescribeDBClusters lists no DBClusterMembers).
func (s *Server) CreateDBCluster(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return toError(s.createDBCluster(id))
}

// CreateDBInstance makes an instance and returns its endpoint address.
func (s *Server) CreateDBInstance(spec DBInstanceSpec) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, e := s.createDBInstance(spec)
	if e != nil {
		return "", toError(e)
	}
	return s.instanceAddress(inst.id), nil
}

// DeleteDBInstance removes an instance at once: from its cluster (if it was the writer, the next member in
// creation order becomes the writer, as an Aurora failover would), from its primary's replicas and from its
// custom endpoints' static lists.
func (s *Server) DeleteDBInstance(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return toError(s.deleteDBInstance(id))
}

// SetDBInstanceStatus sets the DBInstanceStatus DescribeDBInstances reports, e.g. DBStatusRebooting.
func (s *Server) SetDBInstanceStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.dbInstances[strings.ToLower(id)]
	if inst == nil {
		return toError(dbInstanceNotFound(id))
	}
	inst.status = status
	return nil
}

// SetDBInstanceListed makes DescribeDBInstances leave an instance out (listed false) while it stays a member of
// its cluster, as one answer of RDS's eventually consistent reads may, or list it again.
func (s *Server) SetDBInstanceListed(id string, listed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst := s.dbInstances[strings.ToLower(id)]
	if inst == nil {
		return toError(dbInstanceNotFound(id))
	}
	inst.unlisted = !listed
	return nil
}

// FailoverDBCluster makes target the cluster's writer ("" = the first reader in creation order); the old
// writer becomes a reader.
func (s *Server) FailoverDBCluster(cluster, target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return toError(s.failover(cluster, target))
}

// CreateDBClusterEndpoint adds a custom endpoint to a cluster.
func (s *Server) CreateDBClusterEndpoint(spec DBClusterEndpointSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return toError(s.createDBClusterEndpoint(spec))
}

// DBInstanceAddress is the endpoint address DescribeDBInstances reports for an instance:
// "<id>.<hash>.<region>.rds.amazonaws.com".
func (s *Server) DBInstanceAddress(id string) string { return s.instanceAddress(strings.ToLower(id)) }

// RDSAccessDenied is what RDS answers when the caller's IAM policy does not allow action: HTTP 403
// AccessDenied. The SDK does not retry it.
func RDSAccessDenied(action string) Fault {
	return Fault{Status: http.StatusForbidden, Code: "AccessDenied",
		Message: "User: arn:aws:sts::123456789012:assumed-role/ipsync/task is not authorized to perform: rds:" + action}
}

// RDSClient is the real SDK RDS client pointed at this server, as Client is for ELBv2: standard retryer,
// static credentials, nothing from the process's AWS environment.
func (s *Server) RDSClient(apiOptions ...func(*middleware.Stack) error) *rds.Client {
	return rds.NewFromConfig(aws.Config{
		Region:       s.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("fake", "fake", ""),
		BaseEndpoint: aws.String(s.URL()),
		Retryer:      func() aws.Retryer { return retry.NewStandard() },
		APIOptions:   apiOptions,
	})
}

// ---- state, called with s.mu held ----

func (s *Server) instanceAddress(id string) string {
	return fmt.Sprintf("%s.%s.%s.rds.amazonaws.com", id, rdsDNSHash, s.opts.Region)
}

func (s *Server) createDBCluster(id string) *apiError {
	id = strings.ToLower(id)
	if !config.ValidRDSIdentifier(id) {
		return invalidParameter("DBClusterIdentifier %q is not a valid identifier (1-63 letters, digits, hyphens, starting with a letter)", id)
	}
	if s.dbClusters[id] != nil {
		return errorf(http.StatusBadRequest, "DBClusterAlreadyExistsFault", "DB Cluster already exists")
	}
	if s.dbClusters == nil {
		s.dbClusters = map[string]*dbCluster{}
	}
	s.dbClusters[id] = &dbCluster{id: id}
	return nil
}

func (s *Server) createDBInstance(spec DBInstanceSpec) (*dbInstance, *apiError) {
	id := strings.ToLower(spec.ID)
	if !config.ValidRDSIdentifier(id) {
		return nil, invalidParameter("DBInstanceIdentifier %q is not a valid identifier (1-63 letters, digits, hyphens, starting with a letter)", spec.ID)
	}
	if s.dbInstances[id] != nil {
		return nil, errorf(http.StatusBadRequest, "DBInstanceAlreadyExists", "DB instance already exists")
	}
	inst := &dbInstance{id: id, cluster: strings.ToLower(spec.Cluster), replicaOf: strings.ToLower(spec.ReplicaOf),
		status: cmp.Or(spec.Status, DBStatusAvailable)}
	var c *dbCluster
	if inst.cluster != "" {
		if c = s.dbClusters[inst.cluster]; c == nil {
			return nil, dbClusterNotFound(spec.Cluster)
		}
	}
	if inst.replicaOf != "" {
		src := s.dbInstances[inst.replicaOf]
		if src == nil {
			return nil, dbInstanceNotFound(spec.ReplicaOf)
		}
		if src.cluster != "" || src.replicaOf != "" || inst.cluster != "" {
			return nil, invalidParameter("read replicas here are of standalone instances only; %s is a cluster member or a replica", src.id)
		}
	}
	if c != nil {
		c.members = append(c.members, id)
		if c.writer == "" {
			c.writer = id
		}
	}
	if s.dbInstances == nil {
		s.dbInstances = map[string]*dbInstance{}
	}
	s.dbInstances[id] = inst
	return inst, nil
}

func (s *Server) deleteDBInstance(id string) *apiError {
	id = strings.ToLower(id)
	inst := s.dbInstances[id]
	if inst == nil {
		return dbInstanceNotFound(id)
	}
	delete(s.dbInstances, id)
	if c := s.dbClusters[inst.cluster]; c != nil {
		c.members = slices.DeleteFunc(c.members, func(m string) bool { return m == id })
		if c.writer == id {
			c.writer = ""
			if len(c.members) > 0 {
				c.writer = c.members[0]
			}
		}
		for _, ep := range c.endpoints {
			ep.Static = slices.DeleteFunc(ep.Static, func(m string) bool { return m == id })
		}
	}
	return nil
}

func (s *Server) failover(cluster, target string) *apiError {
	c := s.dbClusters[strings.ToLower(cluster)]
	if c == nil {
		return dbClusterNotFound(cluster)
	}
	if len(c.members) < 2 {
		return errorf(http.StatusBadRequest, "InvalidDBClusterStateFault",
			"Database cluster:%s should have at least two database instances for failover", c.id)
	}
	target = strings.ToLower(target)
	if target == "" {
		for _, m := range c.members {
			if m != c.writer {
				target = m
				break
			}
		}
	}
	if !slices.Contains(c.members, target) {
		return invalidParameter("Cannot find target instance: %s", target)
	}
	c.writer = target
	return nil
}

func (s *Server) createDBClusterEndpoint(spec DBClusterEndpointSpec) *apiError {
	c := s.dbClusters[strings.ToLower(spec.Cluster)]
	if c == nil {
		return dbClusterNotFound(spec.Cluster)
	}
	ep := spec
	ep.Cluster, ep.ID, ep.Type = c.id, strings.ToLower(spec.ID), strings.ToUpper(spec.Type)
	if !config.ValidRDSIdentifier(ep.ID) {
		return invalidParameter("DBClusterEndpointIdentifier %q is not a valid identifier", spec.ID)
	}
	if ep.Type != "READER" && ep.Type != "ANY" {
		return invalidParameter("EndpointType %q: expected READER or ANY", spec.Type)
	}
	if len(ep.Static) > 0 && len(ep.Excluded) > 0 {
		return invalidParameter("StaticMembers and ExcludedMembers cannot both be set")
	}
	for _, other := range c.endpoints {
		if other.ID == ep.ID {
			return errorf(http.StatusBadRequest, "DBClusterEndpointAlreadyExistsFault", "Endpoint %s already exists", ep.ID)
		}
	}
	for _, list := range [][]string{ep.Static, ep.Excluded} {
		for i, m := range list {
			list[i] = strings.ToLower(m)
			if !slices.Contains(c.members, list[i]) {
				return invalidParameter("%s is not a member of DB cluster %s", m, c.id)
			}
		}
	}
	ep.Static, ep.Excluded = slices.Clone(ep.Static), slices.Clone(ep.Excluded)
	c.endpoints = append(c.endpoints, &ep)
	return nil
}

func (s *Server) replicasOf(id string) []string {
	var out []string
	for _, inst := range s.dbInstances {
		if inst.replicaOf == id {
			out = append(out, inst.id)
		}
	}
	slices.Sort(out)
	return out
}
