package demo

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/elbv2fake"
)

// The Aurora scene: a cluster that ipsync follows through the RDS API rather than one DNS name, with a target
// group for its writer (rds: {cluster: inventory, role: writer}) and one for its readers (role: reader). The
// local RDS API (elbv2fake) holds the cluster, and each instance endpoint it names is an A record in the local
// DNS server, which the engine resolves as in production. A failover (FailoverDBCluster) swaps roles while every
// instance keeps its address, so DNS does not change at all: ipsync sees the new roles at its next membership
// read (rds.refresh), then moves the writer group to the new writer and swaps the new writer for the old one in
// the readers group. The reader that stays a reader must stay registered throughout.

// rdsRefresh is the scene's rds.refresh: the lowest the configuration allows, so that a failover shows soon.
const rdsRefresh = config.MinRDSRefresh

func auroraScene() *database {
	return &database{
		name:    "inventory",
		kind:    "Aurora cluster",
		port:    5432,
		cluster: "inventory",
		insts: []instance{
			{id: "inventory-1", ip: netip.MustParseAddr("10.0.1.60"), az: "us-east-1a"},
			{id: "inventory-2", ip: netip.MustParseAddr("10.0.2.61"), az: "us-east-1b"},
			{id: "inventory-3", ip: netip.MustParseAddr("10.0.3.62"), az: "us-east-1c"},
		},
	}
}

// setupRDS creates the cluster in the local RDS API, its first instance the writer, and serves in the local DNS
// the instance endpoint RDS gives each instance.
func (db *database) setupRDS(fake *elbv2fake.Server, dns *dnstest.Server, ttl uint32) error {
	if err := fake.CreateDBCluster(db.cluster); err != nil {
		return fmt.Errorf("creating DB cluster %s: %w", db.cluster, err)
	}
	for i := range db.insts {
		in := &db.insts[i]
		host, err := fake.CreateDBInstance(elbv2fake.DBInstanceSpec{ID: in.id, Cluster: db.cluster})
		if err != nil {
			return fmt.Errorf("creating DB instance %s: %w", in.id, err)
		}
		in.host = host
		dns.SetA(host, ttl, in.ip.String())
	}
	db.writer = 0 // RDS makes the first member the writer
	return nil
}

// failoverRDS makes the next instance the cluster's writer, as `aws rds failover-db-cluster
// --target-db-instance-identifier` does; over three failovers each instance is the writer once.
func (db *database) failoverRDS(fake *elbv2fake.Server) error {
	next := (db.writer + 1) % len(db.insts)
	if err := fake.FailoverDBCluster(db.cluster, db.insts[next].id); err != nil {
		return fmt.Errorf("FailoverDBCluster %s to %s: %w", db.cluster, db.insts[next].id, err)
	}
	db.writer = next
	return nil
}

// rolesText is the cluster's roles as RDS lists them now: "writer inventory-2, readers inventory-1, inventory-3".
func (db *database) rolesText() string {
	var readers []string
	for i, in := range db.insts {
		if i != db.writer {
			readers = append(readers, in.id)
		}
	}
	return fmt.Sprintf("writer %s, readers %s", db.current().id, strings.Join(readers, ", "))
}

// setupText is the setup line of a database: what it is and what its target groups follow.
func (db *database) setupText(ttl string) string {
	if db.cluster == "" {
		m := db.groups[0]
		return fmt.Sprintf("%s: %s; %s answers %s (TTL %s); target group %s (port %d) is empty",
			db.name, db.kind, db.endpoint, db.describe(), ttl, m.name, db.port)
	}
	var groups []string
	for _, m := range db.groups {
		groups = append(groups, fmt.Sprintf("%s follows %s", m.name, m.source()))
	}
	var insts []string
	for _, in := range db.insts {
		insts = append(insts, fmt.Sprintf("%s A %s (%s)", in.id, in.ip, in.az))
	}
	return fmt.Sprintf("%s: %s in the local RDS API, %s; instance endpoints %s (TTL %s); target groups (port %d, empty): %s, "+
		"membership read every %v (rds.refresh)",
		db.name, db.kind, db.rolesText(), strings.Join(insts, ", "), ttl, db.port, strings.Join(groups, "; "), rdsRefresh)
}
