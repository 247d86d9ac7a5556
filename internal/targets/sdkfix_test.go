package targets_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go/middleware"

	"github.com/ipsync/ipsync/internal/elbv2fake"
	"github.com/ipsync/ipsync/internal/targets"
)

// Large answers from a fast endpoint lost their connection mid-body in about every other page without
// PlainRequestBody (see its comment). With it and retries off, every page of 400 target groups arrives whole.
func TestPlainRequestBodyKeepsLargeAnswersWhole(t *testing.T) {
	fake := elbv2fake.Start(t, elbv2fake.Options{})
	for i := range 1200 {
		fake.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: fmt.Sprintf("db-%d", i), Port: 5432})
	}
	client := elbv2.New(elbv2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(fake.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("fake", "fake", ""),
		Retryer:      retry.AddWithMaxAttempts(retry.NewStandard(), 1),
		APIOptions:   []func(*middleware.Stack) error{targets.PlainRequestBody},
	})
	for round := range 10 {
		p := elbv2.NewDescribeTargetGroupsPaginator(client, &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(400)})
		for page := 0; p.HasMorePages(); page++ {
			if _, err := p.NextPage(context.Background()); err != nil {
				t.Fatalf("round %d, page %d: %v", round, page, err)
			}
		}
	}
}
