package metrics

import (
	"context"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/ipsync/ipsync/internal/awserr"
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
	a.m.awsCalls.WithLabelValues(op, awserr.Label(err)).Inc()
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
