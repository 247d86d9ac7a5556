// Package motoserver runs moto_server (a local AWS emulator) for tests, so the real SDK can be exercised over
// HTTP on loopback. Tests are skipped when moto_server is not installed, unless IPSYNC_REQUIRE_MOTO=1 (CI).
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/testutil"
)

// Binary is the program started; it must be on PATH (pip install 'moto[server]').
const Binary = "moto_server"

// RequireEnv makes a missing moto_server a test failure instead of a skip.
const RequireEnv = "IPSYNC_REQUIRE_MOTO"

// StartTimeout is how long moto_server may take to answer after it was started.
const StartTimeout = 30 * time.Second

// ErrNotInstalled is returned by Launch when moto_server is not on PATH.
var ErrNotInstalled = errors.New(Binary + " is not on PATH; install it with: pip install 'moto[server]'")

// Server is a running moto_server process.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	exited chan struct{}
	output *testutil.Buffer // for error messages
}

// Start launches moto_server for the test, kills it when the test ends and returns its URL. When moto_server
// is not installed the test is skipped, or fails if IPSYNC_REQUIRE_MOTO=1.
func Start(t testing.TB) string {
	t.Helper()
	s, err := Launch()
	if errors.Is(err, ErrNotInstalled) && os.Getenv(RequireEnv) != "1" {
		t.Skipf("skipping: %v (set %s=1 to make this a failure)", err, RequireEnv)
	}
	if err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("stopping moto_server: %v", err)
		}
	})
	return s.URL
}

// Launch starts moto_server on a free loopback port and waits until it answers. The caller must Close it.
// Use it where there is no testing.TB for the whole lifetime (e.g. TestMain); otherwise use Start.
func Launch() (*Server, error) {
	path, err := exec.LookPath(Binary)
	if err != nil {
		return nil, ErrNotInstalled
	}
	// The free port is found before moto binds it, so another process may take it in between: try again.
	for try := 1; ; try++ {
		s, err := launch(path)
		if err == nil || try == 3 {
			return s, err
		}
	}
}

func launch(path string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		exited: make(chan struct{}),
		output: &testutil.Buffer{Max: 64 << 10}, // moto logs every request; keep the start-up part only
	}
	s.cmd = exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port)) //nolint:gosec,noctx // moto_server found on PATH, for tests; it runs until Close, not for a context
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	// Own process group: the pyenv shim and python (and any reloader child) die together.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", path, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%w; moto_server output:\n%s", err, s.output.String())
	}
	return s, nil
}

func (s *Server) waitReady() error {
	deadline := time.Now().Add(StartTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("moto_server exited before answering (port taken?)")
		default:
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL+"/moto-api/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("moto_server at %s did not answer within %v (last error: %w)", s.URL, StartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close kills the moto_server process group and waits for it to exit.
func (s *Server) Close() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	// Negative pid: the whole group started by Launch.
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing moto_server (pgid %d): %w", s.cmd.Process.Pid, err)
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("moto_server (pid %d) did not exit after SIGKILL", s.cmd.Process.Pid)
	}
}

// Reset drops every resource moto holds (POST /moto-api/reset), for tests sharing one server.
func Reset(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/moto-api/reset", nil)
	if err != nil {
		t.Fatalf("moto reset: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("moto reset at %s: %v", url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("moto reset at %s: HTTP %s", url, resp.Status)
	}
}

// SetAWSEnv points the AWS SDK's standard configuration at the emulator at url for the rest of the test:
// AWS_ENDPOINT_URL, static test credentials, region us-east-1, no instance metadata, no profile or session
// token. It uses t.Setenv, so the test (and its parents) must not be parallel.
func SetAWSEnv(t testing.TB, url string) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL", url)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "") // registers the restore
		_ = os.Unsetenv(k)
	}
	// Keep the user's real ~/.aws files out of the test.
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

func freePort() (int, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port for moto_server: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
