package discover_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/discover"
)

func TestParseSource(t *testing.T) {
	for value, want := range map[string]discover.Source{
		"orders.c9abc.us-east-1.rds.amazonaws.com": {Endpoint: "orders.c9abc.us-east-1.rds.amazonaws.com"},
		"db.internal.":                        {Endpoint: "db.internal."},
		"rds:cluster/orders/reader":           {RDS: &discover.RDSSource{Cluster: "orders", Role: "reader"}},
		"rds:cluster/orders/writer":           {RDS: &discover.RDSSource{Cluster: "orders", Role: "writer"}},
		"rds:cluster/orders/any":              {RDS: &discover.RDSSource{Cluster: "orders", Role: "any"}},
		"rds:cluster/orders/custom/analytics": {RDS: &discover.RDSSource{Cluster: "orders", CustomEndpoint: "analytics"}},
		"rds:instance/orders-1":               {RDS: &discover.RDSSource{Instance: "orders-1"}},
		"rds:instance/orders-1/replicas":      {RDS: &discover.RDSSource{Instance: "orders-1", WithReplicas: true}},
	} {
		got, err := discover.ParseSource(value)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseSource(%q) = %+v, %v; want %+v", value, got, err, want)
			continue
		}
		if got.String() != value {
			t.Errorf("String() = %q, want %q", got.String(), value)
		}
	}
	for value, want := range map[string]string{
		"":                                        "is 0 characters long",
		"10.0.0.5":                                "is an IP address",
		"https://orders.example.com":              "looks like a URL",
		"orders.example.com:5432":                 "is not a bare DNS name",
		"rds:":                                    "too short",
		"rds:cluster":                             "too short",
		"rds:cluster/orders":                      "names the members' role",
		"rds:cluster/orders/primary":              "names the members' role",
		"rds:cluster/orders/custom":               "names the members' role",
		"rds:cluster/orders/custom/a--b":          `custom endpoint "a--b" is not an RDS identifier`,
		"rds:cluster/1orders/reader":              `"1orders" is not an RDS identifier`,
		"rds:instance/orders/readers":             "unknown form after rds:instance",
		"rds:instance/orders/replicas/x":          "unknown form after rds:instance",
		"rds:proxy/orders":                        "unknown form after rds:proxy",
		"rds:cluster/orders/reader/":              "names the members' role",
		"rds:instance/" + strings.Repeat("a", 64): "is not an RDS identifier",
	} {
		_, err := discover.ParseSource(value)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSource(%q) error = %v, want it to contain %q", value, err, want)
		}
	}
	if got := (discover.Source{RDS: &discover.RDSSource{Instance: "db1", WithReplicas: true}}).Config(); !reflect.DeepEqual(got,
		&config.RDS{Instance: "db1", WithReplicas: true, Refresh: config.DefaultRDSRefresh}) {
		t.Errorf("Config() = %+v", got)
	}
	if (discover.Source{Endpoint: "x.example.com"}).Config() != nil {
		t.Error("a DNS source has an rds: block")
	}
}
