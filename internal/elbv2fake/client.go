package elbv2fake

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go/middleware"

	"github.com/ipsync/ipsync/internal/targets"
)

// Client is what targets.Factory builds, made by hand and pointed at this server: the real SDK clients with the
// standard retryer, static credentials and the given middleware. Nothing comes from the process's AWS
// environment (profiles, AWS_ENDPOINT_URL, real credentials), so the demo and benchmarks never reach AWS.
func (s *Server) Client(apiOptions ...func(*middleware.Stack) error) *targets.Client {
	cfg := aws.Config{
		Region:       s.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider("fake", "fake", ""),
		BaseEndpoint: aws.String(s.URL()),
		Retryer:      func() aws.Retryer { return retry.NewStandard() },
		APIOptions:   apiOptions,
	}
	return targets.NewClient(elbv2.NewFromConfig(cfg), ec2.NewFromConfig(cfg))
}
