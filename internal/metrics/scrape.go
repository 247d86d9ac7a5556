package metrics

import (
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// A scrape through client_golang's handler gathers every series before it writes the first: with 3,000 mappings
// that is about 300,000 series held at once, 43 MB, on top of the process's own 30 MB, every scrape. The handler
// here writes the per-mapping families one at a time instead (the largest, convergence_seconds, is 6,000
// histograms: about 7 MB), and everything else as client_golang's handler would.

// metricsHandler serves /metrics from g and, when mappings is not nil, the per-mapping families, written family by
// family. It negotiates the format and gzip as promhttp does; a collector of g that fails leaves the rest of the
// scrape as it is (promhttp's ContinueOnError), so that one failure never blanks every alert.
func metricsHandler(g prometheus.Gatherer, mappings *mappingSeries) http.Handler {
	if mappings == nil {
		return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	}
	mappings.streamed.Store(true)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mfs, _ := g.Gather() // ContinueOnError: what was gathered is served
		enc, done := encoder(w, r)
		defer done()
		wanted := func(name string) bool { return true }
		if names := r.URL.Query()["name[]"]; len(names) > 0 {
			wanted = func(name string) bool { return slices.Contains(names, name) }
		}
		mappings.write(enc, mfs, wanted)
	})
}

// encoder is the encoder for the format the request accepts, gzipped when it accepts gzip, as promhttp
// negotiates them; done flushes it.
func encoder(w http.ResponseWriter, r *http.Request) (enc expfmt.Encoder, done func()) {
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
	h := w.Header()
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	h.Set("Content-Type", string(format))
	out, gz := io.Writer(w), (*gzip.Writer)(nil)
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		gz = gzip.NewWriter(w)
		out = gz
	}
	enc = expfmt.NewEncoder(out, format)
	return enc, func() {
		if closer, ok := enc.(expfmt.Closer); ok {
			_ = closer.Close()
		}
		if gz != nil {
			_ = gz.Close()
		}
	}
}

// write encodes the wanted families of mfs (from the registry) and of the mappings, merged in name order as
// Gather sorts them, building each mapping family only when its turn comes.
func (s *mappingSeries) write(enc expfmt.Encoder, mfs []*dto.MetricFamily, wanted func(string) bool) {
	fams := s.families
	for len(mfs) > 0 || len(fams) > 0 {
		var mf *dto.MetricFamily
		if len(fams) > 0 && (len(mfs) == 0 || fams[0].name < mfs[0].GetName()) {
			if wanted(fams[0].name) {
				mf = s.gather(fams[0])
			}
			fams = fams[1:]
		} else {
			if wanted(mfs[0].GetName()) {
				mf = mfs[0]
			}
			mfs = mfs[1:]
		}
		if mf != nil && len(mf.Metric) > 0 && enc.Encode(mf) != nil {
			return // the client went away
		}
	}
}

// gather is family f of every mapping, its series in the order Gather sorts them (by label values).
func (s *mappingSeries) gather(f *mappingFamily) *dto.MetricFamily {
	mf := &dto.MetricFamily{Name: new(f.name), Help: new(f.help), Type: new(f.typ)}
	var out []prometheus.Metric
	s.each(func(sync string, r *record) { out = s.export(out[:0], sync, r, f) }, func() {
		for _, m := range out {
			d := &dto.Metric{}
			_ = m.Write(d) // a series made by export always writes
			mf.Metric = append(mf.Metric, d)
		}
	})
	slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int {
		for i := range min(len(a.Label), len(b.Label)) {
			if c := strings.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
				return c
			}
		}
		return len(a.Label) - len(b.Label)
	})
	return mf
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip (not with q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, found := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !found {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}
