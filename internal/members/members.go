// Package members reads which DB instances an rds: source stands for — a cluster's writer or readers, a custom
// endpoint's members, an instance and its read replicas — from the RDS API, with each member's instance endpoint
// and status.
//
// The RDS API, not DNS, is the only source of full membership: a reader or custom endpoint answers one random
// member per query, so DNS never shows the whole set at once. The caller follows each member through DNS by its
// instance endpoint (Member.Address), which stays the same when the instance's IP changes.
//
// Safety: Read never answers "no members". An API failure, a cluster or endpoint that cannot be found, or a
// selection with zero members is an error, and the caller must treat the source's membership as unknown: keep
// every address it last attributed to the source, deregister nothing for it (I1).
package members

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/config"
)

// API is the part of the RDS client Read uses, with the SDK's exact signatures, so *rds.Client satisfies it and
// tests can point a real client at moto or elbv2fake.
type API interface {
	rds.DescribeDBClustersAPIClient
	rds.DescribeDBClusterEndpointsAPIClient
	rds.DescribeDBInstancesAPIClient
}

var _ API = (*rds.Client)(nil)

// DefaultCallTimeout bounds one RDS call (one page), the SDK's retries included.
const DefaultCallTimeout = 10 * time.Second

// StatusAvailable is the DBInstanceStatus of an instance that serves connections and is not changing.
const StatusAvailable = "available"

// StatusCreating is the DBInstanceStatus of an instance being created: RDS gives it no endpoint yet.
const StatusCreating = "creating"

// Roles of a member, spelt as rds.role selects them.
const (
	RoleWriter = config.RoleWriter // the cluster's writer, or an instance that is not a read replica
	RoleReader = config.RoleReader // a cluster reader, or a read replica
)

// ErrNoMembers is returned when a source selects no member at all, e.g. role: reader on a cluster with only a
// writer. It means "unknown", never "remove every target": an empty answer is far more often a cluster in the
// middle of a change, or a mistyped source, than a pool that really should be empty.
var ErrNoMembers = errors.New("no members")

// Member is one DB instance of a source.
type Member struct {
	InstanceID string // DB instance identifier
	Address    string // instance endpoint (a DNS name); "" while RDS has none, e.g. during creation
	Role       string // RoleWriter | RoleReader
	// Status is the DBInstanceStatus ("available", "creating", "rebooting", "deleting", ...), or "" when the
	// cluster or custom endpoint lists the instance but DescribeDBInstances does not (created or deleted between
	// the two calls).
	Status string
}

// Available reports whether the member may be added to the target group: it is "available" and has an endpoint.
// A member in any other state (creating, rebooting, modifying, backing-up, deleting, ...) is not added, but the
// caller keeps its targets if they are registered: most of those states are brief and the instance keeps or
// soon regains its address, so draining it would cut connections for nothing, while adding an instance that is
// still being created would send clients to a database that does not answer yet.
func (m Member) Available() bool { return m.Status == StatusAvailable && m.Address != "" }

// BeingCreated reports whether RDS says the member is being created and gives it no endpoint yet: nothing of it
// can have been registered. A member DescribeDBInstances did not return has no endpoint either (and no status),
// but it may be a registered one missing from one answer, so it is not being created.
func (m Member) BeingCreated() bool { return m.Status == StatusCreating && m.Address == "" }

// Members is one successful read of a source's membership.
type Members struct {
	Source  string   // the source as configured, e.g. "rds: {cluster: orders, role: reader}"
	Members []Member // by InstanceID; never empty
}

// Available returns the members that may be added (see Member.Available).
func (m Members) Available() []Member {
	var out []Member
	for _, mem := range m.Members {
		if mem.Available() {
			out = append(out, mem)
		}
	}
	return out
}

// Reader reads memberships through one RDS client: the client of the region and role of the mapping's target
// group (RDS and the NLB in front of it are in one region; role_arn applies to both).
type Reader struct {
	API         API
	CallTimeout time.Duration // per call (page); 0 = DefaultCallTimeout
}

