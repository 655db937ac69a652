package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/layers"
)

// TestBenchTiny runs Bench on a two-layer model with synthetic prompts.
func TestBenchTiny(t *testing.T) {
	cfg := layers.Config{Name: "tiny", EmbedDim: 16, QuickGELU: true, LayerNormEps: 1e-5,
		Vision: layers.VisionConfig{Kind: "vit", ImageResolution: 32, PatchSize: 8, Width: 32, Layers: 2, Heads: 2},
		Text:   layers.TextConfig{Kind: "transformer", ContextLength: 77, VocabSize: 1000, Width: 32, Layers: 2, Heads: 2}}
	r, err := Bench(cfg, 4, 1, nil, 6)
	if err != nil {
		t.Fatal(err)
	}
	if r.ImagePerS <= 0 || r.TextPerS <= 0 || r.TextTokens != 11 || r.TextSource != "synthetic" || r.Batch != 4 || r.PipelinePerS <= 0 || r.PipelineRatio <= 0 ||
		r.SGEMMGFLOP <= 0 || r.ImageVsSGEMM <= 0 {
		t.Errorf("unexpected result %+v", r)
	}
}

// TestBenchUsage checks that bad flags are usage errors, sizes that cannot fit
// included (regression: --batch 100000000 went on to allocate 60 TB).
func TestBenchUsage(t *testing.T) {
	for i, test := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch", "0"}, "must be positive"},
		{[]string{"--model", "ViT-X"}, "ViT-X"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--pipeline", "-1"}, "must be positive"},
		{[]string{"--batch", "100000000"}, "--batch 100000000 needs at least"},
		{[]string{"--threads", "1000000000"}, "--threads 1000000000: at most 1024"},
		{[]string{"--pipeline", "1000000000"}, "--pipeline 1000000000: at most 100000"},
	} {
		var out, errw bytes.Buffer
		if code := Main(append([]string{"bench"}, test.args...), nil, &out, &errw); code != 2 || !strings.Contains(errw.String(), test.want) {
			t.Errorf("test %d: got exit code %d, %q; want 2 and %q", i, code, errw.String(), test.want)
		}
	}
	var r BenchResult
	if err := json.Unmarshal([]byte(`{"image_per_s":1,"peak_rss_mb":2,"sgemm_gflop_per_s":3}`), &r); err != nil || r.PeakRSSMB != 2 || r.SGEMMGFLOP != 3 {
		t.Errorf("JSON field names changed: %+v %v", r, err)
	}
}

func TestBenchImplausible(t *testing.T) {
	for i, test := range []struct {
		ratio float64
		warn  bool
	}{{0, false}, {0.8, false}, {1, false}, {2.02, true}} {
		w := implausible(BenchResult{ImageVsSGEMM: test.ratio})
		if (w != "") != test.warn || test.warn && !strings.Contains(w, "image_vs_sgemm 2.02 > 1") {
			t.Errorf("test %d: ratio %v: got %q", i, test.ratio, w)
		}
	}
}
