package engine

import (
	"errors"

	"github.com/ipsync/ipsync/internal/awserr"
)

// HardError is an error no retry can fix: the configuration, the target group, the IAM policy or the credentials
// must change first. The daemon keeps the mapping alive and tries again every poll.max, so a fix made in AWS is
// picked up without a restart, but /readyz reports it at once and the log line is an error saying what to change.
// Every other error is soft: DNS failures, throttling, 5xx, network errors and deadlines, TooManyTargets. Soft
// errors are retried on the normal schedule and make /readyz fail only when they outlast its window.
type HardError struct {
	Err error
	Fix string // what the user must change; "" when Err says it already
}

func (e *HardError) Error() string {
	if e.Fix == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + "; " + e.Fix
}

func (e *HardError) Unwrap() error { return e.Err }

// IsHard reports whether err is a *HardError or an AWS error that no retry fixes (see HardError).
func IsHard(err error) bool {
	var h *HardError
	return errors.As(classify(err), &h)
}

// classify returns err as a *HardError when it is one or carries an AWS error code that no retry fixes (package
// awserr knows which, and what to change), and returns it unchanged otherwise.
func classify(err error) error {
	var h *HardError
	if err == nil || errors.As(err, &h) {
		return err
	}
	if fix, hard := awserr.Hard(err); hard {
		return &HardError{Err: err, Fix: fix}
	}
	return err
}
