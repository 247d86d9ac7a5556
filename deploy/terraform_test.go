package deploy_test

// The Terraform (and OpenTofu) modules checked without a provider: no provider binary can be downloaded where the
// tests run, so what can be checked offline is: every file parses and is formatted as `terraform fmt` would, every
// variable and output is described and every variable typed, the examples give each module exactly the variables
// it has, the role ipsync runs with grants exactly the recorded operations under the same rules as the
// CloudFormation templates (checkLeastPrivilege), and the failover rule matches the events the handler watches.

import (
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

const terraformDir = "terraform"

// tfModule is the parsed .tf files of one directory.
type tfModule struct {
	dir    string
	blocks []*hclsyntax.Block
	src    map[string][]byte // file name -> contents, for error context
}

// loadTerraform parses every .tf file under deploy/terraform, grouped by directory, and checks each is formatted.
func loadTerraform(t *testing.T) map[string]*tfModule {
	t.Helper()
	parser := hclparse.NewParser()
	mods := map[string]*tfModule{}
	err := filepath.WalkDir(terraformDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".tf" {
			return err
		}
		f, diags := parser.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Errorf("%s", diags.Error())
			return nil
		}
		if formatted := hclwrite.Format(f.Bytes); !bytes.Equal(formatted, f.Bytes) {
			t.Errorf("%s is not formatted (terraform fmt or tofu fmt)", path)
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if mods[dir] == nil {
			mods[dir] = &tfModule{dir: dir, src: map[string][]byte{}}
		}
		mods[dir].blocks = append(mods[dir].blocks, f.Body.(*hclsyntax.Body).Blocks...)
		mods[dir].src[path] = f.Bytes
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"modules/lambda", "modules/ecs", "modules/policy", "examples/lambda", "examples/ecs"} {
		if mods[terraformDir+"/"+want] == nil {
			t.Fatalf("no .tf files in deploy/%s/%s", terraformDir, want)
		}
	}
	return mods
}

// block returns the block of a type with the labels, or nil.
func (m *tfModule) block(typ string, labels ...string) *hclsyntax.Block {
	for _, b := range m.blocks {
		if b.Type == typ && slices.Equal(b.Labels, labels) {
			return b
		}
	}
	return nil
}

func (m *tfModule) mustBlock(t *testing.T, typ string, labels ...string) *hclsyntax.Block {
	t.Helper()
	b := m.block(typ, labels...)
	if b == nil {
		t.Fatalf("%s: no %s %q", m.dir, typ, labels)
	}
	return b
}

// reference renders an expression that is a plain reference (var.x, aws_iam_role.r.arn) as written, or "".
func reference(expr hcl.Expression) string {
	tr, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() {
		return ""
	}
	return traversalText(tr)
}

func traversalText(tr hcl.Traversal) string {
	parts := []string{tr.RootName()}
	for _, step := range tr[1:] {
		if a, ok := step.(hcl.TraverseAttr); ok {
			parts = append(parts, a.Name)
		}
	}
	return strings.Join(parts, ".")
}

// literal evaluates an expression that needs no variable or function, as a Go value (strings, lists of them).
func literal(t *testing.T, where string, expr hcl.Expression) any {
	t.Helper()
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s: not a literal: %s", where, diags.Error())
	}
	return ctyToGo(v)
}

func ctyToGo(v cty.Value) any {
	switch {
	case v.IsNull():
		return nil
	case v.Type() == cty.String:
		return v.AsString()
	case v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType():
		out := []any{}
		for _, e := range v.AsValueSlice() {
			out = append(out, ctyToGo(e))
		}
		return out
	}
	return v.GoString()
}

func TestTerraformVariablesAndOutputsAreDescribed(t *testing.T) {
	for _, mod := range loadTerraform(t) {
		for _, b := range mod.blocks {
			var need []string
			switch b.Type {
			case "variable":
				need = []string{"description", "type"}
			case "output":
				need = []string{"description"}
			}
			for _, a := range need {
				if _, ok := b.Body.Attributes[a]; !ok {
					t.Errorf("%s: %s %q has no %s", mod.dir, b.Type, b.Labels[0], a)
				}
			}
		}
	}
}

// TestTerraformModuleCallsMatchTheModules: an example (or a module) gives the module it calls only variables that
// module declares, and every variable without a default.
func TestTerraformModuleCallsMatchTheModules(t *testing.T) {
	mods := loadTerraform(t)
	meta := []string{"source", "version", "providers", "count", "for_each", "depends_on"}
	for dir, ex := range mods {
		for _, b := range ex.blocks {
			if b.Type != "module" {
				continue
			}
			src, _ := literal(t, dir, b.Body.Attributes["source"].Expr).(string)
			mod := mods[filepath.ToSlash(filepath.Join(dir, src))]
			if mod == nil {
				t.Errorf("%s: module %q has source %q, not a module under deploy/terraform", dir, b.Labels[0], src)
				continue
			}
			for name := range b.Body.Attributes {
				if !slices.Contains(meta, name) && mod.block("variable", name) == nil {
					t.Errorf("%s: module %q sets %s, which %s does not declare", dir, b.Labels[0], name, mod.dir)
				}
			}
			for _, v := range mod.blocks {
				if v.Type != "variable" {
					continue
				}
				if _, given := b.Body.Attributes[v.Labels[0]]; !given && v.Body.Attributes["default"] == nil {
					t.Errorf("%s: module %q does not set %s, which %s requires", dir, b.Labels[0], v.Labels[0], mod.dir)
				}
			}
		}
	}
}

