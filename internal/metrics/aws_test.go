package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipsync/ipsync/internal/awserr"
	"github.com/ipsync/ipsync/internal/metrics"
)

const (
	throttlingBody = `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>`

	describeTargetHealthBody = `<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeTargetHealthResult><TargetHealthDescriptions/></DescribeTargetHealthResult><ResponseMetadata><RequestId>2</RequestId></ResponseMetadata></DescribeTargetHealthResponse>`

	testTargetGroupARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/orders/0123456789abcdef"
)

// newELBServer is a loopback awsQuery endpoint; handle gets the 1-based attempt number.
func newELBServer(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *httptest.Server {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("Action") != "DescribeTargetHealth" {
			t.Errorf("unexpected request: %v %v", err, r.PostForm)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		handle(int(n.Add(1)), w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeXML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// newELBClient builds the client the way targets.Factory does: from an aws.Config carrying the standard
// retryer and the metrics middleware in APIOptions.
func newELBClient(url string, m *metrics.Metrics, maxAttempts int) *elbv2.Client {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(url),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
		APIOptions: []func(*middleware.Stack) error{m.AWSMiddleware()},
	}
	return elbv2.NewFromConfig(cfg)
}

func describe(ctx context.Context, c *elbv2.Client, optFns ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error) {
	return c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(testTargetGroupARN)}, optFns...)
}

func TestAWSMiddlewareCountsEveryAttempt(t *testing.T) {
	m, reg := newMetrics(t)
	srv := newELBServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			writeXML(w, http.StatusBadRequest, throttlingBody)
			return
		}
		writeXML(w, http.StatusOK, describeTargetHealthBody)
	})
	c := newELBClient(srv.URL, m, 3)
	// The middleware again in per-call options: must be skipped, not counted twice, not an error.
	if _, err := describe(context.Background(), c, func(o *elbv2.Options) {
		o.APIOptions = append(o.APIOptions, m.AWSMiddleware())
	}); err != nil {
		t.Fatalf("DescribeTargetHealth after two throttles: %v", err)
	}
	want := map[string]float64{"Throttling": 2, "OK": 1}
	for code, n := range want {
		wantValue(t, reg, "ipsync_aws_api_calls_total", l("operation", "DescribeTargetHealth", "code", code), n)
	}
	wantValue(t, reg, "ipsync_aws_api_call_duration_seconds", l("operation", "DescribeTargetHealth"), 3) // one per attempt
}

func TestAWSMiddlewareErrorCodes(t *testing.T) {
	cases := []struct {
		name   string
		handle func(n int, w http.ResponseWriter, r *http.Request)
		ctx    func(t *testing.T, started <-chan struct{}) context.Context
		code   string
	}{
		{
			name: "connection closed",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			code: awserr.CodeNetworkError,
		},
		{
			name: "deadline",
			handle: func(_ int, _ http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			ctx: func(t *testing.T, _ <-chan struct{}) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			code: awserr.CodeTimeout,
		},
		{
			name: "canceled",
			handle: func(_ int, _ http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			ctx: func(t *testing.T, started <-chan struct{}) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				go func() { <-started; cancel() }()
				return ctx
			},
			code: awserr.CodeCanceled,
		},
		{
			name: "api error other than throttling",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				writeXML(w, http.StatusBadRequest, `<ErrorResponse><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code><Message>One or more target groups not found</Message></Error><RequestId>3</RequestId></ErrorResponse>`)
			},
			code: "TargetGroupNotFound",
		},
		{
			name: "proxy error page",
			handle: func(_ int, w http.ResponseWriter, _ *http.Request) {
				writeXML(w, http.StatusBadGateway, "<html>bad gateway</html>")
			},
			code: "UnknownError", // the SDK's own code for an error answer it cannot parse
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := newMetrics(t)
			started := make(chan struct{}, 1)
			srv := newELBServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				select {
				case started <- struct{}{}:
				default:
				}
				tc.handle(n, w, r)
			})
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(t, started)
			}
			if _, err := describe(ctx, newELBClient(srv.URL, m, 1)); err == nil {
				t.Fatal("call succeeded, want an error")
			}
			wantValue(t, reg, "ipsync_aws_api_calls_total", l("operation", "DescribeTargetHealth", "code", tc.code), 1)
			if got := countSeries(t, reg, "ipsync_aws_api_calls_total"); got != 1 {
				t.Errorf("%d calls_total series, want 1", got)
			}
		})
	}
}

func countSeries(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
