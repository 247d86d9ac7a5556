package elbv2fake

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// RDS on the wire: actions, the XML shapes of their answers, Marker paging, Filters and error answers.

func (s *Server) dispatchRDS(action string, form url.Values) response {
	switch action {
	case "DescribeDBClusters":
		return s.describeDBClusters(form)
	case "DescribeDBInstances":
		return s.describeDBInstances(form)
	case "DescribeDBClusterEndpoints":
		return s.describeDBClusterEndpoints(form)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch action {
	case "CreateDBCluster":
		id := form.Get("DBClusterIdentifier")
		if e := s.createDBCluster(id); e != nil {
			return failure(e)
		}
		return success(dbClusterResult{DBCluster: s.dbClusters[strings.ToLower(id)].xml(s)})
	case "CreateDBInstance", "CreateDBInstanceReadReplica":
		inst, e := s.createDBInstance(DBInstanceSpec{ID: form.Get("DBInstanceIdentifier"),
			Cluster: form.Get("DBClusterIdentifier"), ReplicaOf: form.Get("SourceDBInstanceIdentifier")})
		if e != nil {
			return failure(e)
		}
		return success(dbInstanceResult{DBInstance: inst.xml(s)})
	case "DeleteDBInstance":
		inst := s.dbInstances[strings.ToLower(form.Get("DBInstanceIdentifier"))]
		if inst == nil {
			return failure(dbInstanceNotFound(form.Get("DBInstanceIdentifier")))
		}
		x := inst.xml(s)
		x.DBInstanceStatus = DBStatusDeleting
		_ = s.deleteDBInstance(inst.id)
		return success(dbInstanceResult{DBInstance: x})
	case "FailoverDBCluster":
		id := form.Get("DBClusterIdentifier")
		if e := s.failover(id, form.Get("TargetDBInstanceIdentifier")); e != nil {
			return failure(e)
		}
		return success(dbClusterResult{DBCluster: s.dbClusters[strings.ToLower(id)].xml(s)})
	case "CreateDBClusterEndpoint":
		spec := DBClusterEndpointSpec{Cluster: form.Get("DBClusterIdentifier"), ID: form.Get("DBClusterEndpointIdentifier"),
			Type: form.Get("EndpointType"), Static: members(form, "StaticMembers"), Excluded: members(form, "ExcludedMembers")}
		if e := s.createDBClusterEndpoint(spec); e != nil {
			return failure(e)
		}
		c := s.dbClusters[strings.ToLower(spec.Cluster)]
		return success(c.endpoints[len(c.endpoints)-1].xml(s))
	}
	return invalidAction(action)
}

type xmlDBClusterMember struct {
	DBInstanceIdentifier string
	IsClusterWriter      bool
}

type xmlDBCluster struct {
	DBClusterIdentifier string
	DBClusterArn        string
	Status              string
	Endpoint            string
	ReaderEndpoint      string
	DBClusterMembers    []xmlDBClusterMember `xml:"DBClusterMembers>DBClusterMember"`
}

func (c *dbCluster) xml(s *Server) xmlDBCluster {
	x := xmlDBCluster{
		DBClusterIdentifier: c.id,
		DBClusterArn:        fmt.Sprintf("arn:aws:rds:%s:%s:cluster:%s", s.opts.Region, s.opts.AccountID, c.id),
		Status:              DBStatusAvailable,
		Endpoint:            fmt.Sprintf("%s.cluster-%s.%s.rds.amazonaws.com", c.id, rdsDNSHash, s.opts.Region),
		ReaderEndpoint:      fmt.Sprintf("%s.cluster-ro-%s.%s.rds.amazonaws.com", c.id, rdsDNSHash, s.opts.Region),
	}
	for _, m := range c.members {
		x.DBClusterMembers = append(x.DBClusterMembers, xmlDBClusterMember{DBInstanceIdentifier: m, IsClusterWriter: m == c.writer})
	}
	return x
}

type xmlEndpoint struct {
	Address string
	Port    int32
}

type xmlDBInstance struct {
	DBInstanceIdentifier                  string
	DBInstanceArn                         string
	DBInstanceStatus                      string
	DBClusterIdentifier                   string       `xml:",omitempty"`
	Endpoint                              *xmlEndpoint `xml:",omitempty"`
	ReadReplicaSourceDBInstanceIdentifier string       `xml:",omitempty"`
	ReadReplicaDBInstanceIdentifiers      []string     `xml:"ReadReplicaDBInstanceIdentifiers>ReadReplicaDBInstanceIdentifier"`
}

func (inst *dbInstance) xml(s *Server) xmlDBInstance {
	x := xmlDBInstance{
		DBInstanceIdentifier:                  inst.id,
		DBInstanceArn:                         fmt.Sprintf("arn:aws:rds:%s:%s:db:%s", s.opts.Region, s.opts.AccountID, inst.id),
		DBInstanceStatus:                      inst.status,
		DBClusterIdentifier:                   inst.cluster,
		ReadReplicaSourceDBInstanceIdentifier: inst.replicaOf,
		ReadReplicaDBInstanceIdentifiers:      s.replicasOf(inst.id),
	}
	// RDS has no endpoint for an instance until it has been created.
	if inst.status != DBStatusCreating {
		x.Endpoint = &xmlEndpoint{Address: s.instanceAddress(inst.id), Port: 5432}
	}
	return x
}

type xmlDBClusterEndpoint struct {
	DBClusterEndpointIdentifier string
	DBClusterIdentifier         string
	DBClusterEndpointArn        string
	Endpoint                    string
	Status                      string
	EndpointType                string
	CustomEndpointType          string
	StaticMembers               []string `xml:"StaticMembers>member"`
	ExcludedMembers             []string `xml:"ExcludedMembers>member"`
}

func (ep *DBClusterEndpointSpec) xml(s *Server) xmlDBClusterEndpoint {
	return xmlDBClusterEndpoint{
		DBClusterEndpointIdentifier: ep.ID,
		DBClusterIdentifier:         ep.Cluster,
		DBClusterEndpointArn:        fmt.Sprintf("arn:aws:rds:%s:%s:cluster-endpoint:%s", s.opts.Region, s.opts.AccountID, ep.ID),
		Endpoint:                    fmt.Sprintf("%s.cluster-custom-%s.%s.rds.amazonaws.com", ep.ID, rdsDNSHash, s.opts.Region),
		Status:                      DBStatusAvailable,
		EndpointType:                "CUSTOM",
		CustomEndpointType:          ep.Type,
		StaticMembers:               ep.Static,
		ExcludedMembers:             ep.Excluded,
	}
}

type dbClusterResult struct {
	DBCluster xmlDBCluster
}

type dbInstanceResult struct {
	DBInstance xmlDBInstance
}

type dbClustersResult struct {
	DBClusters []xmlDBCluster `xml:"DBClusters>DBCluster"`
	Marker     string         `xml:",omitempty"`
}

type dbInstancesResult struct {
	DBInstances []xmlDBInstance `xml:"DBInstances>DBInstance"`
	Marker      string          `xml:",omitempty"`
}

type dbClusterEndpointsResult struct {
	DBClusterEndpoints []xmlDBClusterEndpoint `xml:"DBClusterEndpoints>DBClusterEndpointList"`
	Marker             string                 `xml:",omitempty"`
}

func (s *Server) describeDBClusters(form url.Values) response {
	pg, e := s.rdsPage(form)
	if e != nil {
		return failure(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := slices.Sorted(maps.Keys(s.dbClusters))
	if id := form.Get("DBClusterIdentifier"); id != "" {
		if s.dbClusters[strings.ToLower(id)] == nil {
			return failure(dbClusterNotFound(id))
		}
		ids = []string{strings.ToLower(id)}
	}
	var res dbClustersResult
	res.Marker = pg.take(len(ids), func(i int) { res.DBClusters = append(res.DBClusters, s.dbClusters[ids[i]].xml(s)) })
	return success(res)
}

func (s *Server) describeDBInstances(form url.Values) response {
	pg, e := s.rdsPage(form)
	if e != nil {
		return failure(e)
	}
	filters, e := rdsFilters(form, "db-cluster-id", "db-instance-id")
	if e != nil {
		return failure(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var sel []*dbInstance
	if id := form.Get("DBInstanceIdentifier"); id != "" {
		inst := s.dbInstances[strings.ToLower(id)]
		if inst == nil {
			return failure(dbInstanceNotFound(id))
		}
		sel = []*dbInstance{inst}
	} else {
		for _, id := range slices.Sorted(maps.Keys(s.dbInstances)) {
			sel = append(sel, s.dbInstances[id])
		}
	}
	sel = slices.DeleteFunc(sel, func(inst *dbInstance) bool {
		arn := fmt.Sprintf("arn:aws:rds:%s:%s:db:%s", s.opts.Region, s.opts.AccountID, inst.id)
		return inst.unlisted || !filters.match("db-cluster-id", inst.cluster) || !filters.match("db-instance-id", inst.id, arn)
	})
	var res dbInstancesResult
	res.Marker = pg.take(len(sel), func(i int) { res.DBInstances = append(res.DBInstances, sel[i].xml(s)) })
	return success(res)
}

// describeDBClusterEndpoints lists custom endpoints only; RDS also lists each cluster's built-in writer and
// reader endpoints, which ipsync never asks for.
func (s *Server) describeDBClusterEndpoints(form url.Values) response {
	pg, e := s.rdsPage(form)
	if e != nil {
		return failure(e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var sel []*DBClusterEndpointSpec
	clusterID, endpointID := strings.ToLower(form.Get("DBClusterIdentifier")), strings.ToLower(form.Get("DBClusterEndpointIdentifier"))
	if clusterID != "" && s.dbClusters[clusterID] == nil {
		return failure(dbClusterNotFound(clusterID))
	}
	for _, id := range slices.Sorted(maps.Keys(s.dbClusters)) {
		for _, ep := range s.dbClusters[id].endpoints {
			if (clusterID == "" || clusterID == id) && (endpointID == "" || endpointID == ep.ID) {
				sel = append(sel, ep)
			}
		}
	}
	var res dbClusterEndpointsResult
	res.Marker = pg.take(len(sel), func(i int) { res.DBClusterEndpoints = append(res.DBClusterEndpoints, sel[i].xml(s)) })
	return success(res)
}

// rdsPaging is one Describe page: records [offset, offset+size).
type rdsPaging struct{ offset, size int }

// rdsPage reads MaxRecords (20-100, default 100, as RDS) and Marker. Options.RDSPageSize, when set, makes
// pages smaller than asked, as RDS may.
func (s *Server) rdsPage(form url.Values) (rdsPaging, *apiError) {
	size, set, e := parseInt32(form, "MaxRecords")
	if e != nil {
		return rdsPaging{}, e
	}
	if !set {
		size = 100
	} else if size < 20 || size > 100 {
		return rdsPaging{}, invalidParameter("Invalid value %d for MaxRecords. Must be between 20 and 100", size)
	}
	pg := rdsPaging{size: int(size)}
	if s.opts.RDSPageSize > 0 {
		pg.size = min(pg.size, s.opts.RDSPageSize)
	}
	if m := form.Get("Marker"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			return rdsPaging{}, invalidParameter("Invalid Marker %q; pass the Marker of the previous page", m)
		}
		pg.offset = n
	}
	return pg, nil
}

// take calls add for each record index of the page among n and returns the next page's Marker ("" = last).
func (pg rdsPaging) take(n int, add func(i int)) string {
	for i := pg.offset; i < n && i < pg.offset+pg.size; i++ {
		add(i)
	}
	if pg.offset+pg.size < n {
		return strconv.Itoa(pg.offset + pg.size)
	}
	return ""
}

// rdsFilterSet is the Filters parameter: name -> values (lower-cased; RDS identifiers are case-insensitive).
type rdsFilterSet map[string][]string

// match reports whether one of candidates is among the filter's values; true when the filter is absent.
func (f rdsFilterSet) match(name string, candidates ...string) bool {
	values, ok := f[name]
	if !ok {
		return true
	}
	for _, c := range candidates {
		if slices.Contains(values, strings.ToLower(c)) {
			return true
		}
	}
	return false
}

// rdsFilters reads Filters.Filter.N.Name / Filters.Filter.N.Values.Value.M, accepting only the known names.
func rdsFilters(form url.Values, known ...string) (rdsFilterSet, *apiError) {
	out := rdsFilterSet{}
	for _, f := range indexed(form, "Filters.Filter") {
		name := f["Name"]
		if !slices.Contains(known, name) {
			return nil, invalidParameter("Unrecognized filter name: %s (this fake knows %s)", name, strings.Join(known, ", "))
		}
		var values []string
		for k, v := range f {
			if strings.HasPrefix(k, "Values.Value.") {
				values = append(values, strings.ToLower(v))
			}
		}
		if len(values) == 0 {
			return nil, invalidParameter("Filter %s has no values", name)
		}
		out[name] = append(out[name], values...)
	}
	return out, nil
}

func invalidParameter(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

func dbClusterNotFound(id string) *apiError {
	return errorf(http.StatusNotFound, "DBClusterNotFoundFault", "DBCluster %s not found.", id)
}

func dbInstanceNotFound(id string) *apiError {
	return errorf(http.StatusNotFound, "DBInstanceNotFound", "DBInstance %s not found.", id)
}

// toError turns an answer's error into a Go error for the Go helpers.
func toError(e *apiError) error {
	if e == nil {
		return nil
	}
	return fmt.Errorf("elbv2fake: %s: %s", e.code, e.msg)
}
