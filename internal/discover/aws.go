package discover

import (
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	rgt "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/schemas"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/ipsync/ipsync/internal/targets"
)

// NewAWSClients returns the production ClientsFunc: SDK clients made from cfg (retryer, endpoint, credentials and
// middleware as loaded once for the process), per region, acting as roleARN when it is not "". Clients are made
// once per region and reused. It makes no network call.
//
// The tagging client speaks AWS JSON 1.1, the protocol AWS has served GetResources with since 2017 and the one
// moto and elbv2fake speak; newer SDKs would otherwise pick CBOR, which neither emulator reads.
func NewAWSClients(cfg aws.Config, roleARN string) ClientsFunc {
	var mu sync.Mutex
	made := map[string]Clients{}
	return func(region string) (Clients, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := made[region]; ok {
			return c, nil
		}
		rc := cfg.Copy()
		rc.Region = region
		if roleARN != "" {
			rc.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(rc), roleARN,
				func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = targets.RoleSessionName }))
		}
		c := Clients{
			Tagging: rgt.NewFromConfig(rc, func(o *rgt.Options) {
				o.Protocol = awsjson.New11(schemas.ResourceGroupsTaggingAPI_20170126)
			}),
			ELBv2: elbv2.NewFromConfig(rc),
		}
		made[region] = c
		return c, nil
	}
}
