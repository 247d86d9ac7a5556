package metrics

// Tests of deploy/: every metric the alert rules and the Grafana dashboard query exists in the registry with the
// labels and label values they use, and (with promtool installed) every expression parses and every alert rule
// passes its unit tests.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/ipsync/ipsync/internal/awserr"
)

const deployDir = "../../deploy"

// query is one PromQL expression and where it comes from, for error messages.
type query struct{ where, expr string }

// family is what the registry says about one metric.
type family struct {
	typ    dto.MetricType
	labels map[string]bool
}

// registryFamilies registers every ipsync metric and gives each family a series, so that Gather sees them all.
func registryFamilies(t *testing.T) map[string]family {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, BuildInfo{})
	m.Init("orders")
	m.InitMembership("orders")
	m.InitBudgets()
	m.awsCalls.WithLabelValues("DescribeTargetHealth", awserr.CodeOK).Inc()
	m.awsDuration.WithLabelValues("DescribeTargetHealth").Observe(0.01)
	m.DNSServerQuery(DNSModeAuthoritative, "ns-1.awsdns-01.org", DNSSuccess)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]family{}
	for _, mf := range mfs {
		f := family{typ: mf.GetType(), labels: map[string]bool{}}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				f.labels[lp.GetName()] = true
			}
		}
		out[mf.GetName()] = f
	}
	if len(out) != 22 {
		t.Fatalf("the registry has %d families, want the 22 families ipsync exports (TestContract lists them): %v", len(out), out)
	}
	return out
}

// closedValues are the label values ipsync can export for labels with a closed set; a query matching another
// value is a typo that would make a panel empty or an alert silent forever.
func closedValues() map[string][]string {
	return map[string][]string{
		"state":  targetStates[:],
		"stage":  {StageRegistered, StageHealthy},
		"result": slices.Concat(syncResults[:], dnsResults[:]),
		"mode":   dnsModes[:],
		"budget": Budgets(),
	}
}

// Labels every series has once scraped (target labels) or every histogram bucket has.
var targetLabels = map[string]bool{"job": true, "instance": true}

