//go:build unix

package metrics_test

import "syscall"

const lowerFileLimitSupported = true

// lowerFileLimit sets this process's soft limit on open files to n.
func lowerFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = n
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
