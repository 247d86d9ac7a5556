// Package deploy_test checks the deployment files against the code: the IAM actions every template and
// iam/policy.json grant are exactly the AWS operations ipsync was seen calling (recorded on the wire by the
// end-to-end test into cmd/ipsync/testdata/aws-operations.txt), the Lambda function runs the binary the way it
// is built, its RDS rule matches the failover events the handler watches, and the ECS task and the Dockerfile
// run and health-check the daemon with the commands the CLI has.
package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/lambda"
)

const operationsFile = "../cmd/ipsync/testdata/aws-operations.txt"

// ---- CloudFormation YAML with short-form tags ----

// decode turns a YAML node into plain Go values, rewriting CloudFormation's short forms into the long forms
// (the JSON template syntax): !Ref X -> {"Ref": X}, !Condition X -> {"Condition": X}, !GetAtt A.B ->
// {"Fn::GetAtt": [A, B]}, and any other !Name v -> {"Fn::Name": v}.
func decode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		return decode(n.Content[0])
	case yaml.AliasNode:
		return decode(n.Alias)
	}
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := decode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		list := []any{}
		for _, c := range n.Content {
			val, err := decode(c)
			if err != nil {
				return nil, err
			}
			list = append(list, val)
		}
		v = list
	case yaml.ScalarNode:
		if isShortForm(n.Tag) {
			v = n.Value // the argument of a short-form function is taken as written
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	if !isShortForm(n.Tag) {
		return v, nil
	}
	switch name := n.Tag[1:]; name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, _ := strings.Cut(s, ".")
			v = []any{res, attr}
		}
		return map[string]any{"Fn::GetAtt": v}, nil
	default:
		return map[string]any{"Fn::" + name: v}, nil
	}
}

