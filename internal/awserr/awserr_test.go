package awserr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
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
		{wrap("TargetGroupNotFound"), "TargetGroupNotFound", false, true, "does not exist; check target_group_arn and that the region/account"},
		{&elbv2types.TargetGroupNotFoundException{}, "TargetGroupNotFound", false, true, "target_group_arn"},
		{wrap("AccessDenied"), "AccessDenied", false, true, "access denied; grant"},
		{wrap("UnauthorizedOperation"), "UnauthorizedOperation", false, true, "ec2:DescribeVpcs"},
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
