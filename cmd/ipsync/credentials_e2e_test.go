package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNoCredentials: with no AWS credentials anywhere (no environment keys, no profile, and an instance metadata
// service that has no role), sync fails with a hard error that says how to give ipsync credentials, and every
// line on stderr is the JSON log, the SDK's own warnings included.
func TestNoCredentials(t *testing.T) {
	imds := httptest.NewServer(http.NotFoundHandler()) // EC2 without an instance role
	defer imds.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "sync", "--endpoint", endpoint, "--dns-server", "127.0.0.1:1",
		"--target-group-arn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef")
	cmd.Env = childEnv("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=", "AWS_WEB_IDENTITY_TOKEN_FILE=",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT="+imds.URL, "AWS_EC2_METADATA_DISABLED=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	for _, want := range []string{"no AWS credentials found", "aws sso login", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "task role"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the error does not say %q:\n%s", want, &stdout)
		}
	}
	var sawHard, sawSDK bool
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("stderr line is not a JSON log line: %q", line)
			continue
		}
		sawHard = sawHard || entry["fault"] == "hard"
		sawSDK = sawSDK || entry["component"] == "aws-sdk"
	}
	if !sawHard {
		t.Errorf("no log line with fault hard:\n%s", &stderr)
	}
	if !sawSDK {
		t.Errorf("no SDK line through the JSON log (the SDK warns when it falls back to IMDSv1):\n%s", &stderr)
	}
}
