package targets

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/budget"
)

// DefaultMaxAttempts is the SDK standard retryer's attempt limit (first try included) unless FactoryOptions says otherwise.
const DefaultMaxAttempts = 5

// RoleSessionName names the sessions ipsync opens with role_arn, so CloudTrail shows who made the calls.
const RoleSessionName = "ipsync"

// FactoryOptions tunes NewFactory. The zero value is the production setting.
type FactoryOptions struct {
	APIOptions  []func(*middleware.Stack) error // e.g. metrics middleware; appended to aws.Config.APIOptions
	EndpointURL string                          // optional override (demo); "" = SDK standard resolution
	MaxAttempts int                             // retryer; 0 = DefaultMaxAttempts
	CallTimeout time.Duration                   // per-call deadline; 0 = DefaultCallTimeout
	Budget      *budget.Budget                  // the AWS API budget per account and region (I11); nil: none
	Logger      logging.Logger                  // where the SDK's own log lines go; nil = the SDK's default (stderr)
}

// Factory builds Clients per (region, role ARN) from one aws.Config loaded once from the SDK's standard
// environment and shared config (AWS_ENDPOINT_URL, AWS_REGION, credentials, profiles). It is safe for
// concurrent use.
type Factory struct {
	cfg         aws.Config // with the retryer and APIOptions; Region is set per client
	endpointURL string
	callTimeout time.Duration
	budget      *budget.Budget

	mu         sync.Mutex
	configs    map[clientKey]aws.Config
	clients    map[clientKey]*Client
	rdsClients map[clientKey]*rds.Client
}

type clientKey struct{ region, roleARN string }

// NewFactory loads the AWS configuration once from the SDK's standard sources, then builds the Factory with
// NewFactoryFromConfig. The retryer is given to the loading too, so the clients built while loading (an assumed
// role from a profile, SSO) retry as the rest.
func NewFactory(ctx context.Context, opts FactoryOptions) (*Factory, error) {
	loadOpts := []func(*config.LoadOptions) error{config.WithRetryer(opts.retryer())}
	if opts.Logger != nil {
		loadOpts = append(loadOpts, config.WithLogger(opts.Logger))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration (environment, ~/.aws/config, ~/.aws/credentials): %w", err)
	}
	return NewFactoryFromConfig(cfg, opts), nil
}

// NewFactoryFromConfig builds a Factory over cfg with the SDK standard retryer (retries happen there and nowhere
// else), opts.APIOptions, PlainRequestBody, the per-call timeout and opts.Budget. The emulators use it with static credentials, so that nothing
// comes from the process's AWS environment.
func NewFactoryFromConfig(cfg aws.Config, opts FactoryOptions) *Factory {
	cfg.Retryer = opts.retryer()
	cfg.Credentials = awserr.MarkCredentials(cfg.Credentials) // so that "no credentials" is a hard error with a hint
	cfg.APIOptions = append(append(slices.Clip(cfg.APIOptions), opts.APIOptions...), PlainRequestBody)
	timeout := opts.CallTimeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	return &Factory{cfg: cfg, endpointURL: opts.EndpointURL, callTimeout: timeout, budget: opts.Budget,
		clients: map[clientKey]*Client{}, configs: map[clientKey]aws.Config{}, rdsClients: map[clientKey]*rds.Client{}}
}

func (opts FactoryOptions) retryer() func() aws.Retryer {
	attempts := opts.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts })
	}
}

// Config is the AWS configuration the clients are made from (region unset), for other AWS clients of the
// process, such as discovery's, to share its credentials, retryer and middleware.
func (f *Factory) Config() aws.Config { return f.cfg.Copy() }

// For returns the Client for the target group's region, acting as roleARN when it is not "". Clients are
// cached per (region, role), so mappings sharing them also share connections and assumed-role credentials; a
// client's calls count against the API budget of the target group's account and region (a role acts in one
// account). It makes no network call: a bad role surfaces on the first API call.
func (f *Factory) For(ctx context.Context, targetGroupARN, roleARN string) (*Client, error) {
	key, acct, err := f.keyFor(targetGroupARN, roleARN)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.clients[key]; ok {
		return c, nil
	}
	cfg := f.configFor(key)
	elb := elbv2.NewFromConfig(cfg, func(o *elbv2.Options) {
		if f.endpointURL != "" {
			o.BaseEndpoint = aws.String(f.endpointURL)
		}
		o.APIOptions = append(o.APIOptions, acct.Middleware())
	})
	c := NewClient(elb)
	c.CallTimeout, c.Budget = f.callTimeout, acct
	f.clients[key] = c
	return c, nil
}

