package deploy_test

// The CloudFormation templates deployed: moto's CloudFormation creates both stacks from the templates as they are,
// with realistic parameters, through the real SDK; the test then reads what was created back through the AWS APIs
// the resources belong to (IAM, Lambda, EventBridge, ECS), so a template that lints but deploys something else
// (a Fn::If on the wrong branch, a parameter that goes nowhere) fails here.

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/lambda"
	"github.com/ipsync/ipsync/internal/testutil/motoserver"
)

// Realistic parameters: two target groups, a cross-account role, an Aurora cluster endpoint.
var (
	deployTargetGroups = []string{
		"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders-db/0123456789abcdef",
		"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders-db-ro/fedcba9876543210",
	}
	deployAssumeRoles = []string{"arn:aws:iam::210987654321:role/ipsync-target-groups"}
	deployEndpoint    = "orders.cluster-c9akciq32.us-east-1.rds.amazonaws.com"
)

// stack is a created stack: its logical resource IDs to physical IDs.
type stack map[string]string

func (s stack) id(t *testing.T, logical string) string {
	t.Helper()
	id, ok := s[logical]
	if !ok {
		t.Fatalf("the stack has no resource %s (has %v)", logical, s)
	}
	return id
}

// deployStack creates a stack from a template file with the parameters and waits for CREATE_COMPLETE.
func deployStack(t *testing.T, cfg aws.Config, name, templatePath string, params map[string]string) stack {
	t.Helper()
	ctx := context.Background()
	body, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	var ps []cfntypes.Parameter
	for k, v := range params {
		ps = append(ps, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
	}
	cfn := cloudformation.NewFromConfig(cfg)
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName:    aws.String(name),
		TemplateBody: aws.String(string(body)),
		Parameters:   ps,
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam},
	}); err != nil {
		t.Fatalf("CreateStack %s from %s: %v", name, templatePath, err)
	}
	waiter := cloudformation.NewStackCreateCompleteWaiter(cfn, func(o *cloudformation.StackCreateCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := waiter.Wait(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)}, time.Minute); err != nil {
		var why []string
		if ev, err := cfn.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(name)}); err == nil {
			for _, e := range ev.StackEvents {
				if r := aws.ToString(e.ResourceStatusReason); r != "" {
					why = append(why, aws.ToString(e.LogicalResourceId)+": "+r)
				}
			}
		}
		t.Fatalf("stack %s (%s) is not CREATE_COMPLETE: %v\n%s", name, templatePath, err, strings.Join(why, "\n"))
	}
	res, err := cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	s := stack{}
	for _, r := range res.StackResources {
		s[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
	}
	return s
}

// rolePolicy returns the statements of a role's inline policy as IAM stores it (URL-encoded JSON).
func rolePolicy(t *testing.T, cfg aws.Config, role, policy string) []statement {
	t.Helper()
	out, err := iam.NewFromConfig(cfg).GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{
		RoleName: aws.String(role), PolicyName: aws.String(policy),
	})
	if err != nil {
		t.Fatalf("GetRolePolicy %s/%s: %v", role, policy, err)
	}
	text, err := url.QueryUnescape(aws.ToString(out.PolicyDocument))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(text, "{'") {
		text = pythonLiteralToJSON(text)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("role %s policy %s: %v\n%s", role, policy, err, text)
	}
	return statements(role+"/"+policy, doc)
}

// pythonLiteralToJSON rewrites a Python literal of dicts, lists and strings into JSON. moto 5.2 stores the inline
// policies of a role created by CloudFormation as Python's repr of the document ({'Version': ...}), where IAM
// stores the JSON; an AWS::NoValue statement becomes None (null), which statements() drops as CloudFormation does.
func pythonLiteralToJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' || c == '"':
			var str strings.Builder
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				str.WriteByte(s[i])
			}
			q, _ := json.Marshal(str.String())
			b.Write(q)
		case strings.HasPrefix(s[i:], "None"):
			b.WriteString("null")
			i += len("None") - 1
		case strings.HasPrefix(s[i:], "True"), strings.HasPrefix(s[i:], "False"):
			w := map[bool]string{true: "true", false: "false"}[c == 'T']
			b.WriteString(w)
			i += len(w) - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// withoutAssumeRole is the recorded operations but sts:AssumeRole, which a role gets only with AssumeRoleArns.
