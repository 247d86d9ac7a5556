package metrics

import (
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
)

// Readiness is what /readyz shows: whether the process is ready, and each mapping's name and short state.
type Readiness struct {
	Ready    bool
	Mappings []MappingState
}

// MappingState is one mapping's line in /readyz. State is a word or two ("ok", "starting", "error (hard)"): anyone
// who reaches --listen reads /readyz, so it names no account, ARN, address or error text.
type MappingState struct {
	Sync, State string
}

// Handler serves /metrics from g, /healthz (200 "ok" while the process serves HTTP), /readyz: 200 "ready" or
// 503 "not ready", then a line "name: state" per mapping, and at / a page linking the three (for whoever opens
// --listen in a browser). A nil ready means always ready; a nil g serves an empty registry.
func Handler(g prometheus.Gatherer, ready func() Readiness) http.Handler {
	return handler(g, nil, ready)
}

// Handler is the package's Handler for the daemon: g is the registry m was made on, and /metrics writes m's
// per-mapping series one family at a time instead of gathering them all at once (scrape.go). From then on,
// g's Gather leaves them out, so that they are not written twice.
func (m *Metrics) Handler(g prometheus.Gatherer, ready func() Readiness) http.Handler {
	if m == nil {
		return handler(g, nil, ready)
	}
	return handler(g, m.mappings, ready)
}

func handler(g prometheus.Gatherer, mappings *mappingSeries, ready func() Readiness) http.Handler {
	if g == nil {
		g = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(g, mappings))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, landingPage)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		r := Readiness{Ready: true}
		if ready != nil {
			r = ready()
		}
		status, lines := http.StatusOK, []string{"ready"}
		if !r.Ready {
			status, lines = http.StatusServiceUnavailable, []string{"not ready"}
		}
		for _, m := range r.Mappings {
			lines = append(lines, m.Sync+": "+m.State)
		}
		if !r.Ready {
			lines = append(lines, "(the errors are in the daemon's log and in `ipsync status`)")
		}
		writeText(w, status, strings.Join(lines, "\n"))
	})
	return mux
}

// landingPage links the endpoints relatively, so that it also works behind a proxy that serves it under a path.
const landingPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>ipsync</title></head>
<body><h1>ipsync</h1>
<ul>
<li><a href="metrics">/metrics</a>: Prometheus metrics (ipsync_*)</li>
<li><a href="healthz">/healthz</a>: 200 while the process is alive</li>
<li><a href="readyz">/readyz</a>: 200 once every mapping has had a recent successful pass; each mapping's state</li>
</ul>
</body></html>
`

func writeText(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Defaults of ServerOptions. Prometheus and a container health check need a connection or two each; keep-alive
// connections stay open across a 15-30 s scrape interval.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second // a scrape of thousands of mappings' series
	DefaultIdleTimeout       = 30 * time.Second
	DefaultMaxConns          = 32
)

// ServerOptions bound what the HTTP server may hold. Zero values take the defaults above.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // the whole request
	WriteTimeout      time.Duration // from the end of the request's headers to the end of the response
	IdleTimeout       time.Duration // a keep-alive connection waiting for its next request
	// MaxConns caps the connections served at once; further ones wait in the listen backlog until one closes.
	// The default is DefaultMaxConns, and never more than an eighth of the process's open-file limit.
	MaxConns int
}

// Serve serves h on ln in a goroutine until the returned server is shut down.
//
// The sync engine's DNS queries and AWS calls need file descriptors from the same process as this server. Each
// connection this server holds uses one, and anyone who can reach --listen can open connections, so the server
// caps them and closes slow and idle ones: a flood of connections delays a scrape, never a failover.
// (The Go runtime already raises the soft open-file limit to the hard one at start-up.)
func Serve(ln net.Listener, h http.Handler, opts ServerOptions) *http.Server {
	orDefault := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = defaultMaxConns(openFileLimit())
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: orDefault(opts.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(opts.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(opts.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(opts.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    16 << 10, // the endpoints take no headers that matter; the default is 1 MiB
	}
	go func() { _ = srv.Serve(netutil.LimitListener(ln, maxConns)) }()
	return srv
}

// defaultMaxConns is DefaultMaxConns, but at most an eighth of the open-file limit (0: unknown).
func defaultMaxConns(fileLimit uint64) int {
	if fileLimit > 0 && fileLimit/8 < DefaultMaxConns {
		return max(1, int(fileLimit/8))
	}
	return DefaultMaxConns
}
