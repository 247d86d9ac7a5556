package elbv2fake

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"

	"github.com/ipsync/ipsync/internal/targets"
)

// Client is the Client the product's targets.Factory builds for this server's region (the same retryer, call
// timeout and middleware, with the given apiOptions added), pointed at this server the way a user points ipsync
// at an emulator: a base endpoint and static dummy credentials. Nothing comes from the process's AWS environment
// (profiles, AWS_ENDPOINT_URL, real credentials), so the demo and benchmarks never reach AWS.
func (s *Server) Client(apiOptions ...func(*middleware.Stack) error) *targets.Client {
	return s.ClientWith(targets.FactoryOptions{APIOptions: apiOptions})
}

// ClientWith is Client with the factory options given (the endpoint is always this server's), e.g. an API budget.
func (s *Server) ClientWith(opts targets.FactoryOptions) *targets.Client {
	cfg := aws.Config{Credentials: credentials.NewStaticCredentialsProvider("fake", "fake", "")}
	opts.EndpointURL = s.URL()
	f := targets.NewFactoryFromConfig(cfg, opts)
	// Any target group ARN in the server's region selects its client; For makes no call.
	arn := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/any/0", s.opts.Region, s.opts.AccountID)
	c, err := f.For(context.Background(), arn, "")
	if err != nil {
		panic(fmt.Sprintf("elbv2fake: a client for %s: %v", arn, err)) // the ARN is well-formed: a bug here
	}
	return c
}