func withoutAssumeRole(ops []string) []string {
	return slices.DeleteFunc(slices.Clone(ops), func(op string) bool { return op == "sts:AssumeRole" })
}

// withoutFleet is the recorded operations but those a role gets only with DiscoverTagKey (tag:GetResources) and
// RecordOwnership (the ownership record's DescribeTags, AddTags, RemoveTags).
func withoutFleet(ops []string) []string {
	return slices.DeleteFunc(slices.Clone(ops), func(op string) bool {
		return op == "tag:GetResources" || op == "elasticloadbalancing:DescribeTags" || isOwnershipWrite(op)
	})
}

// withoutRDS is ops without the RDS reads, which a stack grants only with FollowRdsMembers=true.
func withoutRDS(ops []string) []string {
	return slices.DeleteFunc(slices.Clone(ops), func(op string) bool { return strings.HasPrefix(op, "rds:") })
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// putS3Object stores the function's zip in moto's S3, which the Lambda function's Code points at. moto does not
// check signatures, so two plain PUTs (bucket, object) stand in for an S3 client this module does not need.
func putS3Object(t *testing.T, endpoint, bucket, key string, body []byte) {
	t.Helper()
	for _, u := range []string{endpoint + "/" + bucket, endpoint + "/" + bucket + "/" + key} {
		var b []byte
		if strings.HasSuffix(u, key) {
			b = body
		}
		req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("PUT %s: %v", u, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %s", u, resp.Status)
		}
	}
}

// lambdaZip is a zip holding an executable `bootstrap`, as make lambda and the release build it.
func lambdaZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("\x7fELF placeholder: moto stores the code, it does not run it")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCloudFormationStacksDeployIntoMoto(t *testing.T) {
	endpoint := motoserver.Start(t)
	motoserver.SetAWSEnv(t, endpoint)
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ops := recordedOperations(t)

	t.Run("lambda", func(t *testing.T) {
		const bucket, key = "ipsync-artifacts", "ipsync/v1.0.0/ipsync-lambda-arm64.zip"
		putS3Object(t, endpoint, bucket, key, lambdaZip(t))
		cfgYAML := "syncs:\n  - endpoint: " + deployEndpoint + "\n    target_group_arn: " + deployTargetGroups[0] + "\n"
		for _, tc := range []struct {
			name, arch  string
			fleet       bool // DiscoverTagKey and RecordOwnership set
			params      map[string]string
			assumeRoles []string
			wantEnv     map[string]string
		}{{
			name: "endpoint-arm64", arch: "arm64",
			params: map[string]string{
				"Endpoint": deployEndpoint, "AssumeRoleArns": strings.Join(deployAssumeRoles, ","),
				"DnsServers": "10.0.0.2:53", "FailoverWindowSeconds": "90", "FollowRdsMembers": "true",
			},
			assumeRoles: deployAssumeRoles,
			wantEnv: map[string]string{
				config.EnvName(config.FlagEndpoint): deployEndpoint, config.EnvName(config.FlagTargetGroupARN): deployTargetGroups[0],
				"IPSYNC_DNS_SERVER": "10.0.0.2:53", "IPSYNC_FAILOVER_WINDOW": "90s",
			},
		}, {
			name: "config-x86", arch: "x86_64", fleet: true,
			params:  map[string]string{"Config": cfgYAML, "SingleConcurrency": "false", "DiscoverTagKey": "ipsync:endpoint", "RecordOwnership": "true"},
			wantEnv: map[string]string{"IPSYNC_CONFIG": cfgYAML, "IPSYNC_FAILOVER_WINDOW": "120s"},
		}} {
			t.Run(tc.name, func(t *testing.T) {
				params := map[string]string{
					"CodeS3Bucket": bucket, "CodeS3Key": key, "Architecture": tc.arch,
					"TargetGroupArns": strings.Join(deployTargetGroups, ","),
				}
				for k, v := range tc.params {
					params[k] = v
				}
				st := deployStack(t, cfg, "ipsync-"+tc.name, filepath.Join("lambda", "ipsync.yaml"), params)
				wantOps := ops
				if !tc.fleet {
					wantOps = withoutFleet(wantOps)
				}
				if params["FollowRdsMembers"] != "true" {
					wantOps = withoutRDS(wantOps)
				}
				checkLambdaStack(t, cfg, st, tc.arch, tc.assumeRoles, tc.wantEnv, wantOps)
			})
		}
	})

	t.Run("ecs", func(t *testing.T) {
		ec2c := ec2.NewFromConfig(cfg)
		vpc, err := ec2c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.20.0.0/16")})
		if err != nil {
			t.Fatal(err)
		}
		var subnets []string
		for i, az := range []string{"us-east-1a", "us-east-1b"} {
			sn, err := ec2c.CreateSubnet(ctx, &ec2.CreateSubnetInput{
				VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.20.%d.0/24", i)), AvailabilityZone: aws.String(az),
			})
			if err != nil {
				t.Fatal(err)
			}
			subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
		}
		const image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ipsync:v1.0.0"
		const ssmParameter = "/ipsync/config"
		for _, tc := range []ecsCase{{
			name: "ipsync",
			params: map[string]string{
				"Endpoint": deployEndpoint, "MetricsIngressCidr": "10.20.0.0/16", "LogLevel": "debug",
			},
			wantEnv: map[string]string{
				config.EnvName(config.FlagEndpoint): deployEndpoint, config.EnvName(config.FlagTargetGroupARN): deployTargetGroups[0],
				"IPSYNC_LOG_LEVEL": "debug",
			},
		}, {
			// The configuration in SSM, cross-account roles, and Cloud Map for Prometheus (which moto's
			// CloudFormation skips: it has no AWS::ServiceDiscovery resources; the stack must still complete).
			name: "ipsync-ssm",
			params: map[string]string{
				"ConfigParameterName": ssmParameter, "AssumeRoleArns": strings.Join(deployAssumeRoles, ","), "FollowRdsMembers": "true",
				"CloudMapNamespaceName": "ipsync.local", "ClusterName": "shared",
			},
			assumeRoles: deployAssumeRoles,
			wantEnv:     map[string]string{"IPSYNC_LOG_LEVEL": "info"},
			wantSecrets: map[string]string{"IPSYNC_CONFIG": "arn:aws:ssm:us-east-1:123456789012:parameter" + ssmParameter},
		}} {
			t.Run(tc.name, func(t *testing.T) {
				params := map[string]string{
					"Image": image, "CpuArchitecture": "ARM64", "VpcId": aws.ToString(vpc.Vpc.VpcId),
					"SubnetIds": strings.Join(subnets, ","), "TargetGroupArns": strings.Join(deployTargetGroups, ","),
				}
				for k, v := range tc.params {
					params[k] = v
				}
				if c := params["ClusterName"]; c != "" {
					if _, err := ecs.NewFromConfig(cfg).CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(c)}); err != nil {
						t.Fatal(err)
					}
				}
				st := deployStack(t, cfg, tc.name, filepath.Join("ecs", "ipsync.yaml"), params)
				checkECSStack(t, cfg, st, image, tc, ops)
				checkECSService(t, cfg, st, params["ClusterName"])
			})
		}
	})
}

