package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/dnstest"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/testutil"
)

// serve starts the metrics server on a free loopback port and returns its address.
func serve(t *testing.T, opts metrics.ServerOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := metrics.Serve(ln, metrics.Handler(nil, nil), opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	return ln.Addr().String()
}

// healthz opens a keep-alive connection and sends GET /healthz on it, without waiting for the answer.
func healthz(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: ipsync\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// answer reads one HTTP response from c within d.
func answer(c net.Conn, r *bufio.Reader, d time.Duration) (*http.Response, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A connection beyond the cap waits until one of the held connections goes away; it is served then.
func TestServerConnectionCap(t *testing.T) {
	const maxConns = 3
	addr := serve(t, metrics.ServerOptions{MaxConns: maxConns, IdleTimeout: time.Minute})
	held := make([]net.Conn, maxConns)
	for i := range held {
		held[i] = healthz(t, addr)
		if resp, err := answer(held[i], bufio.NewReader(held[i]), 5*time.Second); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v, want 200", i, resp, err)
		}
	}
	extra := healthz(t, addr)
	r := bufio.NewReader(extra)
	// A server with no cap answers in microseconds; 300 ms without an answer shows the connection waiting.
	if resp, err := answer(extra, r, 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("connection %d, beyond the cap of %d idle ones: got %v %v, want it to wait", maxConns+1, maxConns, resp, err)
	}
	_ = held[0].Close()
	if resp, err := answer(extra, r, 5*time.Second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the waiting connection after one held connection closed: %v %v, want 200", resp, err)
	}
}

// An idle keep-alive connection is closed by the server after IdleTimeout, which frees its slot.
func TestServerClosesIdleConnections(t *testing.T) {
	addr := serve(t, metrics.ServerOptions{MaxConns: 1, IdleTimeout: 200 * time.Millisecond})
	c := healthz(t, addr)
	r := bufio.NewReader(c)
	if resp, err := answer(c, r, 5*time.Second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v, want 200", resp, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("reading an idle keep-alive connection: %v, want EOF (closed by the server after its idle timeout)", err)
	}
	// The only slot is free again.
	next := healthz(t, addr)
	if resp, err := answer(next, bufio.NewReader(next), 5*time.Second); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz after the idle connection was closed: %v %v, want 200", resp, err)
	}
}

// floodChildEnv makes the test binary the server process of TestServerFloodKeepsDNS.
const floodChildEnv = "METRICS_TEST_FLOOD_CHILD_DNS"

// floodFileLimit is the child's open-file limit; the incident this guards against had 256.
const floodFileLimit = 64

// A flood of idle keep-alive connections to /healthz must not use up the process's file descriptors: a DNS
// query of the engine's resolver, from the same process, still works. The server runs in a child process whose
// open-file limit is lowered to floodFileLimit, with the default options; the flood comes from this process.
func TestServerFloodKeepsDNS(t *testing.T) {
	if os.Getenv(floodChildEnv) != "" {
		floodChild()
		return
	}
	if !lowerFileLimitSupported {
		t.Skip("needs setrlimit(RLIMIT_NOFILE)")
	}
	dnsSrv := dnstest.Start(t)
	dnsSrv.SetA("orders.example.com", 5, "10.0.1.10")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestServerFloodKeepsDNS$", "-test.count=1")
	cmd.Env = append(os.Environ(), floodChildEnv+"="+dnsSrv.Addr())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	readLine := func() string {
		if !lines.Scan() {
			t.Fatalf("the server process ended: %v", lines.Err())
		}
		return lines.Text()
	}
	addr, ok := strings.CutPrefix(readLine(), "listening ")
	if !ok {
		t.Fatalf("the server process did not say where it listens")
	}

	const flood = 3 * floodFileLimit
	var answered atomic.Int32
	for range flood {
		c := healthz(t, addr)
		go func() {
			if _, err := answer(c, bufio.NewReader(c), time.Minute); err == nil {
				answered.Add(1)
			}
		}()
	}
	// Give the server time to accept all it will; a server with no cap runs out of descriptors here.
	testutil.Wait(10*time.Second, func() bool { return answered.Load() > 0 })
	time.Sleep(500 * time.Millisecond)

	if _, err := fmt.Fprintln(stdin, "resolve"); err != nil {
		t.Fatal(err)
	}
	if got := readLine(); got != "resolved [10.0.1.10]" {
		t.Errorf("DNS query in the server process under %d idle /healthz connections: %s", flood, got)
	}
	if n := answered.Load(); n == 0 || n > floodFileLimit/8 {
		t.Errorf("%d of %d flooding connections were answered: want at most an eighth of the file limit (%d) held, the rest waiting", n, flood, floodFileLimit/8)
	}
}

// floodChild is the server process: lower the open-file limit, serve with the default options, then resolve on
// request ("resolve" on stdin) with the engine's resolver and print the outcome.
func floodChild() {
	if err := lowerFileLimit(floodFileLimit); err != nil {
		fmt.Printf("error: %v\n", err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return
	}
	metrics.Serve(ln, metrics.Handler(nil, nil), metrics.ServerOptions{})
	fmt.Printf("listening %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		res, err := resolver.New(resolver.Config{Servers: []string{os.Getenv(floodChildEnv)}, Timeout: 2 * time.Second})
		if err == nil {
			var r resolver.Result
			if r, err = res.Resolve(context.Background(), "orders.example.com", resolver.IPv4); err == nil {
				fmt.Printf("resolved %v\n", r.Addrs)
				continue
			}
		}
		fmt.Printf("error: %v\n", err)
	}
}