// Read returns the members src selects, or an error naming the source, the call and what to check. Any error
// means the membership is unknown (see the package doc).
func (r *Reader) Read(ctx context.Context, src config.RDS) (Members, error) {
	source := src.String()
	// RDS stores identifiers in lower case and answers with them so; the user may have written any case.
	src.Cluster, src.Instance = strings.ToLower(src.Cluster), strings.ToLower(src.Instance)
	src.CustomEndpoint = strings.ToLower(src.CustomEndpoint)
	var (
		mems []Member
		err  error
	)
	switch {
	case src.Cluster != "" && src.CustomEndpoint != "":
		mems, err = r.customEndpoint(ctx, src.Cluster, src.CustomEndpoint)
	case src.Cluster != "":
		mems, err = r.clusterRole(ctx, src.Cluster, src.Role)
	case src.Instance != "":
		mems, err = r.instance(ctx, src.Instance, src.WithReplicas)
	default:
		err = errors.New("neither cluster nor instance is set")
	}
	if err == nil && len(mems) == 0 {
		err = fmt.Errorf("%w: %s", ErrNoMembers, emptyHint(src))
	}
	if err != nil {
		return Members{}, fmt.Errorf("reading the members of %s: %w", source, err)
	}
	slices.SortFunc(mems, func(a, b Member) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return Members{Source: source, Members: mems}, nil
}

func emptyHint(src config.RDS) string {
	switch {
	case src.CustomEndpoint != "":
		return "the custom endpoint selects no instance of the cluster"
	case src.Cluster != "" && src.Role == config.RoleReader:
		return "the cluster has no reader (only a writer); add a reader, or follow role: any"
	case src.Cluster != "":
		return "the cluster has no instance"
	}
	return "the instance was not found"
}

// clusterRole selects a cluster's writer, readers or all members by IsClusterWriter.
func (r *Reader) clusterRole(ctx context.Context, clusterID, role string) ([]Member, error) {
	roles, err := r.clusterMembers(ctx, clusterID)
	if err != nil {
		return nil, err
	}
	for id, memberRole := range roles {
		if role != config.RoleAny && memberRole != role {
			delete(roles, id)
		}
	}
	return r.describe(ctx, roles, clusterFilter(clusterID))
}

// customEndpoint selects the members of a custom endpoint. With StaticMembers, exactly those; otherwise every
// member of the cluster but the ExcludedMembers (which is how RDS puts new instances into such an endpoint). A
// READER endpoint never includes the writer, so after a failover the new writer leaves it and the old one joins.
func (r *Reader) customEndpoint(ctx context.Context, clusterID, name string) ([]Member, error) {
	roles, err := r.clusterMembers(ctx, clusterID)
	if err != nil {
		return nil, err
	}
	ep, err := r.clusterEndpoint(ctx, clusterID, name)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(aws.ToString(ep.EndpointType), "CUSTOM") {
		return nil, fmt.Errorf("endpoint %s of cluster %s is a %s endpoint, not a custom one; use role: writer, reader or any",
			name, clusterID, strings.ToLower(aws.ToString(ep.EndpointType)))
	}
	if len(ep.StaticMembers) > 0 {
		static := map[string]string{}
		for _, id := range ep.StaticMembers {
			// A static member that has left the cluster is no longer served by the endpoint.
			if role, ok := roles[id]; ok {
				static[id] = role
			}
		}
		roles = static
	} else {
		for _, id := range ep.ExcludedMembers {
			delete(roles, id)
		}
	}
	if strings.EqualFold(aws.ToString(ep.CustomEndpointType), "READER") {
		for id, role := range roles {
			if role == RoleWriter {
				delete(roles, id)
			}
		}
	}
	return r.describe(ctx, roles, clusterFilter(clusterID))
}

// instance selects a DB instance and, with replicas, its read replicas in this region.
func (r *Reader) instance(ctx context.Context, instanceID string, withReplicas bool) ([]Member, error) {
	found, err := r.instances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(instanceID)})
	if err != nil {
		return nil, err
	}
	primary, ok := found[strings.ToLower(instanceID)]
	if !ok {
		return nil, fmt.Errorf("DescribeDBInstances did not return instance %s", instanceID)
	}
	role := RoleWriter
	if aws.ToString(primary.ReadReplicaSourceDBInstanceIdentifier) != "" {
		role = RoleReader
	}
	roles := map[string]string{aws.ToString(primary.DBInstanceIdentifier): role}
	if withReplicas {
		for _, id := range primary.ReadReplicaDBInstanceIdentifiers {
			// RDS names a replica in another region by its ARN; this region's API cannot describe it, and a
			// target group does not follow another region's instances.
			if !strings.HasPrefix(id, "arn:") {
				roles[id] = RoleReader
			}
		}
	}
	if len(roles) == 1 {
		return members(roles, found), nil
	}
	return r.describe(ctx, roles, &types.Filter{Name: aws.String("db-instance-id"), Values: slices.Sorted(maps.Keys(roles))})
}

