package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/ipsync/ipsync/internal/metrics"
)

// pushed is one request a fake Pushgateway received.
type pushed struct {
	method, path string
	families     map[string]*dto.MetricFamily
}

func fakePushgateway(t *testing.T, status int) (*httptest.Server, func() []pushed) {
	t.Helper()
	var mu sync.Mutex
	var got []pushed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := pushed{method: r.Method, path: r.URL.Path, families: map[string]*dto.MetricFamily{}}
		dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
		for {
			mf := &dto.MetricFamily{}
			if err := dec.Decode(mf); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Errorf("decoding the pushed body: %v", err)
				}
				break
			}
			p.families[mf.GetName()] = mf
		}
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []pushed {
		mu.Lock()
		defer mu.Unlock()
		out := append([]pushed(nil), got...)
		sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
		return out
	}
}

func TestPush(t *testing.T) {
	m, reg := newMetrics(t)
	reg.MustRegister(collectors.NewGoCollector())
	m.Init("orders")
	m.Init("billing")
	m.SyncRun("orders", metrics.ResultChanged, time.Second)
	m.Registered("orders", 1)
	m.SyncRun("billing", metrics.ResultError, time.Second) // no success time: its group must not be pushed

	srv, requests := fakePushgateway(t, http.StatusOK)
	if err := metrics.Push(context.Background(), srv.URL, reg); err != nil {
		t.Fatal(err)
	}
	got := requests()
	if len(got) != 2 {
		t.Fatalf("%d pushes, want the latest-run group and the one success group: %+v", len(got), got)
	}
	latest, success := got[0], got[1]
	if latest.method != http.MethodPut || latest.path != "/metrics/job/ipsync-sync" {
		t.Errorf("latest run pushed with %s %s, want PUT /metrics/job/ipsync-sync (replace the group)", latest.method, latest.path)
	}
	for name := range latest.families {
		if !strings.HasPrefix(name, "ipsync_") {
			t.Errorf("pushed %s: only ipsync_* metrics belong in the Pushgateway", name)
		}
	}
	for _, name := range []string{"ipsync_build_info", "ipsync_sync_runs_total", "ipsync_registrations_total", "ipsync_in_sync"} {
		if latest.families[name] == nil {
			t.Errorf("%s not pushed", name)
		}
	}
	if latest.families["ipsync_last_success_timestamp_seconds"] != nil {
		t.Error("the success time must not be in the latest-run group, where a failed run would reset it to 0")
	}

	if success.method != http.MethodPut || success.path != "/metrics/job/ipsync-sync/sync/orders" {
		t.Errorf("success time pushed with %s %s, want PUT /metrics/job/ipsync-sync/sync/orders", success.method, success.path)
	}
	mf := success.families["ipsync_last_success_timestamp_seconds"]
	if mf == nil || len(mf.GetMetric()) != 1 || len(success.families) != 1 {
		t.Fatalf("success group holds %v, want one ipsync_last_success_timestamp_seconds sample", success.families)
	}
	s := mf.GetMetric()[0]
	if len(s.GetLabel()) != 0 {
		t.Errorf("labels %v: the sync label comes from the grouping key", s.GetLabel())
	}
	if v := s.GetGauge().GetValue(); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("success time %v is not now", v)
	}
}

func TestPushFailureIsAnError(t *testing.T) {
	m, reg := newMetrics(t)
	m.Init("orders")
	srv, _ := fakePushgateway(t, http.StatusInternalServerError)
	err := metrics.Push(context.Background(), srv.URL, reg)
	if err == nil || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("Push to a failing Pushgateway = %v, want an error naming it", err)
	}
	srv.Close()
	if err := metrics.Push(context.Background(), srv.URL, reg); err == nil {
		t.Fatal("Push to a closed port succeeded")
	}
}

// TestPushKeepsCredentialsOutOfErrors (issue 9 item 4): a Pushgateway URL with user info authenticates, and no
// error says the password (or the user name, which can be a token too).
func TestPushKeepsCredentialsOutOfErrors(t *testing.T) {
	m, reg := newMetrics(t)
	m.Init("orders")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "ipsync" || pass != "s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	if err := metrics.Push(context.Background(), "http://ipsync:s3cret@"+host, reg); err != nil {
		t.Fatalf("Push with the right credentials in the URL: %v", err)
	}
	err := metrics.Push(context.Background(), "http://ipsync:wr0ng-s3cret@"+host, reg)
	if err == nil || !strings.Contains(err.Error(), host) {
		t.Fatalf("Push with wrong credentials = %v, want an error naming the Pushgateway", err)
	}
	srv.Close()
	closed := metrics.Push(context.Background(), "http://ipsync:wr0ng-s3cret@"+host, reg)
	invalid := metrics.CheckPushURL("ftp://ipsync:wr0ng-s3cret@" + host)
	for what, err := range map[string]error{"refused": err, "closed port": closed, "invalid URL": invalid} {
		if err == nil {
			t.Errorf("%s: no error", what)
			continue
		}
		if strings.Contains(err.Error(), "wr0ng-s3cret") || strings.Contains(err.Error(), "ipsync:") {
			t.Errorf("%s: the error shows the credentials: %v", what, err)
		}
	}
}
