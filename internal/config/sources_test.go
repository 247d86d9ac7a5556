package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/config"
)

// tgFor is tgARN with its own target group name, so each mapping of a document has its own group.
func tgFor(name string) string { return strings.Replace(tgARN, "/orders/", "/"+name+"/", 1) }

func TestLoadSources(t *testing.T) {
	cfg, err := inline(t, `
syncs:
  - endpoints: [r1.c9abc.us-east-1.rds.amazonaws.com, r2.c9abc.us-east-1.rds.amazonaws.com]
    target_group_arn: `+tgFor("pool")+`
  - rds: {cluster: Orders-Aurora, role: reader}
    target_group_arn: `+tgFor("readers")+`
  - rds: {cluster: orders-aurora, role: writer, refresh: 10s}
    target_group_arn: `+tgFor("writer")+`
  - rds: {cluster: orders-aurora, custom_endpoint: reporting}
    target_group_arn: `+tgFor("reporting")+`
  - rds: {instance: legacy}
    target_group_arn: `+tgFor("legacy")+`
  - name: legacy-reads
    rds: {instance: legacy, with_replicas: true}
    target_group_arn: `+tgFor("legacyreads")+`
`)
	if err != nil {
		t.Fatal(err)
	}
	if p := problems(t, cfg); p != nil {
		t.Fatalf("Validate: %q", p)
	}
	withTG := func(s config.Sync, group string) config.Sync { s.TargetGroupARN = tgFor(group); return s }
	pool := withTG(wantSync("r1"), "pool")
	pool.Endpoint = ""
	pool.Endpoints = []string{"r1.c9abc.us-east-1.rds.amazonaws.com", "r2.c9abc.us-east-1.rds.amazonaws.com"}
	rds := func(name, group string, r config.RDS) config.Sync {
		s := withTG(wantSync(name), group)
		s.Endpoint = ""
		if r.Refresh == 0 {
			r.Refresh = config.DefaultRDSRefresh
		}
		s.RDS = &r
		return s
	}
	want := []config.Sync{
		pool,
		rds("Orders-Aurora-reader", "readers", config.RDS{Cluster: "Orders-Aurora", Role: config.RoleReader}),
		rds("orders-aurora-writer", "writer", config.RDS{Cluster: "orders-aurora", Role: config.RoleWriter, Refresh: 10 * time.Second}),
		rds("orders-aurora-reporting", "reporting", config.RDS{Cluster: "orders-aurora", CustomEndpoint: "reporting"}),
		rds("legacy", "legacy", config.RDS{Instance: "legacy"}),
		rds("legacy-reads", "legacyreads", config.RDS{Instance: "legacy", WithReplicas: true}),
	}
	if !reflect.DeepEqual(cfg.Syncs, want) {
		t.Fatalf("\n got %+v\nwant %+v", cfg.Syncs, want)
	}

	for i, want := range []struct {
		dbIdentifier string
		dnsNames     []string
	}{
		{"r1", []string{"r1.c9abc.us-east-1.rds.amazonaws.com", "r2.c9abc.us-east-1.rds.amazonaws.com"}},
		{"orders-aurora", nil}, // lower-cased as RDS stores identifiers
		{"orders-aurora", nil},
		{"orders-aurora", nil}, // the cluster, not the custom endpoint: cluster events name the cluster
		{"legacy", nil},
		{"legacy", nil},
	} {
		s := cfg.Syncs[i]
		if got := s.DBIdentifier(); got != want.dbIdentifier {
			t.Errorf("syncs[%d] DBIdentifier() = %q, want %q", i, got, want.dbIdentifier)
		}
		if got := s.DNSNames(); !reflect.DeepEqual(got, want.dnsNames) {
			t.Errorf("syncs[%d] DNSNames() = %q, want %q", i, got, want.dnsNames)
		}
	}
	if got := mustLoad(t, []string{"--config", validSync}, nil).Syncs[0].DNSNames(); !reflect.DeepEqual(got, []string{endpoint}) {
		t.Errorf("DNSNames() of an endpoint: mapping = %q, want [%s]", got, endpoint)
	}
}

func TestLoadSourcesUnknownKey(t *testing.T) {
	_, err := inline(t, "syncs:\n  - rds: {cluster: orders, role: reader, replicas: true}\n    target_group_arn: "+tgARN+"\n")
	if err == nil || !strings.Contains(err.Error(), `unknown key "replicas" in rds (known keys: cluster, custom_endpoint, instance, refresh, role, with_replicas)`) {
		t.Errorf("an unknown key in rds: must list the known ones: %v", err)
	}
	_, err = inline(t, "syncs:\n  - endpoint: "+endpoint+"\n    target_group_arn: "+tgARN+"\n    endpoint_list: [a.example.com]\n")
	if err == nil || !strings.Contains(err.Error(), "endpoints") || !strings.Contains(err.Error(), "rds") {
		t.Errorf("an unknown key in a syncs entry must list endpoints and rds among the known ones: %v", err)
	}
}

