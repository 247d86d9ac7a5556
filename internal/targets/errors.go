package targets

import (
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// ErrorCode returns the AWS error code in err's chain (e.g. "Throttling", "TargetGroupNotFound"), or "".
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// IsTooManyTargets reports whether ELBv2 refused a registration because the group or account is full (I3's exception).
func IsTooManyTargets(err error) bool { return ErrorCode(err) == "TooManyTargets" }

// IsNotFound reports whether the target group does not exist (wrong ARN, region or account).
func IsNotFound(err error) bool { return ErrorCode(err) == "TargetGroupNotFound" }

// IsThrottle reports whether AWS throttled the call (after the SDK's retries gave up).
func IsThrottle(err error) bool {
	_, ok := retry.DefaultThrottleErrorCodes[ErrorCode(err)]
	return ok
}

// wrapTG adds the operation and target group to err, and for the common misconfiguration says what to check.
// The chain keeps the smithy.APIError so ErrorCode still works.
func wrapTG(op, arn string, err error) error {
	switch {
	case IsNotFound(err):
		return fmt.Errorf("%s target group %s: it does not exist; check target_group_arn and that the region/account "+
			"(credentials or role_arn) are the ones the target group lives in: %w", op, arn, err)
	case ErrorCode(err) == "AccessDenied" || ErrorCode(err) == "AccessDeniedException":
		return fmt.Errorf("%s target group %s: access denied; grant the credentials (or role_arn) elasticloadbalancing "+
			"permissions on this target group: %w", op, arn, err)
	}
	return fmt.Errorf("%s target group %s: %w", op, arn, err)
}