// policyStatements reads a data "aws_iam_policy_document" block: statement blocks, and dynamic "statement" blocks
// marked with their for_each as the condition. A resource list written out is a []any; a reference is its text.
func policyStatements(t *testing.T, where string, doc *hclsyntax.Block) []statement {
	t.Helper()
	var out []statement
	read := func(body *hclsyntax.Body, cond string) {
		s := statement{where: where, condition: cond, effect: "Allow"} // the data source's default effect
		if a := body.Attributes["sid"]; a != nil {
			s.sid, _ = literal(t, where, a.Expr).(string)
		}
		if a := body.Attributes["effect"]; a != nil {
			s.effect, _ = literal(t, where, a.Expr).(string)
		}
		if a := body.Attributes["actions"]; a != nil {
			for _, x := range literal(t, where+" "+s.sid+" actions", a.Expr).([]any) {
				s.actions = append(s.actions, x.(string))
			}
		}
		if a := body.Attributes["resources"]; a != nil {
			if r := reference(a.Expr); r != "" {
				s.resource = r
			} else {
				s.resource = literal(t, where+" "+s.sid+" resources", a.Expr)
			}
		}
		s.iam = map[string][]string{}
		for _, b := range body.Blocks {
			if b.Type == "not_actions" || b.Type == "not_resources" || b.Type == "principals" {
				t.Errorf("%s %s: %s block in ipsync's own policy", where, s.sid, b.Type)
			}
			if b.Type == "condition" {
				test, _ := literal(t, where+" "+s.sid+" condition", b.Body.Attributes["test"].Expr).(string)
				variable, _ := literal(t, where+" "+s.sid+" condition", b.Body.Attributes["variable"].Expr).(string)
				var vs []string
				for _, v := range literal(t, where+" "+s.sid+" condition", b.Body.Attributes["values"].Expr).([]any) {
					vs = append(vs, fmt.Sprint(v))
				}
				slices.Sort(vs)
				s.iam[test+" "+variable] = vs
			}
		}
		out = append(out, s)
	}
	for _, b := range doc.Body.Blocks {
		switch {
		case b.Type == "statement":
			read(b.Body, "")
		case b.Type == "dynamic" && slices.Equal(b.Labels, []string{"statement"}):
			forEach := b.Body.Attributes["for_each"]
			var content *hclsyntax.Block
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					content = c
				}
			}
			if forEach == nil || content == nil {
				t.Fatalf("%s: dynamic statement without for_each or content", where)
			}
			read(content.Body, references(forEach.Expr))
		default:
			t.Errorf("%s: unexpected %s block in ipsync's policy document", where, b.Type)
		}
	}
	return out
}

// references lists the references an expression makes (var.x local.y), space-separated.
func references(expr hcl.Expression) string {
	var refs []string
	for _, tr := range expr.Variables() {
		refs = append(refs, traversalText(tr))
	}
	return strings.Join(refs, " ")
}

