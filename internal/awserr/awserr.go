// Package awserr is ipsync's one home for what an AWS error means: its code, the label it is counted under in
// ipsync_aws_api_calls_total, whether a retry can fix it, and otherwise what the user must change.
package awserr

import (
	"context"
	"errors"
	"net"

	"github.com/aws/smithy-go"
)

// Labels of ipsync_aws_api_calls_total besides the AWS error codes.
const (
	CodeOK           = "OK"
	CodeTimeout      = "Timeout"
	CodeNetworkError = "NetworkError"
	CodeCanceled     = "Canceled"
	CodeUnknown      = "UnknownError" // what the SDK itself calls an error answer without a code
)

// Code returns the AWS error code in err's chain (e.g. "Throttling", "TargetGroupNotFound"), or "" when AWS
// did not answer with an error.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Label is the code label of one API attempt. Deadline and cancellation are checked first because the SDK wraps
// them in transport errors. An HTTP error whose body is not AWS XML (a proxy's 502 page) is already an APIError
// "UnknownError" from the SDK. Anything else without an AWS answer (connection refused or reset, TLS, an
// unreadable success body) is NetworkError, keeping the label's values a small closed set.
func Label(err error) string {
	if err == nil {
		return CodeOK
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CodeTimeout
	}
	if errors.Is(err, context.Canceled) {
		return CodeCanceled
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if code := apiErr.ErrorCode(); code != "" {
			return code
		}
		return CodeUnknown
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return CodeTimeout
	}
	return CodeNetworkError
}

// IsTooManyTargets reports whether ELBv2 refused a registration because the group or account is full: the one
// case where stale targets go before the new ones are registered.
func IsTooManyTargets(err error) bool { return Code(err) == "TooManyTargets" }

// IsInvalid reports whether AWS refused the request as invalid (ValidationError): for a registration, a target's
// port or zone, e.g. an address inside the VPC sent with AvailabilityZone all, or one outside it sent without.
func IsInvalid(err error) bool { return Code(err) == codeValidation }

// Hard reports whether err carries an AWS error code that no retry fixes, or is a credentials failure no retry
// fixes (see CredentialsError), and what the user must change. Every other AWS error (throttling, 5xx,
// TooManyTargets) is soft: the next pass may succeed.
func Hard(err error) (fix string, hard bool) {
	if fix, hard = hardCodes[Code(err)]; hard {
		switch {
		case denied[Code(err)]:
			fix = deniedFix(err)
		case Code(err) == codeValidation && !registration(err):
			fix = invalidRead
		}
		return fix, true
	}
	return credentialsFix(err)
}

// denied are the codes AWS answers when the credentials lack a permission.
var denied = map[string]bool{"AccessDenied": true, "AccessDeniedException": true, "UnauthorizedOperation": true}

// iamPrefix is the IAM action prefix of each AWS service ipsync calls, by the SDK's service ID.
var iamPrefix = map[string]string{
	"Elastic Load Balancing v2":   "elasticloadbalancing",
	"RDS":                         "rds",
	"Resource Groups Tagging API": "tag",
	"STS":                         "sts",
}

// deniedFix names the one permission the denied call needed when the SDK says which call it was (an RDS
// membership read needs rds:..., not the ELBv2 permissions), and all of them otherwise. A denied sts:AssumeRole
// (role_arn) also needs the role's trust policy to let the credentials in.
func deniedFix(err error) string {
	op := innermostOperation(err)
	if op == nil {
		return hardCodes[Code(err)]
	}
	prefix, ok := iamPrefix[op.ServiceID]
	if !ok {
		return hardCodes[Code(err)]
	}
	if prefix == "sts" && op.OperationName == "AssumeRole" {
		return "access denied to sts:AssumeRole for role_arn: grant the credentials sts:AssumeRole on the role, and check " +
			"that the role's trust policy allows these credentials to assume it"
	}
	return "access denied; grant the credentials (or role_arn) " + prefix + ":" + op.OperationName +
		" (every permission ipsync needs: deploy/iam/policy.json)"
}

// registration reports whether the call AWS refused is RegisterTargets or DeregisterTargets, or is not known:
// only a registration carries the port and availability zone that a ValidationError may be about.
func registration(err error) bool {
	op := innermostOperation(err)
	return op == nil || op.OperationName == "RegisterTargets" || op.OperationName == "DeregisterTargets"
}

// innermostOperation is the last smithy.OperationError in err's chain: the call AWS answered. The outer ones are
// calls that failed because of it, such as a DescribeTargetGroups whose credentials came from a denied
// sts:AssumeRole.
func innermostOperation(err error) *smithy.OperationError {
	var found *smithy.OperationError
	for {
		var op *smithy.OperationError
		if !errors.As(err, &op) {
			return found
		}
		found, err = op, op.Err
	}
}

// RDSFix returns what the user must change after an RDS call (e.g. DescribeDBClusters) failed with err,
// or "" when AWS's message says it all or a retry may fix it. It names the rds: key to check (Hard names the
// permission a denied call needed). It does not make the error hard: a cluster or instance RDS cannot find now may be one
// being created or restored, and the membership stays unknown (nothing is deregistered) until it is found.
func RDSFix(err error) string {
	switch Code(err) {
	case "DBClusterNotFoundFault":
		return "check rds.cluster, and that the cluster is in the target group's region"
	case "DBInstanceNotFound", "DBInstanceNotFoundFault":
		return "check rds.instance, and that the instance is in the target group's region"
	}
	return ""
}

const permissions = "the permissions ipsync needs: elasticloadbalancing:DescribeTargetGroups, DescribeTargetHealth, " +
	"RegisterTargets and DeregisterTargets (all of them: deploy/iam/policy.json)"

// hardCodes maps each AWS error code no retry fixes to what the user must change.
var hardCodes = map[string]string{
	// AWS's own message already says "not found".
	"TargetGroupNotFound": "check target_group_arn and that the region/account (credentials or role_arn) are the " +
		"ones the target group lives in",
	"AccessDenied":                "access denied; grant the credentials (or role_arn) " + permissions,
	"AccessDeniedException":       "access denied; grant the credentials (or role_arn) " + permissions,
	"UnauthorizedOperation":       "not authorized; grant the credentials (or role_arn) " + permissions,
	"ExpiredToken":                expired,
	"ExpiredTokenException":       expired,
	"RequestExpired":              "AWS saw the request as expired: this host's clock is more than 5 minutes off; synchronise it (NTP)",
	"InvalidClientTokenId":        badCredentials,
	"UnrecognizedClientException": badCredentials,
	"SignatureDoesNotMatch":       badCredentials,
	"AuthFailure":                 badCredentials,
	"InvalidTarget": "AWS refuses the endpoint's address as a target (an ip target must be a private address: the VPC's " +
		"CIDRs, RFC 1918 or 100.64.0.0/10): check the endpoint and availability_zone",
	codeValidation: "AWS rejected the request as invalid: check port and availability_zone (an address outside the " +
		"VPC needs auto or all)",
}

// codeValidation is ELBv2's answer to a request it finds invalid. For a registration it is about a target's port or
// zone (hardCodes); for a read, invalidRead.
const codeValidation = "ValidationError"

const invalidRead = "AWS rejected the request as invalid (its message says which value): check target_group_arn"

const (
	expired = "the AWS credentials have expired: renew them (temporary keys in the environment expire; an ECS task " +
		"role or role_arn renews itself)"
	badCredentials = "AWS does not accept the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
		"AWS_PROFILE or the task role"
)
