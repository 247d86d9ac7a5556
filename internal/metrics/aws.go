package metrics

import (
	"context"
	"errors"
	"net"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Codes of ipsync_aws_api_calls_total besides the AWS error codes.
const (
	CodeOK           = "OK"
	CodeTimeout      = "Timeout"
	CodeNetworkError = "NetworkError"
	CodeCanceled     = "Canceled"
)

const awsMiddlewareID = "ipsync.metrics.AWSAPICalls"

// AWSMiddleware returns a stack mutator for aws.Config.APIOptions (or a client's Options.APIOptions) that counts
// and times every attempt of every operation, retries and throttled attempts included.
//
// It sits first in the Deserialize step. The SDK's retry loop lives in the Finalize step, so each attempt passes
// through Deserialize once, and at that point the response has been turned into a smithy.APIError. Adding it
// twice to one stack (client and per-call options) is harmless: the second add is skipped.
func (m *Metrics) AWSMiddleware() func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		if m == nil {
			return nil
		}
		if _, ok := s.Deserialize.Get(awsMiddlewareID); ok {
			return nil
		}
		return s.Deserialize.Add(awsAttempt{m: m}, middleware.Before)
	}
}

type awsAttempt struct{ m *Metrics }

var _ middleware.DeserializeMiddleware = awsAttempt{}

func (awsAttempt) ID() string { return awsMiddlewareID }

func (a awsAttempt) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput,
	next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	start := time.Now()
	out, md, err := next.HandleDeserialize(ctx, in)
	op := operationName(ctx)
	a.m.awsCalls.WithLabelValues(op, awsCode(err)).Inc()
	a.m.awsDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	return out, md, err
}

// operationName is the operation's model name ("DescribeTargetHealth"), set on the context by every generated
// client before the stack runs.
func operationName(ctx context.Context) string {
	if op := middleware.GetOperationName(ctx); op != "" {
		return op
	}
	if op := awsmiddleware.GetOperationName(ctx); op != "" {
		return op
	}
	return "unknown"
}

// awsCode maps one attempt's error to the code label. Deadline and cancellation are checked first because the
// SDK wraps them in transport errors. An HTTP error whose body is not AWS XML (a proxy's 502 page) is already an
// APIError "UnknownError" from the SDK. Anything else without an AWS answer (connection refused or reset, TLS,
// an unreadable success body) is NetworkError, keeping the label's values a small closed set.
func awsCode(err error) string {
	if err == nil {
		return CodeOK
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CodeTimeout
	}
	if errors.Is(err, context.Canceled) {
		return CodeCanceled
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if code := apiErr.ErrorCode(); code != "" {
			return code
		}
		return "UnknownError" // what the SDK itself calls an error answer without a code
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return CodeTimeout
	}
	return CodeNetworkError
}
