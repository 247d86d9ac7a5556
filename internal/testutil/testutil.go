// Package testutil holds the small helpers that tests across packages share: a buffer that goroutines may write
// to while the test reads it, a wait for a condition, and a child process that ends with the test. Only tests
// import it.
package testutil

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer collects output written from other goroutines (a child process, a logger) for the test to read.
// Max > 0 keeps only the first Max bytes and drops the rest, for chatty writers that run for the whole test.
// The zero value is ready to use.
type Buffer struct {
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Max > 0 && b.buf.Len() >= b.Max {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines is the output so far split into lines, without the last newline.
func (b *Buffer) Lines() []string {
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

// Eventually waits until ok returns true and fails the test when it has not within timeout; what names the
// condition in that failure.
func Eventually(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	if !Wait(timeout, ok) {
		t.Fatalf("not within %s: %s", timeout, what)
	}
}

// Wait waits until ok returns true and reports whether it did within timeout, for a test that says what it
// last saw when it fails. It polls often at first and then less, up to every 100 ms, so that waits on a slow
// condition (a child process, an HTTP scrape) do not load the machine.
func Wait(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for pause := 10 * time.Millisecond; !ok(); pause = min(2*pause, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
	return true
}

// StartProcess starts cmd and returns a channel closed when it has exited. When the test ends the process is
// killed and waited for; then, if the test failed and onFailure is not nil, onFailure runs, e.g. to log the
// process's whole output.
func StartProcess(t testing.TB, cmd *exec.Cmd, onFailure func()) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() && onFailure != nil {
			onFailure()
		}
	})
	return done
}
