package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"

	"github.com/ipsync/ipsync/internal/redact"
)

// PushJob is the job label of what `ipsync sync` pushes. It differs from the daemon's scrape job ("ipsync" in
// deploy/prometheus/scrape.yml) so that the daemon's rate- and up-based alerts never read a one-shot run's values.
const PushJob = "ipsync-sync"

// pushTimeout bounds each request to the Pushgateway.
const pushTimeout = 10 * time.Second

const lastSuccessName = namespace + "_last_success_timestamp_seconds"

// Push sends the ipsync_* metrics gathered from g to the Pushgateway at pushURL ("http://pushgateway:9091"), for
// `ipsync sync` run from cron or by hand. Go runtime and process metrics are not pushed: they describe a process
// that has already exited.
//
// Everything but ipsync_last_success_timestamp_seconds replaces the group {job="ipsync-sync"} (HTTP PUT), so
// that group always shows the latest run. Each mapping whose pass succeeded also replaces its own group
// {job="ipsync-sync", sync="<name>"} holding only its success time; a failed pass pushes nothing there, so the
// previous success time stays and an alert on it measures the time since the mapping's last good run.
func Push(ctx context.Context, pushURL string, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return fmt.Errorf("gathering the metrics to push: %w", err)
	}
	var latest []*dto.MetricFamily
	successes := map[string]*dto.MetricFamily{} // by mapping
	for _, mf := range mfs {
		switch {
		case !strings.HasPrefix(mf.GetName(), namespace+"_"):
		case mf.GetName() != lastSuccessName:
			latest = append(latest, mf)
		default:
			for _, m := range mf.GetMetric() {
				sync, ok := labelValue(m, "sync")
				if !ok || m.GetGauge().GetValue() <= 0 { // 0: no successful pass in this run
					continue
				}
				successes[sync] = &dto.MetricFamily{
					Name: mf.Name, Help: mf.Help, Type: mf.Type,
					// The Pushgateway adds the grouping key's sync label; the client refuses it twice.
					Metric: []*dto.Metric{{Label: withoutLabel(m.GetLabel(), "sync"), Gauge: m.GetGauge()}},
				}
			}
		}
	}
	base, user := splitUserInfo(pushURL)
	client := &http.Client{Timeout: pushTimeout}
	pusher := func() *push.Pusher {
		p := push.New(base, PushJob).Client(client)
		if user != nil {
			pass, _ := user.Password()
			p = p.BasicAuth(user.Username(), pass)
		}
		return p
	}
	if err := pusher().Gatherer(families(latest)).PushContext(ctx); err != nil {
		return fmt.Errorf("pushing metrics to the Pushgateway at %s: %w (check --pushgateway-url)", base, err)
	}
	for sync, mf := range successes {
		if err := pusher().Grouping("sync", sync).Gatherer(families{mf}).PushContext(ctx); err != nil {
			return fmt.Errorf("pushing the success time of %s to the Pushgateway at %s: %w", sync, base, err)
		}
	}
	return nil
}

// splitUserInfo takes the credentials out of a Pushgateway URL ("http://user:pass@host:9091"), to send them as
// basic auth: the push client and net/http put the URL they are given in their errors.
func splitUserInfo(pushURL string) (string, *url.Userinfo) {
	u, err := url.Parse(pushURL)
	if err != nil || u.User == nil {
		return redact.URL(pushURL), nil
	}
	user := u.User
	u.User = nil
	return u.String(), user
}

// families is a prometheus.Gatherer over already gathered metric families.
type families []*dto.MetricFamily

func (f families) Gather() ([]*dto.MetricFamily, error) { return f, nil }

func labelValue(m *dto.Metric, name string) (string, bool) {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue(), true
		}
	}
	return "", false
}

func withoutLabel(lps []*dto.LabelPair, name string) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(lps))
	for _, lp := range lps {
		if lp.GetName() != name {
			out = append(out, lp)
		}
	}
	return out
}

// CheckPushURL says what is wrong with a Pushgateway URL, so that `sync` refuses it before changing anything.
func CheckPushURL(pushURL string) error {
	u, err := url.Parse(pushURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--pushgateway-url %q: want the Pushgateway's base URL, e.g. http://pushgateway:9091 (or http://user:password@pushgateway:9091)", redact.URL(pushURL))
	}
	return nil
}