func alertQueries(t *testing.T) []query {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Record      string            `yaml:"record"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	runbookFile, err := os.ReadFile(filepath.Join(deployDir, "..", "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	runbooks := string(runbookFile)
	var out []query
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			out = append(out, query{where: "alerts.yml " + name, expr: r.Expr})
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Alert != "" && strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alerts.yml %s: no %s annotation", name, a)
				}
			}
			if want := "docs/runbooks.md#" + strings.ToLower(r.Alert); r.Alert != "" && !strings.HasSuffix(r.Annotations["runbook_url"], want) {
				t.Errorf("alerts.yml %s: runbook_url %q, want it to end in %s (the runbook heading's anchor)", name, r.Annotations["runbook_url"], want)
			}
			if r.Alert != "" && !slices.Contains(strings.Split(runbooks, "\n"), "## "+r.Alert) {
				t.Errorf("docs/runbooks.md has no heading \"## %s\", which alerts.yml %s's runbook_url points at", r.Alert, name)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

// dashboardQueries walks the dashboard JSON and returns every "expr" and every template variable's query.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(deployDir, "grafana", "ipsync.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("ipsync.json: %v", err)
	}
	var out []query
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				path += "/" + title
			}
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || (k == "definition" && strings.HasPrefix(s, "label_values("))) {
					out = append(out, query{where: "ipsync.json " + path, expr: s})
					continue
				}
				walk(path, x)
			}
		case []any:
			for _, x := range v {
				walk(path, x)
			}
		}
	}
	walk("", dash)

	panels, _ := dash["panels"].([]any)
	ids := map[float64]bool{}
	for _, p := range panels {
		p := p.(map[string]any)
		id, _ := p["id"].(float64)
		if ids[id] {
			t.Errorf("ipsync.json: panel id %v used twice", id)
		}
		ids[id] = true
		if p["type"] == "row" {
			continue
		}
		if targets, _ := p["targets"].([]any); len(targets) == 0 {
			t.Errorf("ipsync.json: panel %q has no query", p["title"])
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d queries in the dashboard: the walk is broken", len(out))
	}
	return out
}

var (
	stringLit  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	rangeLit   = regexp.MustCompile(`\[[^\]]*\]`)
	labelList  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	selector   = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true}
)

// metricNames returns the metric names an expression selects: identifiers that are not functions, aggregation
// operators, keywords, label names or string contents. Good enough for the expressions in deploy/.
func metricNames(expr string) []string {
	e := selector.ReplaceAllString(expr, "$1") // label matchers
	e = stringLit.ReplaceAllString(e, `""`)
	e = rangeLit.ReplaceAllString(e, "")
	e = labelList.ReplaceAllString(e, "")
	e = regexp.MustCompile(`\$[a-zA-Z_]+`).ReplaceAllString(e, "") // Grafana variables outside brackets
	var out []string
	for _, m := range identifier.FindAllStringSubmatch(e, -1) {
		name := m[0]
		if m[1] != "" || keywords[strings.ToLower(name)] { // a function call or a keyword
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// resolve maps a queried name to its registry family: a histogram's _bucket, _sum and _count series are the
// histogram family's, and _bucket adds the le label.
func resolve(name string, fams map[string]family) (family, string, bool) {
	if f, ok := fams[name]; ok && f.typ != dto.MetricType_HISTOGRAM {
		return f, name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(name, suffix)
		if f, ok := fams[base]; found && ok && f.typ == dto.MetricType_HISTOGRAM {
			if suffix == "_bucket" {
				labels := map[string]bool{"le": true}
				for l := range f.labels {
					labels[l] = true
				}
				f.labels = labels
			}
			return f, base, true
		}
	}
	return family{}, "", false
}

// labelValuesCall is Grafana's label_values(selector, label) of a template variable.
var labelValuesCall = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// checkQuery returns the registry families an expression uses, and a problem for every metric it names that the
// registry lacks and every label or closed-set label value it uses that the metric does not have.
func checkQuery(q query, fams map[string]family) (used, problems []string) {
	problemf := func(format string, args ...any) {
		problems = append(problems, q.where+": "+fmt.Sprintf(format, args...))
	}
	expr := q.expr
	var wantLabel string // label_values' label must exist on its metric
	if m := labelValuesCall.FindStringSubmatch(expr); m != nil {
		expr, wantLabel = m[1], m[2]
	}
	names := metricNames(expr)
	if len(names) == 0 {
		problemf("no metric found in %q", expr)
	}
	labelsInExpr := map[string]bool{"le": true}
	for l := range targetLabels {
		labelsInExpr[l] = true
	}
	for _, name := range names {
		if name == "up" { // Prometheus's own, per scrape target
			continue
		}
		f, base, ok := resolve(name, fams)
		if !ok {
			problemf("metric %s does not exist in the registry", name)
			continue
		}
		used = append(used, base)
		for l := range f.labels {
			labelsInExpr[l] = true
		}
	}
	if wantLabel != "" && !labelsInExpr[wantLabel] {
		problemf("label_values: %v have no label %q", names, wantLabel)
	}
	for _, sel := range selector.FindAllStringSubmatch(expr, -1) {
		f, _, ok := resolve(sel[1], fams)
		if !ok {
			continue // reported above, or up
		}
		for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
			label, op, value := m[1], m[2], m[3]
			if !f.labels[label] && !targetLabels[label] {
				problemf("%s has no label %q", sel[1], label)
				continue
			}
			known, closed := closedValues()[label]
			if !closed || strings.Contains(value, "$") {
				continue
			}
			values := []string{value}
			if op == "=~" || op == "!~" {
				values = strings.Split(value, "|")
			}
			for _, v := range values {
				if !slices.Contains(known, strings.ReplaceAll(v, `\\.`, ".")) {
					problemf("%s{%s%s%q}: ipsync never exports %s=%q (known: %v)", sel[1], label, op, value, label, v, known)
				}
			}
		}
	}
	for _, ll := range labelList.FindAllStringSubmatch(stringLit.ReplaceAllString(expr, `""`), -1) {
		for _, l := range strings.Split(ll[2], ",") {
			if l = strings.TrimSpace(l); l != "" && !labelsInExpr[l] {
				problemf("%s (%s): no metric in the expression has label %q", ll[1], ll[2], l)
			}
		}
	}
	return used, problems
}

func TestDeployMetricsExist(t *testing.T) {
	fams := registryFamilies(t)
	for _, src := range []struct {
		name    string
		queries []query
		// every family must be shown on the dashboard; the alerts only need what they alert on
		coverAll bool
	}{
		{"alerts.yml", alertQueries(t), false},
		{"ipsync.json", dashboardQueries(t), true},
	} {
		used := map[string]bool{}
		for _, q := range src.queries {
			u, problems := checkQuery(q, fams)
			for _, p := range problems {
				t.Error(p)
			}
			for _, name := range u {
				used[name] = true
			}
		}
		if !src.coverAll {
			continue
		}
		var missing []string
		for name := range fams {
			if !used[name] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s shows no panel for %v", src.name, missing)
		}
	}
}

// TestDeployCheckCatchesMistakes: the extraction finds what it must, so a passing TestDeployMetricsExist means
// something.
func TestDeployCheckCatchesMistakes(t *testing.T) {
	got := metricNames(`histogram_quantile(0.9, sum by (sync, le) (rate(ipsync_convergence_seconds_bucket{job="ipsync", stage="registered"}[1h]))) > 30 and on (sync) ipsync_in_sync == 0 unless absent(ipsync_build_info{job="$job"})`)
	want := []string{"ipsync_convergence_seconds_bucket", "ipsync_in_sync", "ipsync_build_info"}
	if !slices.Equal(got, want) {
		t.Fatalf("metricNames = %v, want %v", got, want)
	}
	fams := registryFamilies(t)
	for _, bad := range []string{
		`ipsync_in_synk == 0`,
		`ipsync_convergence_seconds_total`,
		`ipsync_targets{state="Healthy"}`,
		`ipsync_targets{state!~"draining|drained"}`,
		`ipsync_in_sync{syncname="orders"}`,
		`sum by (operation) (ipsync_in_sync)`,
		`ipsync_sync_runs_total{result="failed"}`,
		`label_values(ipsync_in_sync{job="$job"}, state)`,
	} {
		if _, problems := checkQuery(query{where: "test", expr: bad}, fams); len(problems) == 0 {
			t.Errorf("checkQuery accepted %q", bad)
		}
	}
}

// TestDeployPromtool runs promtool over deploy/prometheus and over every dashboard query. It needs Debian's
// prometheus package (promtool); it skips without it unless IPSYNC_REQUIRE_TOOLS=1.
func TestDeployPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("IPSYNC_REQUIRE_TOOLS") == "1" {
			t.Fatal("promtool is required (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus); IPSYNC_REQUIRE_TOOLS=1 makes this a failure")
	}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	prom := filepath.Join(deployDir, "prometheus")
	run("check", "rules", filepath.Join(prom, "alerts.yml"))
	run("test", "rules", filepath.Join(prom, "alerts_test.yml"))
	run("check", "config", "--syntax-only", filepath.Join(prom, "scrape.yml"))

	// Every dashboard query, with Grafana's variables filled in, as a recording rule: promtool parses it.
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h", "$job", "ipsync", "$sync", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range dashboardQueries(t) {
		if strings.HasPrefix(q.expr, "label_values(") {
			continue // Grafana's own function, not PromQL
		}
		rules = append(rules, rule{Record: "dashboard:query" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Expr: vars.Replace(q.expr)})
	}
	file := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	raw, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", path)
}