func isShortForm(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

type template struct {
	path string
	doc  map[string]any
}

func loadTemplates(t *testing.T) map[string]template {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("*", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no templates in deploy/*/*.yaml (%v)", err)
	}
	out := map[string]template{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var n yaml.Node
		if err := yaml.Unmarshal(b, &n); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		v, err := decode(&n)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		doc, ok := v.(map[string]any)
		if !ok || doc["AWSTemplateFormatVersion"] != "2010-09-09" {
			continue // another tool's YAML
		}
		out[filepath.Dir(p)] = template{path: p, doc: doc}
	}
	for _, want := range []string{"ecs", "lambda"} {
		if _, ok := out[want]; !ok {
			t.Fatalf("no template in deploy/%s", want)
		}
	}
	return out
}

func m(v any) map[string]any { x, _ := v.(map[string]any); return x }
func l(v any) []any          { x, _ := v.([]any); return x }

func ref(name string) map[string]any { return map[string]any{"Ref": name} }
func getAtt(res, attr string) map[string]any {
	return map[string]any{"Fn::GetAtt": []any{res, attr}}
}

func (tp template) resources() map[string]any { return m(tp.doc["Resources"]) }

// ofType returns the logical IDs of the resources of one type, sorted.
func (tp template) ofType(typ string) []string {
	var ids []string
	for id, r := range tp.resources() {
		if m(r)["Type"] == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (tp template) props(id string) map[string]any { return m(m(tp.resources()[id])["Properties"]) }

// one returns the only resource of a type.
func (tp template) one(t *testing.T, typ string) (string, map[string]any) {
	t.Helper()
	ids := tp.ofType(typ)
	if len(ids) != 1 {
		t.Fatalf("%s: want one %s, found %q", tp.path, typ, ids)
	}
	return ids[0], tp.props(ids[0])
}

// ---- IAM ----

type statement struct {
	where     string
	sid       string
	effect    string
	actions   []string
	resource  any
	condition string // the Fn::If condition the statement depends on; "" = always present
	// iam is the IAM Condition block, as "Operator Key" -> sorted values.
	iam map[string][]string
}

// iamConditions reads a policy document's Condition block into statement.iam's form.
func iamConditions(v any) map[string][]string {
	out := map[string][]string{}
	for op, keys := range m(v) {
		for key, vals := range m(keys) {
			var vs []string
			switch x := vals.(type) {
			case []any:
				for _, e := range x {
					vs = append(vs, fmt.Sprint(e))
				}
			default:
				vs = []string{fmt.Sprint(x)}
			}
			slices.Sort(vs)
			out[op+" "+key] = vs
		}
	}
	return out
}

// The IAM conditions of a fleet deployment. Targets change only in target groups carrying the discovery tag
// (the tag key ipsync:endpoint: an IAM condition key cannot come from a template parameter); the ownership
// record is written only under its own tag keys.
const (
	taggedGroupCondition = "Null aws:ResourceTag/ipsync:endpoint"
	ownTagKeysCondition  = "ForAllValues:StringLike aws:TagKeys"
)

var ownTagKeys = []string{"ipsync:owned", "ipsync:owned:*"}

// Gates: what a statement may be granted only for.
const (
	gateDiscover  = "discovery"              // tag:GetResources, and changes to tagged groups
	gateOwnership = "prune: false ownership" // DescribeTags, AddTags, RemoveTags
	gateRoleARN   = "role_arn"               // sts:AssumeRole
	gateRDS       = "rds: mappings"          // the RDS reads of rds: sources
)

// statements flattens a policy document's Statement list; a Fn::If yields both branches (AWS::NoValue dropped),
// each marked with its condition.
func statements(where string, doc map[string]any) []statement {
	var out []statement
	var add func(v any, cond string)
	add = func(v any, cond string) {
		s := m(v)
		if ifArgs := l(s["Fn::If"]); len(ifArgs) == 3 {
			c, _ := ifArgs[0].(string)
			add(ifArgs[1], c)
			add(ifArgs[2], c)
			return
		}
		if reflect.DeepEqual(s, ref("AWS::NoValue")) || s == nil {
			return
		}
		st := statement{where: where, effect: fmt.Sprint(s["Effect"]), resource: s["Resource"], condition: cond, iam: iamConditions(s["Condition"])}
		st.sid, _ = s["Sid"].(string)
		switch a := s["Action"].(type) {
		case string:
			st.actions = []string{a}
		case []any:
			for _, x := range a {
				st.actions = append(st.actions, fmt.Sprint(x))
			}
		}
		out = append(out, st)
	}
	switch st := doc["Statement"].(type) {
	case []any:
		for _, s := range st {
			add(s, "")
		}
	default:
		add(st, "")
	}
	return out
}

// Lambda's own managed policies: CloudWatch Logs for the function's output, and network interfaces in a VPC.
// They are for the Lambda service, not for ipsync's calls, and grant nothing ipsync's code uses.
var lambdaServicePolicies = []string{"service-role/AWSLambdaBasicExecutionRole", "service-role/AWSLambdaVPCAccessExecutionRole"}

// roleStatements returns the statements of every policy of the role: inline, and AWS::IAM::Policy /
// ManagedPolicy resources attached to it. Managed policies by ARN fail the test unless they are Lambda's own.
func roleStatements(t *testing.T, tp template, role string) []statement {
	t.Helper()
	p := tp.props(role)
	if p == nil || m(tp.resources()[role])["Type"] != "AWS::IAM::Role" {
		t.Fatalf("%s: %s is not an AWS::IAM::Role", tp.path, role)
	}
	var out []statement
	for _, pol := range l(p["Policies"]) {
		out = append(out, statements(role+"/"+fmt.Sprint(m(pol)["PolicyName"]), m(m(pol)["PolicyDocument"]))...)
	}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for _, id := range tp.ofType(typ) {
			if slices.ContainsFunc(l(tp.props(id)["Roles"]), func(r any) bool { return reflect.DeepEqual(r, ref(role)) }) {
				out = append(out, statements(id, m(tp.props(id)["PolicyDocument"]))...)
			}
		}
	}
	var arns []any
	for _, a := range l(p["ManagedPolicyArns"]) {
		if ifArgs := l(m(a)["Fn::If"]); len(ifArgs) == 3 {
			arns = append(arns, ifArgs[1], ifArgs[2])
		} else {
			arns = append(arns, a)
		}
	}
	for _, a := range arns {
		s := fmt.Sprint(m(a)["Fn::Sub"])
		if s == "<nil>" {
			s = fmt.Sprint(a)
		}
		if !slices.ContainsFunc(lambdaServicePolicies, func(p string) bool { return strings.HasSuffix(s, ":policy/"+p) }) {
			t.Errorf("%s: role %s has the managed policy %s; ipsync's role gets its actions from its own policy only", tp.path, role, s)
		}
	}
	return out
}

// recordedOperations reads the operations the end-to-end test saw ipsync call.
func recordedOperations(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(operationsFile)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/ipsync -run TestLambdaRuntimeAPI -update records it)", err)
	}
	defer f.Close()
	var ops []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			ops = append(ops, line)
		}
	}
	if len(ops) == 0 {
		t.Fatalf("%s lists no operation", operationsFile)
	}
	return ops
}

func actionsOf(sts []statement) []string {
	var out []string
	for _, s := range sts {
		out = append(out, s.actions...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func isMutating(action string) bool {
	return action == "elasticloadbalancing:RegisterTargets" || action == "elasticloadbalancing:DeregisterTargets" || isOwnershipWrite(action)
}

func isOwnershipWrite(action string) bool {
	return action == "elasticloadbalancing:AddTags" || action == "elasticloadbalancing:RemoveTags"
}

// checkLeastPrivilege holds a role's statements to the rules of deploy/iam: exactly the recorded operations;
// Register/Deregister (and AddTags/RemoveTags) only on the target groups given as parameters, or, for discovery,
// on target groups carrying the discovery tag; AddTags/RemoveTags only of ipsync's ownership tags and only for
// prune: false; tag:GetResources only for discovery; RDS reads only where rds: mappings are followed;
// sts:AssumeRole alone, only under a condition on the role_arn parameter, on those roles only. gated reports
// whether a statement is granted only for the gate.
func checkLeastPrivilege(t *testing.T, where string, sts []statement, ops []string, targetGroups, roles any, gated func(s statement, gate string) bool) {
	t.Helper()
	if got := actionsOf(sts); !slices.Equal(got, ops) {
		t.Errorf("%s grants %q; ipsync calls exactly %q (%s)", where, got, ops, operationsFile)
	}
	for _, s := range sts {
		if s.effect != "Allow" {
			t.Errorf("%s %s: Effect %s", where, s.sid, s.effect)
		}
		for _, a := range s.actions {
			if isMutating(a) {
				onGiven := reflect.DeepEqual(s.resource, targetGroups)
				onTagged := strings.Contains(fmt.Sprint(s.resource), ":targetgroup/*") &&
					slices.Equal(s.iam[taggedGroupCondition], []string{"false"}) && gated(s, gateDiscover)
				if !onGiven && !onTagged {
					t.Errorf("%s %s: %s on %v (conditions %v); want only the given target groups %v, or with discovery target groups carrying the tag (%s false)",
						where, s.sid, a, s.resource, s.iam, targetGroups, taggedGroupCondition)
				}
			}
			gate := ""
			switch {
			case isOwnershipWrite(a):
				gate = gateOwnership
				if !slices.Equal(s.iam[ownTagKeysCondition], ownTagKeys) {
					t.Errorf("%s %s: %s must be limited to the tag keys %q (%s), got %v", where, s.sid, a, ownTagKeys, ownTagKeysCondition, s.iam)
				}
			case a == "elasticloadbalancing:DescribeTags":
				gate = gateOwnership
			case a == "tag:GetResources":
				gate = gateDiscover
			case a == "sts:AssumeRole":
				gate = gateRoleARN
				if len(s.actions) != 1 || !reflect.DeepEqual(s.resource, roles) {
					t.Errorf("%s %s: sts:AssumeRole must be alone in its statement, on %v only (got %q on %v)", where, s.sid, roles, s.actions, s.resource)
				}
			case strings.HasPrefix(a, "rds:"):
				gate = gateRDS
			case strings.Contains(a, "*"):
				t.Errorf("%s %s: wildcard action %s", where, s.sid, a)
			}
			if gate != "" && !gated(s, gate) {
				t.Errorf("%s %s: %s must be granted only for %s (condition %q)", where, s.sid, a, gate, s.condition)
			}
		}
	}
}

// dependsOn reports whether a template condition's definition refers to the parameter, directly or through the
// conditions it names.
func dependsOn(tp template, condition, parameter string) bool {
	if condition == "" {
		return false
	}
	b, _ := json.Marshal(m(tp.doc["Conditions"])[condition])
	if strings.Contains(string(b), `{"Ref":"`+parameter+`"}`) {
		return true
	}
	for name := range m(tp.doc["Conditions"]) {
		if strings.Contains(string(b), `{"Condition":"`+name+`"}`) && dependsOn(tp, name, parameter) {
			return true
		}
	}
	return false
}

func TestIAMGrantsExactlyTheRecordedOperations(t *testing.T) {
	ops := recordedOperations(t)
	for _, dir := range []string{"ecs", "lambda"} {
		tp := loadTemplates(t)[dir]
		var roleRef any
		switch dir {
		case "ecs":
			_, td := tp.one(t, "AWS::ECS::TaskDefinition")
			roleRef = td["TaskRoleArn"]
		case "lambda":
			_, fn := tp.one(t, "AWS::Lambda::Function")
			roleRef = fn["Role"]
		}
		ga := l(m(roleRef)["Fn::GetAtt"])
		if len(ga) != 2 || ga[1] != "Arn" {
			t.Fatalf("%s: ipsync's role is %v; want !GetAtt ROLE.Arn of a role in the template", tp.path, roleRef)
		}
		role := ga[0].(string)
		for _, p := range []string{"TargetGroupArns", "AssumeRoleArns"} {
			if m(m(tp.doc["Parameters"])[p])["Type"] != "CommaDelimitedList" {
				t.Fatalf("%s: parameter %s must be a CommaDelimitedList", tp.path, p)
			}
		}
		params := map[string]string{gateDiscover: "DiscoverTagKey", gateOwnership: "RecordOwnership", gateRoleARN: "AssumeRoleArns",
			gateRDS: "FollowRdsMembers"}
		checkLeastPrivilege(t, tp.path+" "+role, roleStatements(t, tp, role), ops, ref("TargetGroupArns"), ref("AssumeRoleArns"),
			func(s statement, gate string) bool { return dependsOn(tp, s.condition, params[gate]) })
	}
}

func TestIAMPolicyJSON(t *testing.T) {
	ops := recordedOperations(t)
	b, err := os.ReadFile(filepath.Join("iam", "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("iam/policy.json: %v", err)
	}
	sts := statements("iam/policy.json", doc)
	// Placeholders the user replaces; the statement granting sts:AssumeRole is deleted where role_arn is unused.
	var targetGroups, roles any
	for _, s := range sts {
		if slices.Contains(s.actions, "elasticloadbalancing:RegisterTargets") && !strings.HasPrefix(s.sid, "OnlyWithDiscover") {
			targetGroups = s.resource
		}
		if slices.Contains(s.actions, "sts:AssumeRole") {
			roles = s.resource
		}
	}
	for _, tg := range l(targetGroups) {
		if !strings.Contains(fmt.Sprint(tg), ":targetgroup/") {
			t.Errorf("iam/policy.json: Register/Deregister on %v, which is not a target group ARN", tg)
		}
	}
	if len(l(targetGroups)) == 0 {
		t.Errorf("iam/policy.json: Register/Deregister must name target group ARNs, got %v", targetGroups)
	}
	// The statements to delete where they are not needed say so in their Sid.
	sids := map[string]string{gateDiscover: "Discover", gateOwnership: "PruneFalse", gateRoleARN: "RoleArn", gateRDS: "Rds"}
	checkLeastPrivilege(t, "iam/policy.json", sts, ops, targetGroups, roles, func(s statement, gate string) bool {
		return strings.HasPrefix(s.sid, "OnlyWith") && strings.Contains(s.sid, sids[gate])
	})
}

// ---- Lambda ----

// target reports whether the rule invokes the function.
func targetsFunction(rule map[string]any, fn string) bool {
	return slices.ContainsFunc(l(rule["Targets"]), func(tg any) bool { return reflect.DeepEqual(m(tg)["Arn"], getAtt(fn, "Arn")) })
}

func TestLambdaTemplate(t *testing.T) {
	tp := loadTemplates(t)["lambda"]
	fnID, fn := tp.one(t, "AWS::Lambda::Function")
	if fn["Runtime"] != "provided.al2023" || !reflect.DeepEqual(fn["Architectures"], []any{ref("Architecture")}) || fn["Handler"] != "bootstrap" {
		t.Errorf("function runs %v on %v with handler %v; want provided.al2023, [!Ref Architecture], bootstrap (make lambda)",
			fn["Runtime"], fn["Architectures"], fn["Handler"])
	}
	// The zips a release and make lambda build: bootstrap for linux/arm64 and linux/amd64 (Lambda's x86_64).
	if arch := m(m(tp.doc["Parameters"])["Architecture"]); !reflect.DeepEqual(arch["AllowedValues"], []any{"arm64", "x86_64"}) || arch["Default"] != "arm64" {
		t.Errorf("parameter Architecture: want AllowedValues [arm64 x86_64], Default arm64; got %v", arch)
	}
	timeout, _ := fn["Timeout"].(int)
	maxWindow, _ := strconv.Atoi(fmt.Sprint(m(m(tp.doc["Parameters"])["FailoverWindowSeconds"])["MaxValue"]))
	if time.Duration(timeout)*time.Second < lambda.DefaultWindow+lambda.DeadlineMargin ||
		time.Duration(maxWindow)*time.Second+lambda.DeadlineMargin > time.Duration(timeout)*time.Second {
		t.Errorf("Timeout %d s: must hold the failover window (default %v, at most %d s) plus the handler's %v margin",
			timeout, lambda.DefaultWindow, maxWindow, lambda.DeadlineMargin)
	}
	if env := m(m(fn["Environment"])["Variables"]); env["IPSYNC_FAILOVER_WINDOW"] == nil {
		t.Errorf("the function does not set IPSYNC_FAILOVER_WINDOW")
	}

	var schedule, failover string
	for _, id := range tp.ofType("AWS::Events::Rule") {
		r := tp.props(id)
		if !targetsFunction(r, fnID) {
			t.Errorf("rule %s does not invoke %s", id, fnID)
		}
		switch {
		case r["ScheduleExpression"] == "rate(1 minute)":
			schedule = id
		case r["EventPattern"] != nil:
			failover = id
			p := m(r["EventPattern"])
			ids := slices.Clone(l(m(m(p["detail"]))["EventID"]))
			var got []string
			for _, x := range ids {
				got = append(got, fmt.Sprint(x))
			}
			slices.Sort(got)
			want := lambda.RuleEventIDs()
			if !slices.Equal(got, want) {
				t.Errorf("rule %s matches EventIDs %q; the handler serves %q (internal/lambda.RuleEventIDs)", id, got, want)
			}
			if !reflect.DeepEqual(p["source"], []any{lambda.SourceRDS}) ||
				!reflect.DeepEqual(p["detail-type"], []any{lambda.DetailTypeRDSInstance, lambda.DetailTypeRDSCluster}) {
				t.Errorf("rule %s: source %v, detail-type %v", id, p["source"], p["detail-type"])
			}
		}
		// EventBridge may invoke the function only for this rule.
		if !slices.ContainsFunc(tp.ofType("AWS::Lambda::Permission"), func(pid string) bool {
			pp := tp.props(pid)
			return pp["Principal"] == "events.amazonaws.com" && pp["Action"] == "lambda:InvokeFunction" &&
				reflect.DeepEqual(pp["SourceArn"], getAtt(id, "Arn"))
		}) {
			t.Errorf("rule %s has no lambda:InvokeFunction permission for events.amazonaws.com with its SourceArn", id)
		}
	}
	if schedule == "" || failover == "" {
		t.Errorf("want a rate(1 minute) schedule rule and an RDS failover rule, found %q and %q", schedule, failover)
	}

	_, alarm := tp.one(t, "AWS::CloudWatch::Alarm")
	if alarm["Namespace"] != "AWS/Lambda" || alarm["MetricName"] != "Errors" ||
		!reflect.DeepEqual(alarm["Dimensions"], []any{map[string]any{"Name": "FunctionName", "Value": ref(fnID)}}) {
		t.Errorf("alarm: want AWS/Lambda Errors of the function, got %v", alarm)
	}
	lgID, lg := tp.one(t, "AWS::Logs::LogGroup")
	if lg["RetentionInDays"] == nil || !reflect.DeepEqual(m(fn["LoggingConfig"])["LogGroup"], ref(lgID)) {
		t.Errorf("the function must log to %s, which must have a retention", lgID)
	}
	// VPC attachment and the interface endpoints are optional, and the endpoints are those of the services ipsync
	// calls, no more.
	if vpc := m(fn["VpcConfig"])["Fn::If"]; vpc == nil {
		t.Errorf("VpcConfig must be conditional (optional VPC attachment)")
	}
	services := map[string]bool{}
	for _, id := range tp.ofType("AWS::EC2::VPCEndpoint") {
		if m(tp.resources()[id])["Condition"] == nil || tp.props(id)["VpcEndpointType"] != "Interface" {
			t.Errorf("endpoint %s must be an optional interface endpoint", id)
		}
		s := fmt.Sprint(m(tp.props(id)["ServiceName"])["Fn::Sub"])
		services[s[strings.LastIndexByte(s, '.')+1:]] = true
	}
	called := map[string]bool{}
	for _, op := range recordedOperations(t) {
		svc, _, _ := strings.Cut(op, ":")
		if svc == "tag" {
			svc = "tagging" // the Resource Groups Tagging API's IAM prefix is tag, its endpoint tagging
		}
		if !services[svc] {
			t.Errorf("ipsync calls %s, but there is no interface endpoint for %s", op, svc)
		}
		called[svc] = true
	}
	for svc := range services {
		if !called[svc] {
			t.Errorf("an interface endpoint for %s, which ipsync never calls (about 7 USD a month per AZ for nothing)", svc)
		}
	}
}

// ---- ECS and the image ----

// listenPort is the daemon's default metrics port.
func listenPort(t *testing.T) int {
	_, p, err := net.SplitHostPort(config.DefaultListen)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func TestECSTemplate(t *testing.T) {
	tp := loadTemplates(t)["ecs"]
	tdID, td := tp.one(t, "AWS::ECS::TaskDefinition")
	if !reflect.DeepEqual(td["RequiresCompatibilities"], []any{"FARGATE"}) || td["NetworkMode"] != "awsvpc" {
		t.Errorf("task definition: want Fargate, awsvpc")
	}
	containers := l(td["ContainerDefinitions"])
	if len(containers) != 1 {
		t.Fatalf("want one container, got %d", len(containers))
	}
	c := m(containers[0])
	if !reflect.DeepEqual(c["Command"], []any{"run"}) {
		t.Errorf("container command %v, want [run] (the daemon)", c["Command"])
	}
	if hc := l(m(c["HealthCheck"])["Command"]); !reflect.DeepEqual(hc, []any{"CMD", "/ipsync", "healthcheck"}) {
		t.Errorf("health check %v, want [CMD /ipsync healthcheck] (no shell in the image)", hc)
	}
	if st, _ := c["StopTimeout"].(int); st < 15 || st > 120 {
		t.Errorf("StopTimeout %v: want at least 15 s for the pass in flight (README), 30 here", c["StopTimeout"])
	}
	if !slices.ContainsFunc(l(c["PortMappings"]), func(p any) bool { return m(p)["ContainerPort"] == listenPort(t) }) {
		t.Errorf("no port mapping for the metrics port %d", listenPort(t))
	}
	if lc := m(c["LogConfiguration"]); lc["LogDriver"] != "awslogs" {
		t.Errorf("log driver %v, want awslogs", lc["LogDriver"])
	}
	// The configuration comes from IPSYNC_CONFIG in SSM, or from the flags' variables.
	b, _ := json.Marshal(c)
	for _, v := range []string{"IPSYNC_CONFIG", config.EnvName(config.FlagEndpoint), config.EnvName(config.FlagTargetGroupARN)} {
		if !strings.Contains(string(b), `"`+v+`"`) {
			t.Errorf("the container does not set %s", v)
		}
	}

	_, svc := tp.one(t, "AWS::ECS::Service")
	dc := m(svc["DeploymentConfiguration"])
	if svc["DesiredCount"] != 1 || dc["MaximumPercent"] != 100 || dc["MinimumHealthyPercent"] != 0 || svc["LaunchType"] != "FARGATE" {
		t.Errorf("service: want one Fargate task and deployments that never run two (max 100 %%, min 0 %%): %v", svc)
	}
	if !reflect.DeepEqual(svc["TaskDefinition"], ref(tdID)) {
		t.Errorf("the service runs %v, not %s", svc["TaskDefinition"], tdID)
	}
	sg, _ := tp.one(t, "AWS::EC2::SecurityGroup")
	if !strings.Contains(fmt.Sprint(svc["NetworkConfiguration"]), sg) {
		t.Errorf("the service does not use security group %s", sg)
	}

	// Optional Cloud Map registration, one A record per task, for scrape.yml's dns_sd_configs.
	dsID, ds := tp.one(t, "AWS::ServiceDiscovery::Service")
	cond, _ := m(tp.resources()[dsID])["Condition"].(string)
	wantRegistries := map[string]any{"Fn::If": []any{cond, []any{map[string]any{"RegistryArn": getAtt(dsID, "Arn")}}, ref("AWS::NoValue")}}
	if cond == "" || !reflect.DeepEqual(svc["ServiceRegistries"], wantRegistries) {
		t.Errorf("service registries %v: want the optional %s (condition %q)", svc["ServiceRegistries"], dsID, cond)
	}
	if recs := l(m(ds["DnsConfig"])["DnsRecords"]); len(recs) != 1 || m(recs[0])["Type"] != "A" {
		t.Errorf("%s: want one A record per task (awsvpc), got %v", dsID, recs)
	}
	b, err := os.ReadFile(filepath.Join("prometheus", "scrape.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var scrape struct {
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			DNSSDConfigs []struct {
				Type string `yaml:"type"`
				Port int    `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &scrape); err != nil {
		t.Fatalf("prometheus/scrape.yml: %v", err)
	}
	found := false
	for _, sc := range scrape.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			found = found || (sc.JobName == "ipsync" && d.Type == "A" && d.Port == listenPort(t))
		}
	}
	if !found {
		t.Errorf("prometheus/scrape.yml: job ipsync has no dns_sd_configs of type A on port %d (the Cloud Map records)", listenPort(t))
	}
}

// dockerfile returns the Dockerfile's instructions (continuation lines joined) and the build command marked for CI.
func dockerfile(t *testing.T) (instructions []string, build string) {
	t.Helper()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "# ci:build") && i+1 < len(lines) {
			build = lines[i+1]
		}
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			instructions = append(instructions, line)
		}
	}
	return instructions, build
}

func TestDockerfile(t *testing.T) {
	ins, build := dockerfile(t)
	want := []string{
		"FROM gcr.io/distroless/static-debian12:nonroot",
		`ENTRYPOINT ["/ipsync"]`,
		`CMD ["run"]`,
		fmt.Sprintf("EXPOSE %d", listenPort(t)),
		"USER nonroot:nonroot",
	}
	for _, w := range want {
		if !slices.Contains(ins, w) {
			t.Errorf("the Dockerfile has no %q", w)
		}
	}
	var froms []string
	var hc string
	for _, in := range ins {
		if strings.HasPrefix(in, "FROM ") {
			froms = append(froms, in)
		}
		if strings.HasPrefix(in, "HEALTHCHECK ") {
			hc = in
		}
	}
	if len(froms) < 2 || froms[len(froms)-1] != want[0] {
		t.Errorf("want a multi-stage build ending on distroless static nonroot, got %q", froms)
	}
	if !strings.HasSuffix(hc, `CMD ["/ipsync", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK %q: want the exec form of ipsync healthcheck (no shell in the image)", hc)
	}
	for _, w := range []string{"RUN CGO_ENABLED=0 ", " -tags lambda.norpc,nodemo ", " -trimpath ", "-X github.com/ipsync/ipsync/internal/cli.version=${VERSION}",
		"-X github.com/ipsync/ipsync/internal/cli.commit=${COMMIT}", "./cmd/ipsync"} {
		if !strings.Contains(build, w) {
			t.Errorf("the build line after '# ci:build' (%q) has no %q", build, w)
		}
	}
}

// TestTestCommandAgrees: README, .ci/run and make test run the same test command.
func TestTestCommandAgrees(t *testing.T) {
	find := func(file, prefix string) string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); strings.HasPrefix(line, prefix) {
				return line
			}
		}
		t.Fatalf("%s has no line starting %q", file, prefix)
		return ""
	}
	readme := find("../README.md", "go test -race")
	if ci, mk := find("../.ci/run", "go test -race"), find("../Makefile", "go test -race"); ci != readme || mk != readme {
		t.Errorf("test commands differ:\nREADME.md  %s\n.ci/run    %s\nMakefile   %s", readme, ci, mk)
	}
}