type ecsCase struct {
	name                 string
	params               map[string]string
	assumeRoles          []string
	wantEnv, wantSecrets map[string]string
}

func checkLambdaStack(t *testing.T, cfg aws.Config, st stack, arch string, assumeRoles []string, wantEnv map[string]string, ops []string) {
	ctx := context.Background()
	role := st.id(t, "FunctionRole")
	wantOps := ops
	if len(assumeRoles) == 0 {
		wantOps = withoutAssumeRole(ops)
	}
	checkLeastPrivilege(t, "deployed "+role, rolePolicy(t, cfg, role, "ipsync"), wantOps, anyList(deployTargetGroups),
		anyList(assumeRoles), func(statement, string) bool { return true })

	fnName := st.id(t, "Function")
	fn, err := awslambda.NewFromConfig(cfg).GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(fnName)})
	if err != nil {
		t.Fatalf("GetFunction %s: %v", fnName, err)
	}
	c := fn.Configuration
	if string(c.Runtime) != "provided.al2023" || aws.ToString(c.Handler) != "bootstrap" || aws.ToInt32(c.Timeout) != 180 {
		t.Errorf("function %s: runtime %s, handler %s, timeout %d; want provided.al2023, bootstrap, 180",
			fnName, c.Runtime, aws.ToString(c.Handler), aws.ToInt32(c.Timeout))
	}
	if !strings.HasSuffix(aws.ToString(c.Role), ":role/"+role) {
		t.Errorf("function %s runs as %s, want the stack's role %s", fnName, aws.ToString(c.Role), role)
	}
	var env map[string]string
	if c.Environment != nil {
		env = c.Environment.Variables
	}
	if !reflect.DeepEqual(env, wantEnv) {
		t.Errorf("function %s environment:\n got %v\nwant %v", fnName, env, wantEnv)
	}
	t.Run("architecture", func(t *testing.T) {
		got := make([]string, len(c.Architectures))
		for i, a := range c.Architectures {
			got[i] = string(a)
		}
		// moto 5.2's CloudFormation does not pass Architectures on to its Lambda model, which then reports its
		// default; TestLambdaTemplate checks the template's [!Ref Architecture] instead.
		if arch != "x86_64" && slices.Equal(got, []string{"x86_64"}) {
			t.Skipf("moto created the function with its default architecture %v (its CloudFormation ignores Architectures)", got)
		}
		if !slices.Equal(got, []string{arch}) {
			t.Errorf("function %s architectures %v, want [%s]", fnName, got, arch)
		}
	})

	fnArn := aws.ToString(c.FunctionArn)
	eb := eventbridge.NewFromConfig(cfg)
	for _, logical := range []string{"ScheduleRule", "FailoverRule"} {
		name := st.id(t, logical)
		if i := strings.LastIndexByte(name, '/'); i >= 0 { // an ARN or a name, depending on the emulator
			name = name[i+1:]
		}
		rule, err := eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeRule %s: %v", name, err)
		}
		targets, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		if len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != fnArn {
			t.Errorf("rule %s targets %v, want only the function %s", name, targets.Targets, fnArn)
		}
		if rule.State != "ENABLED" {
			t.Errorf("rule %s is %s", name, rule.State)
		}
		switch logical {
		case "ScheduleRule":
			if aws.ToString(rule.ScheduleExpression) != "rate(1 minute)" {
				t.Errorf("rule %s schedule %q, want rate(1 minute)", name, aws.ToString(rule.ScheduleExpression))
			}
		case "FailoverRule":
			checkFailoverPattern(t, "deployed rule "+name, aws.ToString(rule.EventPattern))
		}
	}
}

