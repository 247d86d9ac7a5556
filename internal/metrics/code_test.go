package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestAWSCode(t *testing.T) {
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
		if got := awsCode(tc.err); got != tc.want {
			t.Errorf("awsCode(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
