package config_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ipsync/ipsync/internal/config"
)

// TestValidateListsEveryKind: a value of the wrong type, an unknown key and invalid values are all listed by one
// Validate, each once, with syncs[i] meaning the i-th entry of the file even when an entry is not a mapping, and
// a key whose value had the wrong type is not also called missing.
func TestValidateListsEveryKind(t *testing.T) {
	doc := `syncs:
  - endpoint: [orders.example.com, billing.example.com]
    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef
    port: 70000
  - just a string
  - endpoint: reports.example.com
    target_group_arn: {name: reports}
    deregister_after: two
poll: {min: 1s, max: 30}
dns:
  timeout: 2s
  sever: [10.0.0.2]
log:
  level: loud
`
	cfg, err := inline(t, doc)
	if err == nil || cfg == nil {
		t.Fatalf("Load = %v, %v; want the file's problems and the config of the rest", cfg, err)
	}
	var ve *config.ValidationError
	if !errors.As(cfg.Validate(), &ve) {
		t.Fatalf("Validate = %v, want a *ValidationError", cfg.Validate())
	}
	src := "inline configuration (--config/IPSYNC_CONFIG): "
	want := []string{
		src + "line 2: syncs[0].endpoint: cannot unmarshal !!seq into string: expected a single value",
		src + "line 5: syncs[1]: cannot unmarshal !!str `just a ...` into a syncs entry",
		src + "line 7: syncs[2].target_group_arn: cannot unmarshal !!map into string",
		src + "line 8: syncs[2].deregister_after: cannot unmarshal !!str `two` into int",
		src + "line 9: poll.max: cannot unmarshal !!int `30` into time.Duration: expected a duration with a unit",
		src + `line 12: unknown key "sever" in dns`,
		"syncs[0]: port (--port) 70000: expected 1-65535",
		`log.level (--log-level) "loud"`,
	}
	if len(ve.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n  %s", len(ve.Problems), len(want), strings.Join(ve.Problems, "\n  "))
	}
	for i, w := range want {
		if i >= len(ve.Problems) || !strings.HasPrefix(ve.Problems[i], w) {
			t.Errorf("problem %d does not start with %q:\n  %s", i, w, strings.Join(ve.Problems, "\n  "))
		}
	}
	for _, p := range ve.Problems {
		if strings.Contains(p, "missing") || strings.Contains(p, "no mappings") {
			t.Errorf("a key whose value had the wrong type is called missing: %q", p)
		}
	}
}

// TestYAMLSyntaxErrorLine: a syntax error names the line it is on, wherever the enclosing block starts.
func TestYAMLSyntaxErrorLine(t *testing.T) {
	sync := func(name string) string {
		return fmt.Sprintf("  - endpoint: %s.example.com\n    target_group_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/%s/0123456789abcdef\n", name, name)
	}
	head := "syncs:\n" + sync("a") + sync("b") + sync("c") // lines 1-7
	for _, tc := range []struct {
		name, doc string
		line      int
	}{
		{"mis-indented key", head + "   port: 5432\n" + sync("d"), 8},
		{"a tab", head + "\tport: 5432\n", 8},
		{"an unclosed flow list", head + "dns:\n  servers: [10.0.0.2\nlisten: \":9796\"\n", 9},
		{"a key at the wrong level in the list", head + sync("d") + "  listen: x\n", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inline(t, tc.doc)
			want := fmt.Sprintf(": line %d: ", tc.line)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to name line %d:\n%s", err, tc.line, numbered(tc.doc))
			}
		})
	}
}

func numbered(doc string) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimSuffix(doc, "\n"), "\n") {
		fmt.Fprintf(&b, "%3d %s\n", i+1, l)
	}
	return b.String()
}
