package awserr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestLabel(t *testing.T) {
	wrapped := func(err error) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Err: err}}
	}
	cases := []struct {
		err  error
		want string
	}{
		{nil, "OK"},
		{&smithy.GenericAPIError{Code: "Throttling"}, "Throttling"},
		{wrapped(&smithy.GenericAPIError{Code: "AccessDenied"}), "AccessDenied"},
		{&smithy.GenericAPIError{}, "UnknownError"},
		{&smithy.CanceledError{Err: context.DeadlineExceeded}, "Timeout"},
		{&smithy.CanceledError{Err: context.Canceled}, "Canceled"},
		{&smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "http://x", Err: timeoutErr{}}}, "Timeout"},
		{&smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}, "NetworkError"},
		{&smithy.DeserializationError{Err: fmt.Errorf("not XML")}, "NetworkError"},
	}
	for _, tc := range cases {
		if got := Label(tc.err); got != tc.want {
			t.Errorf("Label(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestCodeAndHard(t *testing.T) {
	wrap := func(code string) error {
		return fmt.Errorf("registering targets: %w", &smithy.OperationError{
			ServiceID: "Elastic Load Balancing v2", OperationName: "RegisterTargets",
			Err: &smithy.GenericAPIError{Code: code, Message: "x"},
		})
	}
	for _, tc := range []struct {
		err           error
		code          string
		tooMany, hard bool
		fix           string // a part of what Hard says to change
	}{
		{nil, "", false, false, ""},
		{errors.New("dial tcp: connection refused"), "", false, false, ""},
		{wrap("TooManyTargets"), "TooManyTargets", true, false, ""},
		{&elbv2types.TooManyTargetsException{}, "TooManyTargets", true, false, ""},
		{wrap("Throttling"), "Throttling", false, false, ""},
		{wrap("InternalFailure"), "InternalFailure", false, false, ""},
		{wrap("TargetGroupNotFound"), "TargetGroupNotFound", false, true, "check target_group_arn and that the region/account"},
		{&elbv2types.TargetGroupNotFoundException{}, "TargetGroupNotFound", false, true, "target_group_arn"},
		{wrap("AccessDenied"), "AccessDenied", false, true, "access denied; grant the credentials (or role_arn) elasticloadbalancing:RegisterTargets"},
		{wrap("UnauthorizedOperation"), "UnauthorizedOperation", false, true, "elasticloadbalancing:RegisterTargets (every permission"},
		// The denied call names its own permission: an RDS read does not need the ELBv2 ones.
		{&smithy.OperationError{ServiceID: "RDS", OperationName: "DescribeDBClusters", Err: &smithy.GenericAPIError{Code: "AccessDenied"}},
			"AccessDenied", false, true, "grant the credentials (or role_arn) rds:DescribeDBClusters"},
		// Without the call's name, every permission.
		{&smithy.GenericAPIError{Code: "AccessDenied"}, "AccessDenied", false, true, "DescribeTargetHealth, RegisterTargets and DeregisterTargets"},
		{wrap("ExpiredToken"), "ExpiredToken", false, true, "credentials have expired"},
		{wrap("RequestExpired"), "RequestExpired", false, true, "clock"},
		{wrap("SignatureDoesNotMatch"), "SignatureDoesNotMatch", false, true, "AWS_SECRET_ACCESS_KEY"},
		{wrap("InvalidTarget"), "InvalidTarget", false, true, "private address"},
		{wrap("ValidationError"), "ValidationError", false, true, "availability_zone"},
	} {
		if got := Code(tc.err); got != tc.code {
			t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.code)
		}
		if got := IsTooManyTargets(tc.err); got != tc.tooMany {
			t.Errorf("IsTooManyTargets(%v) = %v, want %v", tc.err, got, tc.tooMany)
		}
		fix, hard := Hard(tc.err)
		if hard != tc.hard || !strings.Contains(fix, tc.fix) {
			t.Errorf("Hard(%v) = %q, %v; want %v and a fix containing %q", tc.err, fix, hard, tc.hard, tc.fix)
		}
	}
}

// TestValidationHintOnlyForRegistration: a ValidationError says to check port and availability_zone only when AWS
// refused a RegisterTargets or DeregisterTargets, which carry them; a read carries neither.
func TestValidationHintOnlyForRegistration(t *testing.T) {
	for op, registration := range map[string]bool{
		"RegisterTargets": true, "DeregisterTargets": true, "DescribeTargetHealth": false, "DescribeTargetGroups": false,
	} {
		err := fmt.Errorf("reading: %w", &smithy.OperationError{ServiceID: "Elastic Load Balancing v2", OperationName: op,
			Err: &smithy.GenericAPIError{Code: "ValidationError", Message: "x"}})
		fix, hard := Hard(err)
		if !hard || strings.Contains(fix, "availability_zone") == !registration || strings.Contains(fix, "target_group_arn") == registration {
			t.Errorf("%s: Hard(%v) = %q, %v; want hard, with the port and availability_zone hint: %v", op, err, fix, hard, registration)
		}
	}
}

// TestDeniedNamesTheInnermostCall: a denied call inside another (the SDK's chain when role_arn's sts:AssumeRole is
// denied while fetching the credentials of an ELBv2 call) names the permission of the call AWS denied, the inner
// one; a denied AssumeRole also points at the role's trust policy.
func TestDeniedNamesTheInnermostCall(t *testing.T) {
	denied := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 403}},
		Err:      &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:sts::123456789012:assumed-role/ipsync/task is not authorized"},
	}}
	assumeRole := &smithy.OperationError{ServiceID: "Elastic Load Balancing v2", OperationName: "DescribeTargetGroups",
		Err: fmt.Errorf("get identity: get credentials: failed to refresh cached credentials, %w",
			&CredentialsError{Err: &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole", Err: denied}})}
	err := fmt.Errorf("reading target group: %w", assumeRole)
	fix, hard := Hard(err)
	if !hard || !strings.Contains(fix, "sts:AssumeRole") || !strings.Contains(fix, "trust policy") ||
		strings.Contains(fix, "elasticloadbalancing:") {
		t.Errorf("Hard(%v) = %q, %v; want hard, naming sts:AssumeRole and the role's trust policy, not the outer ELBv2 call", err, fix, hard)
	}
	// An RDS call denied inside another is named the same way.
	err = &smithy.OperationError{ServiceID: "Elastic Load Balancing v2", OperationName: "DescribeTargetHealth",
		Err: &smithy.OperationError{ServiceID: "RDS", OperationName: "DescribeDBInstances", Err: denied}}
	if fix, _ := Hard(err); !strings.Contains(fix, "rds:DescribeDBInstances") || strings.Contains(fix, "elasticloadbalancing:") {
		t.Errorf("Hard(%v) = %q; want rds:DescribeDBInstances, the call AWS denied", err, fix)
	}
}

// TestCredentialsHard runs the SDK's real credential chain against loopback stand-ins for its sources and checks
// that what no retry fixes is hard with a hint, and what a retry may fix stays soft.
func TestCredentialsHard(t *testing.T) {
	closedURL := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		_ = ln.Close()
		return url
	}
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	dir := t.TempDir()
	ssoConfig := filepath.Join(dir, "config")
	if err := os.WriteFile(ssoConfig, []byte("[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n"+
		"sso_role_name = ipsync\nregion = us-east-1\n[sso-session corp]\nsso_region = us-east-1\n"+
		"sso_start_url = https://corp.awsapps.com/start\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		hard bool
		msg  string // part of the error
		fix  string // part of what Hard says to change
	}{
		{"nothing configured, not on EC2", map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": closedURL()},
			true, "no AWS credentials found", "aws sso login"},
		{"on EC2, no instance role", map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": notFound.URL},
			true, "no AWS credentials found", "AWS_ACCESS_KEY_ID"},
		{"SSO profile, not logged in", map[string]string{"AWS_CONFIG_FILE": ssoConfig, "AWS_PROFILE": "dev"},
			true, "SSO token", "aws sso login --profile"},
		{"container role endpoint unreachable", map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": closedURL()},
			false, "connection refused", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
				"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EC2_METADATA_DISABLED",
				"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
				t.Setenv(name, "")
				_ = os.Unsetenv(name)
			}
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
			t.Setenv("AWS_REGION", "us-east-1")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := describeWithSDKCredentials(t, closedURL())
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("DescribeTargetGroups: %v; want an error containing %q", err, tc.msg)
			}
			fix, hard := Hard(err)
			if hard != tc.hard || !strings.Contains(fix, tc.fix) {
				t.Errorf("Hard(%v) = %q, %v; want %v and a fix containing %q", err, fix, hard, tc.hard, tc.fix)
			}
		})
	}
}

