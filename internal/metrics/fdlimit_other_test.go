//go:build !unix

package metrics_test

import "errors"

const lowerFileLimitSupported = false

func lowerFileLimit(uint64) error { return errors.New("not supported") }