// sourceCases: invalid sources, each with the problems Validate must report (substrings, in order). TestValidate
// runs them with validateCases, and they seed FuzzLoad.
var sourceCases = []struct {
	name, doc string
	want      []string
}{
	{"endpoint and endpoints", "syncs:\n  - {name: x, endpoint: a.example.com, endpoints: [b.example.com], target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (x): endpoint and endpoints: a mapping takes exactly one source; give each source its own mapping and target group"}},
	{"endpoint and rds", "syncs:\n  - {name: x, endpoint: a.example.com, rds: {cluster: orders, role: reader}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (x): endpoint and rds: a mapping takes exactly one source"}},
	{"all three", "syncs:\n  - {endpoint: a.example.com, endpoints: [b.example.com], rds: {instance: orders}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (a): endpoint and endpoints and rds: a mapping takes exactly one source"}},
	{"endpoints empty", "syncs:\n  - {name: x, endpoints: [], target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (x): endpoints: empty; expected a list of DNS names"}},
	{"endpoints empty without name", "syncs:\n  - {endpoints: [], target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0]: endpoints: empty"}},
	{"endpoints bad name", "syncs:\n  - {endpoints: [a.example.com, \"10.0.0.5\"], target_group_arn: " + tgARN + "}\n",
		[]string{`syncs[0] (a): endpoints[1] "10.0.0.5": is an IP address`}},
	{"endpoints duplicate", "syncs:\n  - {endpoints: [a.example.com, b.example.com, A.Example.com.], target_group_arn: " + tgARN + "}\n",
		[]string{`syncs[0] (a): endpoints[2] "A.Example.com.": the same name as endpoints[0]; list each name once`}},
	{"rds empty", "syncs:\n  - {name: x, rds: {}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (x): rds: no cluster: or instance:; expected one of {cluster: ID, role: writer|reader|any}, {cluster: ID, custom_endpoint: NAME} or {instance: ID, with_replicas: true|false}"}},
	{"rds empty without name", "syncs:\n  - {rds: {}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0]: rds: no cluster: or instance:"}},
	{"rds cluster and instance", "syncs:\n  - {name: x, rds: {cluster: orders, instance: orders-1, role: any}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (x): rds: cluster: and instance: are both set; a source reads either a DB cluster or a DB instance"}},
	{"rds cluster without role", "syncs:\n  - {rds: {cluster: orders}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (orders): rds: cluster: orders needs role: (writer, reader or any) or custom_endpoint: NAME"}},
	{"rds unknown role", "syncs:\n  - {rds: {cluster: orders, role: primary}, target_group_arn: " + tgARN + "}\n",
		[]string{`syncs[0] (orders-primary): rds.role "primary": expected writer, reader or any`}},
	{"rds role and custom endpoint", "syncs:\n  - {name: x, rds: {cluster: orders, role: reader, custom_endpoint: reporting}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (x): rds: role: and custom_endpoint: are both set; a custom endpoint has its own members"}},
	{"rds cluster with replicas", "syncs:\n  - {rds: {cluster: orders, role: any, with_replicas: true}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (orders-any): rds.with_replicas: only with instance:; a cluster's readers are role: reader"}},
	{"rds instance with role", "syncs:\n  - {rds: {instance: orders, role: reader}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (orders): rds: role: and custom_endpoint: go with cluster:, not instance:; an instance's read replicas are with_replicas: true"}},
	{"rds bad cluster id", "syncs:\n  - {name: x, rds: {cluster: orders--aurora, role: reader}, target_group_arn: " + tgARN + "}\n",
		[]string{`syncs[0] (x): rds.cluster "orders--aurora": expected a DB cluster identifier (1-63 letters, digits and hyphens, starting with a letter`}},
	{"rds cluster given as endpoint", "syncs:\n  - {name: x, rds: {cluster: orders.cluster-c9abc.us-east-1.rds.amazonaws.com, role: writer}, target_group_arn: " + tgARN + "}\n",
		[]string{`rds.cluster "orders.cluster-c9abc.us-east-1.rds.amazonaws.com": expected a DB cluster identifier`}},
	{"rds bad instance id", "syncs:\n  - {name: x, rds: {instance: 1orders}, target_group_arn: " + tgARN + "}\n",
		[]string{`rds.instance "1orders": expected a DB instance identifier`}},
	{"rds bad custom endpoint id", "syncs:\n  - {name: x, rds: {cluster: orders, custom_endpoint: reporting-}, target_group_arn: " + tgARN + "}\n",
		[]string{`rds.custom_endpoint "reporting-": expected a custom endpoint identifier`}},
	{"rds refresh below floor", "syncs:\n  - {rds: {cluster: orders, role: reader, refresh: 1s}, target_group_arn: " + tgARN + "}\n",
		[]string{"syncs[0] (orders-reader): rds.refresh 1s: expected at least 5s (each refresh costs RDS Describe calls from the account's shared budget); the default is 30s"}},
	{"rds refresh 0", "syncs:\n  - {rds: {cluster: orders, role: reader, refresh: 0s}, target_group_arn: " + tgARN + "}\n",
		[]string{"rds.refresh 0s: expected at least 5s"}},
	{"rds with rds_identifier", "syncs:\n  - {rds: {cluster: orders, role: reader}, rds_identifier: orders, target_group_arn: " + tgARN + "}\n",
		[]string{`syncs[0] (orders-reader): rds_identifier "orders": not used with rds:, whose cluster or instance is the identifier RDS events name: remove it`}},
	{"rds default names collide", "syncs:\n  - {rds: {instance: orders}, target_group_arn: " + tgARN + "}\n" +
		"  - {endpoint: " + endpoint + ", target_group_arn: " + tgFor("other") + "}\n",
		[]string{`syncs[1] (orders): name "orders" is already used by syncs[0]`}},
}