// describeWithSDKCredentials makes one call with the SDK's default credential chain wrapped by MarkCredentials.
// The endpoint is closed: the call fails before sending when there are no credentials.
func describeWithSDKCredentials(t *testing.T, endpoint string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	cfg.Credentials = MarkCredentials(cfg.Credentials)
	client := elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.BaseEndpoint = aws.String(endpoint) })
	_, err = client.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{})
	return err
}

func TestCredentialsCanceledIsSoft(t *testing.T) {
	err := fmt.Errorf("reading: %w", &CredentialsError{Err: &smithy.CanceledError{Err: context.Canceled}})
	if fix, hard := Hard(err); hard {
		t.Errorf("Hard(%v) = %q, true; a cancelled credentials lookup is soft", err, fix)
	}
}

func TestMarkCredentialsPassesThrough(t *testing.T) {
	static := credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")
	p := MarkCredentials(aws.NewCredentialsCache(static))
	c, err := p.Retrieve(context.Background())
	if err != nil || c.AccessKeyID != "AKID" {
		t.Fatalf("Retrieve = %+v, %v; want the static key", c, err)
	}
	if !aws.IsCredentialsProvider(p, credentials.StaticCredentialsProvider{}) {
		t.Error("IsCredentialsProvider does not see through the wrapper")
	}
	if MarkCredentials(nil) != nil {
		t.Error("MarkCredentials(nil) is not nil: anonymous access would become a provider")
	}
}

