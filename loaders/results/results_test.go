package results

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func TestNaNRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.json")
	r := Result{Dataset: "d", Task: TaskLinearProbe, Metrics: map[string]Float{"lp_acc1": 0.5, "lp_acc5": Float(math.NaN())}}
	if err := Save(p, r); err != nil {
		t.Fatal(err)
	}
	var got Result
	if err := Load(p, &got); err != nil {
		t.Fatal(err)
	}
	if got.Metrics["lp_acc1"] != 0.5 || !math.IsNaN(float64(got.Metrics["lp_acc5"])) {
		t.Fatalf("got %v", got.Metrics)
	}
	if err := Load(filepath.Join(t.TempDir(), "missing.json"), &got); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing file: %v", err)
	}
}
