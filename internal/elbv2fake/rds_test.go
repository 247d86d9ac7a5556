package elbv2fake_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/smithy-go"

	"github.com/ipsync/ipsync/internal/elbv2fake"
)

// The behaviours ipsync relies on are tested through the members package against this fake and moto; these
// tests cover the wire details around them: identifiers, filters, errors, paging.

func TestRDSWire(t *testing.T) {
	s := elbv2fake.Start(t, elbv2fake.Options{Region: "eu-west-1"})
	c := s.RDSClient()
	ctx := context.Background()
	if _, err := c.CreateDBCluster(ctx, &rds.CreateDBClusterInput{DBClusterIdentifier: aws.String("Orders"), Engine: aws.String("aurora-postgresql")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"orders-1", "orders-2"} {
		if _, err := c.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String(id), DBClusterIdentifier: aws.String("ORDERS"),
			DBInstanceClass: aws.String("db.r6g.large"), Engine: aws.String("aurora-postgresql")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateDBInstance(elbv2fake.DBInstanceSpec{ID: "legacy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateDBInstance(elbv2fake.DBInstanceSpec{ID: "legacy-r", ReplicaOf: "legacy", Status: elbv2fake.DBStatusCreating}); err != nil {
		t.Fatal(err)
	}

	clusters, err := c.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String("orders")})
	if err != nil || len(clusters.DBClusters) != 1 {
		t.Fatalf("DescribeDBClusters: %+v, %v", clusters, err)
	}
	cl := clusters.DBClusters[0]
	if aws.ToString(cl.DBClusterIdentifier) != "orders" || len(cl.DBClusterMembers) != 2 ||
		!aws.ToBool(cl.DBClusterMembers[0].IsClusterWriter) || aws.ToBool(cl.DBClusterMembers[1].IsClusterWriter) ||
		aws.ToString(cl.ReaderEndpoint) != "orders.cluster-ro-c9fake000000.eu-west-1.rds.amazonaws.com" {
		t.Errorf("cluster: %+v members %+v; want orders (lower-cased), orders-1 the writer, orders-2 a reader", cl, cl.DBClusterMembers)
	}

	describe := func(filters ...rdstypes.Filter) []string {
		t.Helper()
		out, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{Filters: filters})
		if err != nil {
			t.Fatalf("DescribeDBInstances %+v: %v", filters, err)
		}
		var ids []string
		for _, inst := range out.DBInstances {
			ids = append(ids, aws.ToString(inst.DBInstanceIdentifier))
		}
		return ids
	}
	filter := func(name string, values ...string) rdstypes.Filter {
		return rdstypes.Filter{Name: aws.String(name), Values: values}
	}
	for _, tc := range []struct {
		filters []rdstypes.Filter
		want    []string
	}{
		{nil, []string{"legacy", "legacy-r", "orders-1", "orders-2"}},
		{[]rdstypes.Filter{filter("db-cluster-id", "Orders")}, []string{"orders-1", "orders-2"}},
		{[]rdstypes.Filter{filter("db-instance-id", "legacy", "arn:aws:rds:eu-west-1:123456789012:db:orders-2")}, []string{"legacy", "orders-2"}},
		{[]rdstypes.Filter{filter("db-cluster-id", "orders"), filter("db-instance-id", "orders-2", "legacy")}, []string{"orders-2"}},
		{[]rdstypes.Filter{filter("db-cluster-id", "nonesuch")}, nil},
	} {
		if got := describe(tc.filters...); !slices.Equal(got, tc.want) {
			t.Errorf("filters %+v: %q, want %q", tc.filters, got, tc.want)
		}
	}

	legacy, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("LEGACY")})
	if err != nil || len(legacy.DBInstances) != 1 {
		t.Fatalf("DescribeDBInstances legacy: %+v, %v", legacy, err)
	}
	if l := legacy.DBInstances[0]; !slices.Equal(l.ReadReplicaDBInstanceIdentifiers, []string{"legacy-r"}) ||
		aws.ToString(l.Endpoint.Address) != "legacy.c9fake000000.eu-west-1.rds.amazonaws.com" || aws.ToString(l.DBInstanceStatus) != "available" {
		t.Errorf("legacy: %+v", l)
	}
	replica, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("legacy-r")})
	if err != nil || replica.DBInstances[0].Endpoint != nil || aws.ToString(replica.DBInstances[0].ReadReplicaSourceDBInstanceIdentifier) != "legacy" {
		t.Errorf("a replica being created has no endpoint and names its source: %+v, %v", replica, err)
	}

	for _, tc := range []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"unknown cluster", func() error {
			_, err := c.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String("nonesuch")})
			return err
		}, "DBClusterNotFoundFault", http.StatusNotFound},
		{"unknown instance", func() error {
			_, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("nonesuch")})
			return err
		}, "DBInstanceNotFound", http.StatusNotFound},
		{"endpoints of an unknown cluster", func() error {
			_, err := c.DescribeDBClusterEndpoints(ctx, &rds.DescribeDBClusterEndpointsInput{DBClusterIdentifier: aws.String("nonesuch")})
			return err
		}, "DBClusterNotFoundFault", http.StatusNotFound},
		{"unknown filter", func() error {
			_, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{Filters: []rdstypes.Filter{filter("engine", "postgres")}})
			return err
		}, "InvalidParameterValue", http.StatusBadRequest},
		{"MaxRecords below 20", func() error {
			_, err := c.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{MaxRecords: aws.Int32(10)})
			return err
		}, "InvalidParameterValue", http.StatusBadRequest},
		{"duplicate instance", func() error {
			_, err := c.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("Orders-1"),
				DBInstanceClass: aws.String("db.r6g.large"), Engine: aws.String("aurora-postgresql")})
			return err
		}, "DBInstanceAlreadyExists", http.StatusBadRequest},
		{"failover of a one-member cluster", func() error {
			if err := s.CreateDBCluster("solo"); err != nil {
				return err
			}
			if _, err := s.CreateDBInstance(elbv2fake.DBInstanceSpec{ID: "solo-1", Cluster: "solo"}); err != nil {
				return err
			}
			_, err := c.FailoverDBCluster(ctx, &rds.FailoverDBClusterInput{DBClusterIdentifier: aws.String("solo")})
			return err
		}, "InvalidDBClusterStateFault", http.StatusBadRequest},
		{"custom endpoint with a stranger", func() error {
			_, err := c.CreateDBClusterEndpoint(ctx, &rds.CreateDBClusterEndpointInput{DBClusterIdentifier: aws.String("orders"),
				DBClusterEndpointIdentifier: aws.String("reports"), EndpointType: aws.String("ANY"), StaticMembers: []string{"legacy"}})
			return err
		}, "InvalidParameterValue", http.StatusBadRequest},
	} {
		err := tc.call()
		var apiErr smithy.APIError
		var respErr *awshttp.ResponseError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code || !errors.As(err, &respErr) || respErr.HTTPStatusCode() != tc.status {
			t.Errorf("%s: %v; want %s (HTTP %d)", tc.name, err, tc.code, tc.status)
		}
	}
}