// TestRDSFix: the RDS errors a user can fix say what to change; the others add nothing. None of them is hard:
// an RDS membership that cannot be read stays unknown and is read again, whatever the reason.
func TestRDSFix(t *testing.T) {
	wrap := func(op string, err error) error {
		return fmt.Errorf("reading the members: %w", &smithy.OperationError{ServiceID: "RDS", OperationName: op, Err: err})
	}
	generic := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "x"} }
	for _, tc := range []struct {
		op  string
		err error
		fix string // "" = no fix
	}{
		{"DescribeDBClusters", generic("AccessDenied"), ""}, // Hard names the permission (rds:DescribeDBClusters)
		{"DescribeDBClusters", &rdstypes.DBClusterNotFoundFault{}, "check rds.cluster, and that the cluster is in the target group's region"},
		{"DescribeDBClusters", generic("DBClusterNotFoundFault"), "check rds.cluster"},
		{"DescribeDBInstances", &rdstypes.DBInstanceNotFoundFault{}, "check rds.instance, and that the instance is in the target group's region"},
		{"DescribeDBInstances", generic("DBInstanceNotFoundFault"), "check rds.instance"},
		{"DescribeDBClusters", generic("Throttling"), ""},
		{"DescribeDBClusters", generic("InternalFailure"), ""},
		{"DescribeDBInstances", context.DeadlineExceeded, ""},
		{"DescribeDBInstances", errors.New("connection refused"), ""},
	} {
		err := wrap(tc.op, tc.err)
		got := RDSFix(err)
		if (tc.fix == "") != (got == "") || !strings.Contains(got, tc.fix) {
			t.Errorf("RDSFix(%v) = %q; want %q", err, got, tc.fix)
		}
		if strings.Contains(tc.fix, "check rds.") {
			if fix, hard := Hard(err); hard {
				t.Errorf("Hard(%v) = %q, true; an RDS identifier not found now may be found later (soft)", err, fix)
			}
		}
	}
}
