package lambda_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsync/ipsync/internal/lambda"
	"github.com/ipsync/ipsync/internal/testutil"
)

// emfLine is the CloudWatch Embedded Metric Format specification's shape, decoded strictly enough to catch a
// misnamed key.
type emfLine struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
}

func TestEMFLine(t *testing.T) {
	var out testutil.Buffer
	now := time.UnixMilli(1_700_000_000_123)
	emf := lambda.NewEMF(&out, func() time.Time { return now })
	err := emf.Put("orders", []lambda.Metric{
		{Name: "Registrations", Unit: lambda.UnitCount, Value: 1},
		{Name: "InSync", Unit: lambda.UnitNone, Value: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := out.Lines()
	if len(lines) != 1 {
		t.Fatalf("want one line, got %q", lines)
	}
	var got emfLine
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &values)
	d := got.AWS.CloudWatchMetrics
	if got.AWS.Timestamp != 1_700_000_000_123 || len(d) != 1 || d[0].Namespace != "ipsync" ||
		!reflect.DeepEqual(d[0].Dimensions, [][]string{{"sync"}}) || len(d[0].Metrics) != 2 ||
		d[0].Metrics[0].Name != "Registrations" || d[0].Metrics[0].Unit != "Count" || d[0].Metrics[1].Unit != "None" {
		t.Fatalf("EMF metadata: %s", lines[0])
	}
	if values["sync"] != "orders" || values["Registrations"] != 1.0 || values["InSync"] != 1.0 {
		t.Fatalf("EMF values (every metric and dimension must be a top-level key): %s", lines[0])
	}
	if err := emf.Put("orders", []lambda.Metric{{Name: "sync", Unit: lambda.UnitNone}}); err == nil {
		t.Fatal("a metric named like the dimension must be refused")
	}
	if err := (*lambda.EMF)(nil).Put("orders", nil); err != nil {
		t.Fatal(err)
	}
}

// TestEMFConcurrentLinesStayWhole: CloudWatch reads one JSON object per line, so lines must never interleave.
func TestEMFConcurrentLinesStayWhole(t *testing.T) {
	var out testutil.Buffer
	emf := lambda.NewEMF(&out, nil)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = emf.Put(fmt.Sprintf("sync-%d", i), []lambda.Metric{{Name: "SyncErrors", Unit: lambda.UnitCount, Value: float64(i)}})
		}()
	}
	wg.Wait()
	lines := out.Lines()
	if len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	for _, l := range lines {
		var v emfLine
		if err := json.Unmarshal([]byte(l), &v); err != nil || !strings.HasPrefix(l, "{") {
			t.Fatalf("broken line %q: %v", l, err)
		}
	}
}