// clusterMembers returns the cluster's members and their roles, by instance identifier.
func (r *Reader) clusterMembers(ctx context.Context, clusterID string) (map[string]string, error) {
	var cluster *types.DBCluster
	p := rds.NewDescribeDBClustersPaginator(r.API, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(clusterID)})
	for p.HasMorePages() {
		out, err := page(ctx, r, "DescribeDBClusters", func(ctx context.Context) (*rds.DescribeDBClustersOutput, error) {
			return p.NextPage(ctx)
		})
		if err != nil {
			return nil, err
		}
		for i := range out.DBClusters {
			if strings.EqualFold(aws.ToString(out.DBClusters[i].DBClusterIdentifier), clusterID) {
				cluster = &out.DBClusters[i]
			}
		}
	}
	if cluster == nil {
		return nil, fmt.Errorf("DescribeDBClusters did not return cluster %s", clusterID)
	}
	roles := map[string]string{}
	for _, m := range cluster.DBClusterMembers {
		role := RoleReader
		if aws.ToBool(m.IsClusterWriter) {
			role = RoleWriter
		}
		roles[aws.ToString(m.DBInstanceIdentifier)] = role
	}
	return roles, nil
}

// clusterEndpoint returns one endpoint of a cluster.
func (r *Reader) clusterEndpoint(ctx context.Context, clusterID, name string) (*types.DBClusterEndpoint, error) {
	p := rds.NewDescribeDBClusterEndpointsPaginator(r.API, &rds.DescribeDBClusterEndpointsInput{
		DBClusterIdentifier:         aws.String(clusterID),
		DBClusterEndpointIdentifier: aws.String(name),
	})
	for p.HasMorePages() {
		out, err := page(ctx, r, "DescribeDBClusterEndpoints", func(ctx context.Context) (*rds.DescribeDBClusterEndpointsOutput, error) {
			return p.NextPage(ctx)
		})
		if err != nil {
			return nil, err
		}
		for i, ep := range out.DBClusterEndpoints {
			if strings.EqualFold(aws.ToString(ep.DBClusterEndpointIdentifier), name) {
				return &out.DBClusterEndpoints[i], nil
			}
		}
	}
	return nil, fmt.Errorf("cluster %s has no custom endpoint %s (DescribeDBClusterEndpoints); check rds.custom_endpoint: it is the first label of the endpoint's DNS name", clusterID, name)
}

// describe looks up the instances in roles (one filtered DescribeDBInstances) and returns them as members.
func (r *Reader) describe(ctx context.Context, roles map[string]string, filter *types.Filter) ([]Member, error) {
	if len(roles) == 0 {
		return nil, nil
	}
	found, err := r.instances(ctx, &rds.DescribeDBInstancesInput{Filters: []types.Filter{*filter}})
	if err != nil {
		return nil, err
	}
	return members(roles, found), nil
}

// instances runs DescribeDBInstances over every page and returns the instances by lower-cased identifier
// (RDS stores identifiers in lower case but accepts any case).
func (r *Reader) instances(ctx context.Context, in *rds.DescribeDBInstancesInput) (map[string]types.DBInstance, error) {
	found := map[string]types.DBInstance{}
	p := rds.NewDescribeDBInstancesPaginator(r.API, in)
	for p.HasMorePages() {
		out, err := page(ctx, r, "DescribeDBInstances", func(ctx context.Context) (*rds.DescribeDBInstancesOutput, error) {
			return p.NextPage(ctx)
		})
		if err != nil {
			return nil, err
		}
		for _, inst := range out.DBInstances {
			found[strings.ToLower(aws.ToString(inst.DBInstanceIdentifier))] = inst
		}
	}
	return found, nil
}

// members joins roles with what DescribeDBInstances said about each instance. An instance it did not return
// is still a member, with no status and no address: it is kept if registered and not added.
func members(roles map[string]string, found map[string]types.DBInstance) []Member {
	out := make([]Member, 0, len(roles))
	for id, role := range roles {
		m := Member{InstanceID: id, Role: role}
		if inst, ok := found[strings.ToLower(id)]; ok {
			m.Status = aws.ToString(inst.DBInstanceStatus)
			if inst.Endpoint != nil {
				m.Address = strings.ToLower(aws.ToString(inst.Endpoint.Address))
			}
		}
		out = append(out, m)
	}
	return out
}

// page runs one call under the per-call deadline and explains its error.
func page[T any](ctx context.Context, r *Reader, op string, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(r.CallTimeout, DefaultCallTimeout))
	defer cancel()
	out, err := call(ctx)
	if err != nil {
		return out, callError(op, err)
	}
	return out, nil
}

// callError names the call and, for errors the user can fix, what to do (package awserr knows which).
func callError(op string, err error) error {
	if fix := awserr.RDSFix(err); fix != "" {
		return fmt.Errorf("%s: %w (%s)", op, err, fix)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func clusterFilter(clusterID string) *types.Filter {
	return &types.Filter{Name: aws.String("db-cluster-id"), Values: []string{clusterID}}
}
