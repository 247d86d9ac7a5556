package motoserver_test

import (
	"errors"
	"net/http"
	"os"
	"testing"

	"github.com/ipsync/ipsync/internal/testutil/motoserver"
)

func TestStartResetAndClose(t *testing.T) {
	s, err := motoserver.Launch()
	if errors.Is(err, motoserver.ErrNotInstalled) && os.Getenv(motoserver.RequireEnv) != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL + "/moto-api/")
	if err != nil {
		t.Fatalf("moto_server not answering at %s: %v", s.URL, err)
	}
	_ = resp.Body.Close()
	motoserver.Reset(t, s.URL)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if resp, err := http.Get(s.URL + "/moto-api/"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("moto_server still answering at %s after Close", s.URL)
	}
}

func TestSetAWSEnv(t *testing.T) {
	t.Setenv("AWS_PROFILE", "prod")
	t.Setenv("AWS_SESSION_TOKEN", "secret")
	motoserver.SetAWSEnv(t, "http://127.0.0.1:1")
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		if got := os.Getenv(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s still set (%q)", k, v)
		}
	}
}

func TestStart(t *testing.T) {
	url := motoserver.Start(t)
	motoserver.Reset(t, url)
}