func checkECSStack(t *testing.T, cfg aws.Config, st stack, image string, tc ecsCase, ops []string) {
	ctx := context.Background()
	role := st.id(t, "TaskRole")
	wantOps := withoutFleet(ops) // the ECS stacks here set neither DiscoverTagKey nor RecordOwnership
	if len(tc.assumeRoles) == 0 {
		wantOps = withoutAssumeRole(wantOps)
	}
	if tc.params["FollowRdsMembers"] != "true" {
		wantOps = withoutRDS(wantOps)
	}
	checkLeastPrivilege(t, "deployed "+role, rolePolicy(t, cfg, role, "ipsync"), wantOps, anyList(deployTargetGroups),
		anyList(tc.assumeRoles), func(statement, string) bool { return true })

	client := ecs.NewFromConfig(cfg)
	td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(st.id(t, "TaskDefinition"))})
	if err != nil {
		t.Fatalf("DescribeTaskDefinition: %v", err)
	}
	if len(td.TaskDefinition.ContainerDefinitions) != 1 {
		t.Fatalf("want one container, got %d", len(td.TaskDefinition.ContainerDefinitions))
	}
	c := td.TaskDefinition.ContainerDefinitions[0]
	if aws.ToString(c.Image) != image || !slices.Equal(c.Command, []string{"run"}) || !aws.ToBool(c.ReadonlyRootFilesystem) {
		t.Errorf("container: image %s, command %q, read-only root %v; want %s, [run], true",
			aws.ToString(c.Image), c.Command, aws.ToBool(c.ReadonlyRootFilesystem), image)
	}
	hc := c.HealthCheck
	if hc == nil || !slices.Equal(hc.Command, []string{"CMD", "/ipsync", "healthcheck"}) ||
		aws.ToInt32(hc.Interval) != 30 || aws.ToInt32(hc.Timeout) != 5 || aws.ToInt32(hc.Retries) != 3 || aws.ToInt32(hc.StartPeriod) != 60 {
		t.Errorf("deployed health check %+v; want [CMD /ipsync healthcheck] every 30 s, timeout 5 s, 3 retries, 60 s start period", hc)
	}
	if !slices.ContainsFunc(c.PortMappings, func(p ecstypes.PortMapping) bool { return int(aws.ToInt32(p.ContainerPort)) == listenPort(t) }) {
		t.Errorf("no port mapping for the metrics port %d: %+v", listenPort(t), c.PortMappings)
	}
	env := map[string]string{}
	for _, kv := range c.Environment {
		if kv.Name != nil { // moto 5.2 keeps an AWS::NoValue list item as an empty entry; CloudFormation drops it
			env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
		}
	}
	secrets := map[string]string{}
	for _, kv := range c.Secrets {
		secrets[aws.ToString(kv.Name)] = aws.ToString(kv.ValueFrom)
	}
	if tc.wantSecrets == nil {
		tc.wantSecrets = map[string]string{}
	}
	if !reflect.DeepEqual(env, tc.wantEnv) || !reflect.DeepEqual(secrets, tc.wantSecrets) {
		t.Errorf("container environment %v, secrets %v; want %v and %v", env, secrets, tc.wantEnv, tc.wantSecrets)
	}
}