func TestRDSClusterEndpointsWire(t *testing.T) {
	s := elbv2fake.Start(t, elbv2fake.Options{})
	c := s.RDSClient()
	ctx := context.Background()
	if err := s.CreateDBCluster("orders"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"orders-1", "orders-2", "orders-3"} {
		if _, err := s.CreateDBInstance(elbv2fake.DBInstanceSpec{ID: id, Cluster: "orders"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.CreateDBClusterEndpoint(ctx, &rds.CreateDBClusterEndpointInput{DBClusterIdentifier: aws.String("orders"),
		DBClusterEndpointIdentifier: aws.String("Reports"), EndpointType: aws.String("reader"), ExcludedMembers: []string{"orders-3"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateDBClusterEndpoint(elbv2fake.DBClusterEndpointSpec{Cluster: "orders", ID: "pinned", Type: "ANY", Static: []string{"orders-2"}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeDBClusterEndpoints(ctx, &rds.DescribeDBClusterEndpointsInput{DBClusterIdentifier: aws.String("orders")})
	if err != nil || len(out.DBClusterEndpoints) != 2 {
		t.Fatalf("DescribeDBClusterEndpoints: %+v, %v", out, err)
	}
	reports, pinned := out.DBClusterEndpoints[0], out.DBClusterEndpoints[1]
	if aws.ToString(reports.DBClusterEndpointIdentifier) != "reports" || aws.ToString(reports.EndpointType) != "CUSTOM" ||
		aws.ToString(reports.CustomEndpointType) != "READER" || !slices.Equal(reports.ExcludedMembers, []string{"orders-3"}) ||
		len(reports.StaticMembers) != 0 || aws.ToString(reports.Endpoint) != "reports.cluster-custom-c9fake000000.us-east-1.rds.amazonaws.com" {
		t.Errorf("reports: %+v", reports)
	}
	if aws.ToString(pinned.CustomEndpointType) != "ANY" || !slices.Equal(pinned.StaticMembers, []string{"orders-2"}) {
		t.Errorf("pinned: %+v", pinned)
	}
	one, err := c.DescribeDBClusterEndpoints(ctx, &rds.DescribeDBClusterEndpointsInput{
		DBClusterIdentifier: aws.String("orders"), DBClusterEndpointIdentifier: aws.String("pinned")})
	if err != nil || len(one.DBClusterEndpoints) != 1 || aws.ToString(one.DBClusterEndpoints[0].DBClusterEndpointIdentifier) != "pinned" {
		t.Errorf("one endpoint by identifier: %+v, %v", one, err)
	}

	// Deleting a static member takes it off the list.
	if err := s.DeleteDBInstance("orders-2"); err != nil {
		t.Fatal(err)
	}
	one, err = c.DescribeDBClusterEndpoints(ctx, &rds.DescribeDBClusterEndpointsInput{DBClusterEndpointIdentifier: aws.String("pinned")})
	if err != nil || len(one.DBClusterEndpoints) != 1 || len(one.DBClusterEndpoints[0].StaticMembers) != 0 {
		t.Errorf("after deleting the static member: %+v, %v", one, err)
	}
}

func TestRDSPaging(t *testing.T) {
	s := elbv2fake.Start(t, elbv2fake.Options{RDSPageSize: 3})
	c := s.RDSClient()
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		if err := s.CreateDBCluster(id); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	pages := 0
	p := rds.NewDescribeDBClustersPaginator(c, &rds.DescribeDBClustersInput{MaxRecords: aws.Int32(20)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, cl := range out.DBClusters {
			ids = append(ids, aws.ToString(cl.DBClusterIdentifier))
		}
	}
	if pages != 3 || !slices.Equal(ids, []string{"a", "b", "c", "d", "e", "f", "g"}) {
		t.Errorf("%d pages, %q; want 3 pages of a..g", pages, ids)
	}
}

// TestRDSFailoverAndDelete: a failover moves the writer flag; deleting the writer makes the next member the
// writer, as Aurora fails over.
func TestRDSFailoverAndDelete(t *testing.T) {
	s := elbv2fake.Start(t, elbv2fake.Options{})
	c := s.RDSClient()
	if err := s.CreateDBCluster("orders"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"orders-1", "orders-2", "orders-3"} {
		if _, err := s.CreateDBInstance(elbv2fake.DBInstanceSpec{ID: id, Cluster: "orders"}); err != nil {
			t.Fatal(err)
		}
	}
	writer := func() string {
		t.Helper()
		out, err := c.DescribeDBClusters(context.Background(), &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String("orders")})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.DBClusters[0].DBClusterMembers {
			if aws.ToBool(m.IsClusterWriter) {
				return aws.ToString(m.DBInstanceIdentifier)
			}
		}
		return ""
	}
	if err := s.FailoverDBCluster("orders", ""); err != nil || writer() != "orders-2" {
		t.Fatalf("failover to the first reader: %v, writer %s", err, writer())
	}
	if err := s.FailoverDBCluster("orders", "orders-3"); err != nil || writer() != "orders-3" {
		t.Fatalf("failover to orders-3: %v, writer %s", err, writer())
	}
	if err := s.DeleteDBInstance("orders-3"); err != nil || writer() != "orders-1" {
		t.Fatalf("deleting the writer: %v, writer %s; want orders-1", err, writer())
	}
	if err := s.FailoverDBCluster("orders", "legacy"); err == nil {
		t.Error("failover to a non-member succeeded")
	}
}
