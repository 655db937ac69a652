package cli

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// TestPrecisionFlag: every model command (embed, classify, zeroshot, compare, extract,
// bench) takes --precision; a bad value is a usage
// error naming the flag; fp16 and tf32 on the CPU say they need CUDA.
func TestPrecisionFlag(t *testing.T) {
	for cmd, args := range map[string][]string{"embed": {"--weights", "w", "-o", "o.npy", "--pixels", "x.npy"},
		"classify": {"--weights", "w", "--labels", "l", "img.png"},
		"extract":  {"--weights", "w", "--dataset", "d", "--cache", "c", "--shard", "0/1"},
		"zeroshot": {"--weights", "w", "--dataset", "d"}, "compare": {"--weights", "w", "--dataset", "d", "--out", "o"}, "bench": nil} {
		if _, _, errOut := run("", cmd, "--help"); !strings.Contains(errOut, "-precision") {
			t.Errorf("%s --help does not mention --precision:\n%s", cmd, errOut)
		}
		code, _, errOut := run("", append([]string{cmd, "--precision", "int8"}, args...)...)
		if code != 2 || !strings.Contains(errOut, `--precision "int8"`) {
			t.Errorf("%s --precision int8: exit %d, stderr %q", cmd, code, errOut)
		}
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	for _, p := range []string{"fp16", "tf32"} {
		code, _, errOut := run("", "embed", "--precision", p, "--weights", weights, "--pixels", filepath.Join(weights, "..", "golden", "pixels.npy"), "-o", t.TempDir()+"/o.npy")
		if code != 1 || !strings.Contains(errOut, p+" runs on a CUDA device only") {
			t.Errorf("embed --precision %s on the CPU: exit %d, stderr %q", p, code, errOut)
		}
	}
}

// TestEmbedBF16 runs embed --precision bf16 on the fixture model: features within
// bfloat16's tolerance of the float32 goldens (see layers/clip's parity16), and
// different from the fp32 run (the flag took effect).
func TestEmbedBF16(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fixture model")
	}
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	want, err := npy.ReadFloat32(filepath.Join(tiny, "golden", "image_features.npy"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.npy")
	code, _, stderr := run("", "embed", "--precision", "bf16", "--weights", filepath.Join(tiny, "openai"), "--pixels", filepath.Join(tiny, "golden/pixels.npy"), "-o", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := npy.ReadFloat32(out)
	if err != nil {
		t.Fatal(err)
	}
	var maxAbs float64
	for _, v := range want.Data {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	d := embedMaxDiff(got.Data, want.Data)
	t.Logf("bf16 image features: max |diff| %.3g of max |golden| %.3g", d, maxAbs)
	if d > 0.02*maxAbs || d < 1e-6 {
		t.Errorf("bf16 image features differ from the fp32 goldens by %g (want (0, %g])", d, 0.02*maxAbs)
	}
}

// TestBenchImplausibleBF16: a bf16 run is judged against the bf16 GEMM, which it runs
// (it beats the SGEMM by design).
func TestBenchImplausibleBF16(t *testing.T) {
	if w := implausible(BenchResult{Precision: "bf16", ImageVsSGEMM: 3.4, ImageVsBF16GEMM: 0.8}); w != "" {
		t.Errorf("bf16 at 80%% of its GEMM: warned %q", w)
	}
	if w := implausible(BenchResult{Precision: "bf16", ImageVsSGEMM: 3.4, ImageVsBF16GEMM: 1.17}); !strings.Contains(w, "image_vs_bf16_gemm 1.17 > 1") {
		t.Errorf("bf16 at 117%% of its GEMM: got %q", w)
	}
}

// TestBenchPrecision: bench --precision bf16 --json reports its precision and the bf16
// GEMM's backend and rate.
func TestBenchPrecision(t *testing.T) {
	if testing.Short() {
		t.Skip("a full-size random model")
	}
	code, out, errOut := run("", "bench", "--model", "RN50", "--precision", "bf16", "--batch", "1", "--iters", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r BenchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Precision != "bf16" || r.BF16GEMM != graph.BF16Backend() || r.ImagePerS <= 0 || r.TextPerS <= 0 {
		t.Errorf("unexpected result %+v", r)
	}
}
