package awserr

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go"
)

// CredentialsError is a failure to get AWS credentials, before any request was sent. The SDK reports it as a
// plain error inside the operation's error ("get identity: ..."), with nothing to tell it from a network error;
// MarkCredentials makes it recognisable.
type CredentialsError struct {
	Err error
}

func (e *CredentialsError) Error() string {
	if e.noneFound() {
		// The SDK's chain ended at its last resort, the EC2 instance metadata service, which has no role for us:
		// its own multi-line retry story would only hide that nothing else was configured.
		return "no AWS credentials found (environment, AWS_PROFILE and ~/.aws, container role, EC2 instance role: " +
			rootCause(e.Err).Error() + ")"
	}
	return e.Err.Error() // the SDK's own words already say "credentials"
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// noneFound reports whether the SDK fell back to the EC2 instance metadata service and got no credentials there.
// The SDK asks it only when no environment variable, profile or container role gave credentials, so on a laptop
// or a CI runner this is "no credentials configured", and on EC2 "the instance has no role".
func (e *CredentialsError) noneFound() bool {
	var op *smithy.OperationError
	return errors.As(e.Err, &op) && op.ServiceID == imds.ServiceID
}

// MarkCredentials wraps p so that its errors are *CredentialsError, which Hard recognises. A nil p (anonymous
// access) stays nil.
func MarkCredentials(p aws.CredentialsProvider) aws.CredentialsProvider {
	if p == nil {
		return nil
	}
	return markedCredentials{p}
}

type markedCredentials struct{ aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &CredentialsError{Err: err}
	}
	return c, nil
}

// IsCredentialsProvider and ProviderSources let the SDK see through the wrapper, as it sees through its own cache.
func (m markedCredentials) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(m.CredentialsProvider, target)
}

func (m markedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := m.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

const (
	noCredentials = "give ipsync AWS credentials: an ECS task role or EC2 instance role; AWS_PROFILE=NAME (for an SSO " +
		"profile, run `aws sso login --profile NAME` first); or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	badProfile = "the AWS credentials could not be loaded: check AWS_PROFILE and ~/.aws/config; for an SSO profile " +
		"run `aws sso login --profile NAME`"
)

// retryable is the SDK's own judgement of which errors a retry may fix: throttling, 5xx, connection trouble.
var retryable = retry.IsErrorRetryables(retry.DefaultRetryables)

// credentialsFix says what to change when err is a credentials failure no retry fixes: none configured, or a
// profile or SSO session that cannot give any, an assumed role refused. Network trouble reaching STS or the
// container's credentials endpoint, throttling and cancellation are soft: the next pass may get credentials.
func credentialsFix(err error) (string, bool) {
	var ce *CredentialsError
	if !errors.As(err, &ce) || errors.Is(err, context.Canceled) {
		return "", false
	}
	if ce.noneFound() { // checked before deadlines: the metadata service's own timeouts mean "not on EC2"
		return noCredentials, true
	}
	if errors.Is(err, context.DeadlineExceeded) || retryable.IsErrorRetryable(ce.Err) == aws.TrueTernary {
		return "", false
	}
	return badProfile, true
}

// rootCause is the innermost error of err's chain.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
