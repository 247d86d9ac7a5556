package lambda

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of the Lambda's metrics.
const Namespace = "ipsync"

// DimensionSync is the one dimension: the mapping name, as the daemon's `sync` label (never an IP or ARN).
const DimensionSync = "sync"

// Metric units used here (CloudWatch's names).
const (
	UnitCount = "Count"
	UnitNone  = "None"
)

// Metric is one value of an EMF line.
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// EMF writes CloudWatch Embedded Metric Format lines: one JSON object per line, which CloudWatch Logs turns into
// metrics when a Lambda function prints it. A Lambda has no /metrics to scrape, so this is how its passes are
// measured. Safe for concurrent use: each line is one Write.
type EMF struct {
	w   io.Writer
	now func() time.Time
	mu  sync.Mutex
}

// NewEMF writes to w (os.Stdout in Lambda); now nil means time.Now.
func NewEMF(w io.Writer, now func() time.Time) *EMF {
	if now == nil {
		now = time.Now
	}
	return &EMF{w: w, now: now}
}

type emfMetricDef struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string         `json:"Namespace"`
	Dimensions [][]string     `json:"Dimensions"`
	Metrics    []emfMetricDef `json:"Metrics"`
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// Put writes one line with the metrics of one mapping. A metric name must not be "_aws" or "sync".
func (e *EMF) Put(sync string, metrics []Metric) error {
	if e == nil || e.w == nil || len(metrics) == 0 {
		return nil
	}
	line := map[string]any{DimensionSync: sync}
	dir := emfDirective{Namespace: Namespace, Dimensions: [][]string{{DimensionSync}}}
	for _, m := range metrics {
		if m.Name == "_aws" || m.Name == DimensionSync {
			return fmt.Errorf("EMF metric name %q collides with a reserved key", m.Name)
		}
		dir.Metrics = append(dir.Metrics, emfMetricDef{Name: m.Name, Unit: m.Unit})
		line[m.Name] = m.Value
	}
	line["_aws"] = emfMetadata{Timestamp: e.now().UnixMilli(), CloudWatchMetrics: []emfDirective{dir}}
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("encoding EMF line: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(append(b, '\n'))
	return err
}