func TestTerraformIAMGrantsExactlyTheRecordedOperations(t *testing.T) {
	ops := recordedOperations(t)
	mods := loadTerraform(t)
	for _, tc := range []struct{ module, workload, roleAttr string }{
		{"lambda", "aws_lambda_function", "role"},
		{"ecs", "aws_ecs_task_definition", "task_role_arn"},
	} {
		mod := mods[terraformDir+"/modules/"+tc.module]
		// The workload runs as aws_iam_role.R, whose inline policy "ipsync" is the document checked below.
		var role string
		for _, b := range mod.blocks {
			if b.Type == "resource" && b.Labels[0] == tc.workload {
				if a := b.Body.Attributes[tc.roleAttr]; a != nil {
					role = strings.TrimSuffix(strings.TrimPrefix(reference(a.Expr), "aws_iam_role."), ".arn")
				}
			}
		}
		if role == "" || strings.Contains(role, ".") {
			t.Fatalf("%s: the %s's %s is not aws_iam_role.NAME.arn", mod.dir, tc.workload, tc.roleAttr)
		}
		var policyModule string
		for _, b := range mod.blocks {
			if b.Type != "resource" || len(b.Labels) != 2 {
				continue
			}
			r := b.Body.Attributes["role"]
			if r == nil || !slices.Contains([]string{"aws_iam_role." + role + ".id", "aws_iam_role." + role + ".name"}, reference(r.Expr)) {
				continue
			}
			switch b.Labels[0] {
			case "aws_iam_role_policy":
				p := reference(b.Body.Attributes["policy"].Expr)
				if policyModule != "" || !strings.HasPrefix(p, "module.") || !strings.HasSuffix(p, ".json") {
					t.Errorf("%s: role %s has a second inline policy or one not from modules/policy (%s)", mod.dir, role, p)
				}
				policyModule = strings.TrimSuffix(strings.TrimPrefix(p, "module."), ".json")
			case "aws_iam_role_policy_attachment":
				arn := exprTextRaw(mod, b.Body.Attributes["policy_arn"].Expr)
				if !slices.ContainsFunc(lambdaServicePolicies, func(p string) bool { return strings.Contains(arn, strings.TrimPrefix(p, "service-role/")) }) {
					t.Errorf("%s: role %s has the managed policy %s; ipsync's role gets its actions from its own policy only", mod.dir, role, arn)
				}
			default:
				t.Errorf("%s: %s %s attaches to role %s", mod.dir, b.Labels[0], b.Labels[1], role)
			}
		}
		if policyModule == "" {
			t.Fatalf("%s: role %s has no inline policy", mod.dir, role)
		}
		// The policy module's variables are this module's: what the policy says of var.X holds here.
		call := mod.mustBlock(t, "module", policyModule)
		src, _ := literal(t, mod.dir, call.Body.Attributes["source"].Expr).(string)
		if src != "../policy" {
			t.Fatalf("%s: module %s has source %q, want ../policy", mod.dir, policyModule, src)
		}
		for _, v := range []string{"target_group_arns", "assume_role_arns", "follow_rds_members", "discover_tag_key", "record_ownership"} {
			if a := call.Body.Attributes[v]; a == nil || reference(a.Expr) != "var."+v {
				t.Errorf("%s: module %s must get %s = var.%s", mod.dir, policyModule, v, v)
			}
		}
	}
	policy := mods[terraformDir+"/modules/policy"]
	out := policy.mustBlock(t, "output", "json")
	docName := strings.TrimSuffix(strings.TrimPrefix(reference(out.Body.Attributes["value"].Expr), "data.aws_iam_policy_document."), ".json")
	doc := policy.mustBlock(t, "data", "aws_iam_policy_document", docName)
	vars := map[string]string{gateDiscover: "var.discover_tag_key", gateOwnership: "var.record_ownership", gateRoleARN: "var.assume_role_arns",
		gateRDS: "var.follow_rds_members"}
	checkLeastPrivilege(t, policy.dir, policyStatements(t, policy.dir+" "+docName, doc), ops,
		"var.target_group_arns", "var.assume_role_arns", func(s statement, gate string) bool { return strings.Contains(s.condition, vars[gate]) })
}

// exprTextRaw is an expression's source text as written in the module's files.
func exprTextRaw(mod *tfModule, expr hcl.Expression) string {
	rng := expr.Range()
	return string(rng.SliceBytes(mod.src[rng.Filename]))
}

// TestTerraformFailoverRule: the Lambda module's failover rule, evaluated, matches the events the handler watches
// and the CloudFormation template's rule.
func TestTerraformFailoverRule(t *testing.T) {
	mod := loadTerraform(t)[terraformDir+"/modules/lambda"]
	var ids *hclsyntax.Attribute
	for _, b := range mod.blocks {
		if b.Type == "locals" && b.Body.Attributes["failover_event_ids"] != nil {
			ids = b.Body.Attributes["failover_event_ids"]
		}
	}
	if ids == nil {
		t.Fatalf("%s: no local failover_event_ids", mod.dir)
	}
	idsVal, diags := ids.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s: local.failover_event_ids: %s", mod.dir, diags.Error())
	}
	rule := mod.mustBlock(t, "resource", "aws_cloudwatch_event_rule", "failover")
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"local": cty.ObjectVal(map[string]cty.Value{"failover_event_ids": idsVal})},
		Functions: map[string]function.Function{"jsonencode": stdlib.JSONEncodeFunc},
	}
	v, diags := rule.Body.Attributes["event_pattern"].Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: event_pattern: %s", mod.dir, diags.Error())
	}
	got := checkFailoverPattern(t, mod.dir+" failover rule", v.AsString())
	cfn := loadTemplates(t)["lambda"]
	var cfnIDs []string
	for _, id := range cfn.ofType("AWS::Events::Rule") {
		for _, x := range l(m(m(cfn.props(id)["EventPattern"])["detail"])["EventID"]) {
			cfnIDs = append(cfnIDs, x.(string))
		}
	}
	if slices.Sort(cfnIDs); !slices.Equal(got, cfnIDs) {
		t.Errorf("%s matches EventIDs %q, %s %q", mod.dir, got, cfn.path, cfnIDs)
	}
}
