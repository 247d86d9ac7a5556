// Package awstest starts an AWS endpoint for a test — moto or elbv2fake — and creates fixtures (a VPC and an ip
// target group) in it through the real SDK and AWS_ENDPOINT_URL, so that tests set up both backends the same way.
package awstest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// VPCCIDR is the primary CIDR of every VPC NewTargetGroup creates.
const VPCCIDR = "10.0.0.0/16"

var groupSeq atomic.Int64

// Group is a created target group.
type Group struct {
	ARN, VPCID string
}

// NewTargetGroup creates a VPC (VPCCIDR) and a TCP ip target group on port in it, through the SDK's standard
// configuration (call motoserver.SetAWSEnv or set AWS_ENDPOINT_URL first).
func NewTargetGroup(t testing.TB, port int32) Group {
	t.Helper()
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("AWS config: %v", err)
	}
	vpc, err := ec2.NewFromConfig(cfg).CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(VPCCIDR)})
	if err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	out, err := elbv2.NewFromConfig(cfg).CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{
		Name:       aws.String(fmt.Sprintf("tg-%d", groupSeq.Add(1))),
		Protocol:   elbv2types.ProtocolEnumTcp,
		Port:       aws.Int32(port),
		VpcId:      vpc.Vpc.VpcId,
		TargetType: elbv2types.TargetTypeEnumIp,
	})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	return Group{ARN: aws.ToString(out.TargetGroups[0].TargetGroupArn), VPCID: aws.ToString(vpc.Vpc.VpcId)}
}