func TestWarnings(t *testing.T) {
	cfg, err := inline(t, `
syncs:
  - endpoint: orders-aurora.cluster-ro-c9abc.us-east-1.rds.amazonaws.com
    target_group_arn: `+tgFor("readers")+`
  - endpoint: Reporting.Cluster-Custom-c9abc.us-east-1.rds.amazonaws.com.
    rds_identifier: Orders-Aurora
    target_group_arn: `+tgFor("reporting")+`
  - name: pool
    endpoints: [r1.c9abc.us-east-1.rds.amazonaws.com, analytics.cluster-custom-c9abc.eu-west-1.rds.amazonaws.com]
    target_group_arn: `+tgFor("pool")+`
  - name: writer
    endpoint: orders-aurora.cluster-c9abc.us-east-1.rds.amazonaws.com
    target_group_arn: `+tgFor("writer")+`
  - endpoint: orders.c9abc.us-east-1.rds.amazonaws.com
    target_group_arn: `+tgFor("instance")+`
  - name: not-rds
    endpoint: orders.cluster-ro-example.internal
    target_group_arn: `+tgFor("other")+`
  - rds: {cluster: orders-aurora, role: reader}
    target_group_arn: `+tgFor("rds")+`
`)
	if err != nil {
		t.Fatal(err)
	}
	if p := problems(t, cfg); p != nil {
		t.Fatalf("warnings are not problems: Validate = %q", p)
	}
	want := []string{
		`syncs[0] (orders-aurora): endpoint "orders-aurora.cluster-ro-c9abc.us-east-1.rds.amazonaws.com" is an Aurora reader endpoint, which answers one member per query, at random, so following it through DNS would register and drain members in turn: use rds: {cluster: orders-aurora, role: reader} instead`,
		`syncs[1] (Reporting): endpoint "Reporting.Cluster-Custom-c9abc.us-east-1.rds.amazonaws.com." is an Aurora custom endpoint, which answers one member per query, at random, so following it through DNS would register and drain members in turn: use rds: {cluster: orders-aurora, custom_endpoint: reporting} instead`,
		`syncs[2] (pool): endpoints "analytics.cluster-custom-c9abc.eu-west-1.rds.amazonaws.com" is an Aurora custom endpoint, which answers one member per query, at random, so following it through DNS would register and drain members in turn: use rds: {cluster: CLUSTER_ID, custom_endpoint: analytics} instead`,
	}
	if got := cfg.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings():\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := mustLoad(t, []string{"--config", validSync}, nil).Warnings(); got != nil {
		t.Errorf("an instance endpoint: Warnings() = %q, want none", got)
	}
	var nilConfig *config.Config
	if got := nilConfig.Warnings(); got != nil {
		t.Errorf("nil config: Warnings() = %q", got)
	}
}

func TestRDSDefaultName(t *testing.T) {
	for _, tc := range []struct {
		rds  config.RDS
		want string
	}{
		{config.RDS{Cluster: "orders-aurora", Role: config.RoleReader}, "orders-aurora-reader"},
		{config.RDS{Cluster: "orders-aurora", Role: config.RoleWriter}, "orders-aurora-writer"},
		{config.RDS{Cluster: "orders-aurora", Role: config.RoleAny}, "orders-aurora-any"},
		{config.RDS{Cluster: "orders-aurora", CustomEndpoint: "reporting"}, "orders-aurora-reporting"},
		{config.RDS{Instance: "orders"}, "orders"},
		{config.RDS{Instance: "orders", WithReplicas: true}, "orders-with-replicas"},
	} {
		if got := tc.rds.DefaultName(); got != tc.want {
			t.Errorf("%s: DefaultName() = %q, want %q", tc.rds.String(), got, tc.want)
		}
	}
}
