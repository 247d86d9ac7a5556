// Package testutil holds the small helpers that tests across packages share: a buffer that goroutines may write
// to while the test reads it, and a wait for a condition. Only tests import it.
package testutil

import (
	"bytes"
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