func checkECSService(t *testing.T, cfg aws.Config, st stack, cluster string) {
	t.Helper()
	if cluster == "" {
		cluster = st.id(t, "Cluster")
	}
	out, err := ecs.NewFromConfig(cfg).DescribeServices(context.Background(), &ecs.DescribeServicesInput{
		Cluster: aws.String(cluster), Services: []string{st.id(t, "Service")},
	})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("DescribeServices: %v (%d services)", err, len(out.Services))
	}
	// moto 5.2's CloudFormation gives its ECS service the cluster, task definition and desired count only (no
	// launch type, deployment configuration or service registries): TestECSTemplate checks those in the template.
	svc := out.Services[0]
	if svc.DesiredCount != 1 || aws.ToString(svc.TaskDefinition) != st.id(t, "TaskDefinition") {
		t.Errorf("service: %d task(s) of %s; want one task of %s", svc.DesiredCount, aws.ToString(svc.TaskDefinition), st.id(t, "TaskDefinition"))
	}
}

// checkFailoverPattern holds an EventBridge pattern (JSON) to the RDS failover events the handler watches, and
// returns its EventIDs, sorted.
func checkFailoverPattern(t *testing.T, where, pattern string) []string {
	t.Helper()
	var p struct {
		Source     []string `json:"source"`
		DetailType []string `json:"detail-type"`
		Detail     struct {
			EventID []string `json:"EventID"`
		} `json:"detail"`
	}
	if err := json.Unmarshal([]byte(pattern), &p); err != nil {
		t.Fatalf("%s: pattern %q: %v", where, pattern, err)
	}
	got := slices.Sorted(slices.Values(p.Detail.EventID))
	if want := lambda.RuleEventIDs(); !slices.Equal(got, want) {
		t.Errorf("%s matches EventIDs %q; the handler serves %q (internal/lambda.RuleEventIDs)", where, got, want)
	}
	if !slices.Equal(p.Source, []string{lambda.SourceRDS}) ||
		!slices.Equal(p.DetailType, []string{lambda.DetailTypeRDSInstance, lambda.DetailTypeRDSCluster}) {
		t.Errorf("%s: source %q, detail-type %q", where, p.Source, p.DetailType)
	}
	return got
}
