package elbv2fake

import (
	"net/http"
	"slices"
)

// Faults as AWS sends them: the HTTP status, error code and message of the real service, for SetFault and
// FailNext. Each returns a new value, so callers may change fields (Delay, Applied, NotApplied).

// Throttled is ELBv2's rate limit (about 4 Register/Deregister calls a second per account, 10 Describe*):
// HTTP 400 Throttling. The SDK retries it with backoff.
func Throttled() Fault {
	return Fault{Status: http.StatusBadRequest, Code: "Throttling", Message: "Rate exceeded"}
}

// InternalFailure is HTTP 500. The SDK retries it.
func InternalFailure() Fault {
	return Fault{Status: http.StatusInternalServerError, Code: "InternalFailure",
		Message: "The request processing has failed because of an unknown error, exception or failure."}
}

// ServiceUnavailable is HTTP 503. The SDK retries it.
func ServiceUnavailable() Fault {
	return Fault{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable",
		Message: "The request has failed due to a temporary failure of the server."}
}

// ConnectionReset resets the TCP connection instead of answering. The SDK retries it.
func ConnectionReset() Fault { return Fault{CloseConn: true} }

// AccessDenied is what ELBv2 answers when the caller's IAM policy does not allow action: HTTP 403. The SDK does
// not retry it.
func AccessDenied(action string) Fault {
	return Fault{Status: http.StatusForbidden, Code: "AccessDenied",
		Message: "User: arn:aws:sts::123456789012:assumed-role/ipsync/task is not authorized to perform: elasticloadbalancing:" + action}
}

// ExpiredToken is the answer to a request signed with temporary credentials that have expired: HTTP 400.
// The SDK does not retry it.
func ExpiredToken() Fault {
	return Fault{Status: http.StatusBadRequest, Code: "ExpiredToken", Message: "The security token included in the request is expired"}
}

// RequestExpired is the answer to a request whose signature time is too far from AWS's clock (more than five
// minutes of clock skew): HTTP 400. The SDK does not retry it.
func RequestExpired() Fault {
	return Fault{Status: http.StatusBadRequest, Code: "RequestExpired",
		Message: "Request has expired. Timestamp date is outside the allowed window; check the clock"}
}

// InvalidTarget is ELBv2 refusing an address as a target, e.g. a public address: HTTP 400.
func InvalidTarget() Fault {
	return Fault{Status: http.StatusBadRequest, Code: "InvalidTarget",
		Message: "The following targets are not valid IP addresses for this target group: the IP address is not in a private range"}
}

// TooManyTargets is ELBv2 refusing a registration because the target group or the account is full: HTTP 400.
func TooManyTargets() Fault {
	return Fault{Status: http.StatusBadRequest, Code: "TooManyTargets",
		Message: "You've reached the limit on the number of targets registered to a target group"}
}

// AcceptedNotApplied is a mutating call that AWS answers with success but never carries out: a registration
// that "succeeded" and never shows up in DescribeTargetHealth.
func AcceptedNotApplied() Fault { return Fault{NotApplied: true} }

// DuplicateRows is a DescribeTargetHealth answer that lists every target twice.
func DuplicateRows() Fault { return Fault{DuplicateRows: true} }

// DeleteTargetGroup deletes the target group as the DeleteTargetGroup action does, e.g. someone deleting it while
// ipsync runs: every later call naming its ARN fails TargetGroupNotFound. It reports whether the group existed.
func (s *Server) DeleteTargetGroup(arn string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.groups)
	s.groups = slices.DeleteFunc(s.groups, func(g *group) bool { return g.arn == arn })
	return len(s.groups) < n
}
