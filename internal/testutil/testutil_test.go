package testutil_test

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/testutil"
)

func TestBufferConcurrentWrites(t *testing.T) {
	var b testutil.Buffer
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(&b, "writer %d\n", i)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := len(b.Lines()); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
}

func TestBufferMax(t *testing.T) {
	b := testutil.Buffer{Max: 10}
	for range 5 {
		if n, err := b.Write([]byte("12345678")); n != 8 || err != nil {
			t.Fatalf("Write = %d, %v; want 8, nil even when dropped", n, err)
		}
	}
	if got := b.String(); got != strings.Repeat("12345678", 2) {
		t.Fatalf("kept %q, want the first writes until Max was reached", got)
	}
}

// failTB records Fatalf and ends the goroutine as testing.T does.
type failTB struct {
	testing.TB
	msg string
}

func (f *failTB) Helper() {}
func (f *failTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventually(t *testing.T) {
	calls := 0
	testutil.Eventually(t, time.Second, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("%d calls, want 3: Eventually returned before the condition held or went on after", calls)
	}

	f := &failTB{}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		testutil.Eventually(f, 50*time.Millisecond, "never", func() bool { return false })
	}()
	<-done
	if f.msg != "not within 50ms: never" {
		t.Fatalf("failure %q, want %q", f.msg, "not within 50ms: never")
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("gave up after %s, before the timeout", waited)
	}
}

func TestWait(t *testing.T) {
	if !testutil.Wait(time.Second, func() bool { return true }) {
		t.Fatal("Wait = false for a condition that holds")
	}
	start := time.Now()
	if testutil.Wait(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("Wait = true for a condition that never holds")
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("gave up after %s, before the timeout", waited)
	}
}

// A process started for a test is still running during it and is gone once the test has ended.
func TestStartProcessEndsWithTheTest(t *testing.T) {
	var done <-chan struct{}
	t.Run("test", func(t *testing.T) {
		// An hour: were the process not killed, the cleanup would wait until go test times out.
		done = testutil.StartProcess(t, exec.Command("sleep", "3600"), nil)
		select {
		case <-done:
			t.Fatal("the process exited while the test was running")
		case <-time.After(50 * time.Millisecond):
		}
	})
	select {
	case <-done:
	default:
		t.Fatal("the process still runs after its test ended")
	}
}