// RDS returns the RDS client for the target group's region, acting as roleARN when it is not "": the database
// and the load balancer in front of it are in one region, and role_arn grants both. It shares For's cached
// credentials and makes no network call. Its Describe calls count against the RDS bucket of the target group's
// account and region.
func (f *Factory) RDS(ctx context.Context, targetGroupARN, roleARN string) (*rds.Client, error) {
	key, acct, err := f.keyFor(targetGroupARN, roleARN)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.rdsClients[key]; ok {
		return c, nil
	}
	c := rds.NewFromConfig(f.configFor(key), func(o *rds.Options) {
		if f.endpointURL != "" {
			o.BaseEndpoint = aws.String(f.endpointURL)
		}
		o.APIOptions = append(o.APIOptions, acct.Middleware())
	})
	f.rdsClients[key] = c
	return c, nil
}

// keyFor is the client cache key of a target group and role, and the API budget of the target group's account
// and region (a role acts in one account; nil when the factory has no budget).
func (f *Factory) keyFor(targetGroupARN, roleARN string) (clientKey, *budget.Account, error) {
	region, err := RegionFromARN(targetGroupARN)
	if err != nil {
		return clientKey{}, nil, err
	}
	if roleARN != "" {
		if err := checkRoleARN(roleARN); err != nil {
			return clientKey{}, nil, err
		}
	}
	var acct *budget.Account
	if f.budget != nil {
		if acct, err = f.budget.For(targetGroupARN); err != nil {
			return clientKey{}, nil, err
		}
	}
	return clientKey{region: region, roleARN: roleARN}, acct, nil
}

// configFor is the aws.Config of a region and role, built once: every service client of that key shares its
// credentials cache, so a role is assumed once for ELBv2 and RDS. The caller holds f.mu.
func (f *Factory) configFor(key clientKey) aws.Config {
	if cfg, ok := f.configs[key]; ok {
		return cfg
	}
	cfg := f.cfg.Copy()
	cfg.Region = key.region
	if key.roleARN != "" {
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if f.endpointURL != "" {
				o.BaseEndpoint = aws.String(f.endpointURL)
			}
		})
		cfg.Credentials = awserr.MarkCredentials(aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, key.roleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = RoleSessionName })))
	}
	f.configs[key] = cfg
	return cfg
}

const tgARNForm = "arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID"

// RegionFromARN returns the region of a target group ARN, or an error naming the ARN and what is wrong with it.
func RegionFromARN(targetGroupARN string) (string, error) {
	a, err := arn.Parse(targetGroupARN)
	if err != nil {
		return "", fmt.Errorf("target_group_arn %q is not an ARN; expected %s", targetGroupARN, tgARNForm)
	}
	if a.Service != "elasticloadbalancing" {
		return "", fmt.Errorf("target_group_arn %q is an ARN of service %q, not a target group; expected %s",
			targetGroupARN, a.Service, tgARNForm)
	}
	if !strings.HasPrefix(a.Resource, "targetgroup/") {
		kind, _, _ := strings.Cut(a.Resource, "/")
		return "", fmt.Errorf("target_group_arn %q names a %s, not a target group; expected %s",
			targetGroupARN, kind, tgARNForm)
	}
	if a.Region == "" {
		return "", fmt.Errorf("target_group_arn %q has no region; expected %s", targetGroupARN, tgARNForm)
	}
	return a.Region, nil
}

func checkRoleARN(roleARN string) error {
	a, err := arn.Parse(roleARN)
	if err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/") {
		return fmt.Errorf("role_arn %q is not an IAM role ARN; expected arn:aws:iam::ACCOUNT:role/NAME", roleARN)
	}
	return nil
}
