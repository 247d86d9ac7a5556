package config_test

import (
	"strings"
	"testing"
)

func TestRDSIdentifier(t *testing.T) {
	cfg, err := inline(t, validSync+`  - name: custom
    endpoint: reporting.cluster-custom-c9abc.us-east-1.rds.amazonaws.com
    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/reports/0123456789abcdef
    rds_identifier: Reports-Cluster
  - name: reader
    endpoint: Orders-Aurora.cluster-ro-c9abc.us-east-1.rds.amazonaws.com
    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/reader/0123456789abcdef
`)
	if err != nil {
		t.Fatal(err)
	}
	if p := problems(t, cfg); p != nil {
		t.Fatalf("Validate: %q", p)
	}
	for i, want := range []struct{ field, derived string }{
		{"", "orders"},                         // instance endpoint: its first label
		{"Reports-Cluster", "reports-cluster"}, // custom endpoint: given, lower-cased like RDS
		{"", "orders-aurora"},                  // reader endpoint: the cluster's identifier
	} {
		s := cfg.Syncs[i]
		if s.RDSIdentifier != want.field || s.DBIdentifier() != want.derived {
			t.Errorf("syncs[%d]: RDSIdentifier %q, DBIdentifier() %q; want %q, %q", i, s.RDSIdentifier, s.DBIdentifier(), want.field, want.derived)
		}
	}
}

func TestRDSIdentifierValidation(t *testing.T) {
	for _, id := range []string{"1orders", "orders-", "ord--ers", "ord_ers", "orders.c9abc", strings.Repeat("a", 64)} {
		cfg, err := inline(t, validSync+"    rds_identifier: "+id+"\n")
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		p := problems(t, cfg)
		if len(p) != 1 || !strings.Contains(p[0], "rds_identifier") || !strings.Contains(p[0], id) {
			t.Errorf("rds_identifier %q: problems %q, want one naming the key and the value", id, p)
		}
	}
	for _, id := range []string{"a", "orders", "Orders-2", strings.Repeat("a", 63)} {
		cfg, err := inline(t, validSync+"    rds_identifier: "+id+"\n")
		if err != nil {
			t.Fatal(err)
		}
		if p := problems(t, cfg); p != nil {
			t.Errorf("rds_identifier %q: %q", id, p)
		}
	}
	if _, err := inline(t, validSync+"    rds_identifer: orders\n"); err == nil || !strings.Contains(err.Error(), "rds_identifier") {
		t.Errorf("a misspelt key must list rds_identifier among the known keys: %v", err)
	}
}
