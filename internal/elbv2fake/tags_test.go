package elbv2fake_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	rgt "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/schemas"
	rgttypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/ipsync/ipsync/internal/elbv2fake"
)

func tags(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func describeTags(t *testing.T, c *elbv2.Client, arns ...string) map[string]map[string]string {
	t.Helper()
	out, err := c.DescribeTags(context.Background(), &elbv2.DescribeTagsInput{ResourceArns: arns})
	if err != nil {
		t.Fatalf("DescribeTags: %v", err)
	}
	got := map[string]map[string]string{}
	for _, d := range out.TagDescriptions {
		m := map[string]string{}
		for _, tag := range d.Tags {
			m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		got[aws.ToString(d.ResourceArn)] = m
	}
	return got
}

func TestTagsThroughTheSDK(t *testing.T) {
	s, c, arn := setup(t, elbv2fake.Options{})
	ctx := context.Background()
	created, err := c.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{
		Name: aws.String("billing"), Protocol: types.ProtocolEnumTcp, Port: aws.Int32(5432),
		VpcId: aws.String("vpc-0123456789abcdef0"), TargetType: types.TargetTypeEnumIp, Tags: tags("ipsync:endpoint", "billing.example.com"),
	})
	if err != nil {
		t.Fatal(err)
	}
	billing := aws.ToString(created.TargetGroups[0].TargetGroupArn)

	if _, err := c.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{arn}, Tags: tags("ipsync:endpoint", "orders.example.com", "ipsync:port", "6432")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{arn}, Tags: tags("ipsync:port", "5433", "empty", "")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveTags(ctx, &elbv2.RemoveTagsInput{ResourceArns: []string{arn}, TagKeys: []string{"empty", "never-there"}}); err != nil {
		t.Fatal(err)
	}
	got := describeTags(t, c, arn, billing)
	want := map[string]map[string]string{
		arn:     {"ipsync:endpoint": "orders.example.com", "ipsync:port": "5433"},
		billing: {"ipsync:endpoint": "billing.example.com"},
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("DescribeTags = %v, want %v", got, want)
	}
	if !maps.Equal(s.Tags(arn), want[arn]) {
		t.Errorf("Tags = %v", s.Tags(arn))
	}

	// AWS's refusals, and the request is refused whole.
	for name, call := range map[string]func() error{
		"aws: prefix": func() error {
			_, err := c.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{arn}, Tags: tags("ok", "1", "aws:x", "1")})
			return err
		},
		"value too long": func() error {
			_, err := c.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{arn}, Tags: tags("ok", "1", "k", string(make([]byte, 257)))})
			return err
		},
		"unknown group": func() error {
			_, err := c.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{arn, arn + "0"}, Tags: tags("ok", "1")})
			return err
		},
		"too many resources": func() error {
			arns := make([]string, 21)
			for i := range arns {
				arns[i] = arn
			}
			_, err := c.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: arns})
			return err
		},
	} {
		if err := call(); errorCode(err) == "" {
			t.Errorf("%s: %v, want an AWS error", name, err)
		}
	}
	if _, ok := s.Tags(arn)["ok"]; ok {
		t.Error("a refused AddTags added a tag")
	}

	var many []string
	for i := range 49 {
		many = append(many, fmt.Sprintf("k%d", i), "v")
	}
	_, err = c.AddTags(ctx, &elbv2.AddTagsInput{ResourceArns: []string{arn}, Tags: tags(many...)})
	if errorCode(err) != "TooManyTags" {
		t.Errorf("51 tags: %v, want TooManyTags", err)
	}
}

func taggingClient(s *elbv2fake.Server, region string) *rgt.Client {
	return rgt.NewFromConfig(sdkConfig(s, 1), func(o *rgt.Options) {
		o.Region = region
		o.Protocol = awsjson.New11(schemas.ResourceGroupsTaggingAPI_20170126)
	})
}

func getResources(t *testing.T, c *rgt.Client, in *rgt.GetResourcesInput) map[string]map[string]string {
	t.Helper()
	got := map[string]map[string]string{}
	p := rgt.NewGetResourcesPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("GetResources: %v", err)
		}
		for _, m := range page.ResourceTagMappingList {
			tm := map[string]string{}
			for _, tag := range m.Tags {
				tm[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
			got[aws.ToString(m.ResourceARN)] = tm
		}
	}
	return got
}

func TestGetResources(t *testing.T) {
	s, _, arn := setup(t, elbv2fake.Options{})
	second := s.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "second", Port: 5432})
	untagged := s.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "untagged", Port: 5432})
	third := s.CreateTargetGroup(elbv2fake.TargetGroupSpec{Name: "third", Port: 5432})
	for a, v := range map[string]string{arn: "orders.example.com", second: "rds:cluster/orders/reader", third: "x.example.com"} {
		if err := s.SetTags(a, map[string]string{"ipsync:endpoint": v, "team": "db"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetTags(third, map[string]string{"team": "db"}); err != nil { // retagged: the key is gone
		t.Fatal(err)
	}
	_ = untagged
	c := taggingClient(s, "us-east-1")
	filter := &rgt.GetResourcesInput{
		TagFilters:          []rgttypes.TagFilter{{Key: aws.String("ipsync:endpoint")}},
		ResourceTypeFilters: []string{"elasticloadbalancing:targetgroup"},
		ResourcesPerPage:    aws.Int32(1), // one group a page: the paginator must follow PaginationToken
	}
	got := getResources(t, c, filter)
	want := map[string]map[string]string{
		arn:    {"ipsync:endpoint": "orders.example.com", "team": "db"},
		second: {"ipsync:endpoint": "rds:cluster/orders/reader", "team": "db"},
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("GetResources = %v, want %v", got, want)
	}
	calls := 0
	for _, call := range s.Calls() {
		if call.Action == "GetResources" {
			calls++
		}
	}
	if calls != 2 {
		t.Errorf("%d GetResources calls for 2 groups at 1 a page, want 2", calls)
	}

	byValue := getResources(t, c, &rgt.GetResourcesInput{TagFilters: []rgttypes.TagFilter{{Key: aws.String("ipsync:endpoint"), Values: []string{"orders.example.com"}}}})
	if len(byValue) != 1 || byValue[arn] == nil {
		t.Errorf("filter by value: %v", byValue)
	}
	if other := getResources(t, c, &rgt.GetResourcesInput{ResourceTypeFilters: []string{"rds:cluster"}}); len(other) != 0 {
		t.Errorf("another resource type: %v", other)
	}
	if elsewhere := getResources(t, taggingClient(s, "eu-west-1"), filter); len(elsewhere) != 0 {
		t.Errorf("another region sees %v", elsewhere)
	}

	_, err := c.GetResources(context.Background(), &rgt.GetResourcesInput{ResourcesPerPage: aws.Int32(101)})
	if errorCode(err) != "InvalidParameterException" {
		t.Errorf("ResourcesPerPage 101: %v, want InvalidParameterException", err)
	}
	s.FailNext("GetResources", 1, elbv2fake.Throttled())
	if _, err := c.GetResources(context.Background(), filter); errorCode(err) != "Throttling" {
		t.Errorf("injected fault: %v, want Throttling", err)
	}
}
