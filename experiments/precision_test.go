package experiments

import (
	"math"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// TestCompareBF16AgreesWithFP32 runs the comparison on the fixture model in fp32 and in
// bf16 and checks that every zero-shot and probe accuracy agrees: within one test
// image for zero-shot (bfloat16 moves a logit by ~0.1 of up to 100, so only a near tie
// can flip), within two for the probes (L-BFGS fits slightly different features). The
// probes' C is fixed: with the sweep, a k-shot validation split of a few images is
// often flat across C, and the chosen C, hence the accuracy, can move with any
// perturbation of the features (seen here: C 1000 in fp32, 24 in bf16, for one 4-shot
// draw), as it moves between draws.
func TestCompareBF16AgreesWithFP32(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run, twice")
	}
	fm := testfix.FashionMNIST(t)
	const test = 300
	run := func(precision string) ([]float64, []float64) {
		cfg := Config{Weights: testfix.Shared(t, "fixtures/clip-tiny-a/openai"), Vocab: testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz"),
			Dataset: "fashion-mnist:" + fm, TrainLimit: 400, TestLimit: test, Shots: []int{4, 16}, Seeds: 2, C: 10, Methods: []string{"logreg"},
			Out: t.TempDir(), Prompts: []string{"bare", "photo"}, Precision: precision}
		cmp, err := Compare(cfg)
		if err != nil {
			t.Fatalf("%s: %v", precision, err)
		}
		var zs, lp []float64
		for _, r := range cmp.ZeroShot {
			zs = append(zs, float64(r.Metrics["acc1"]))
		}
		for _, r := range cmp.Probes {
			lp = append(lp, float64(r.Metrics["lp_acc1"]))
		}
		return zs, lp
	}
	zs32, lp32 := run("fp32")
	zs16, lp16 := run("bf16")
	if len(zs16) != len(zs32) || len(lp16) != len(lp32) || len(lp32) == 0 {
		t.Fatalf("fp32 gave %d zero-shot and %d probe results, bf16 %d and %d", len(zs32), len(lp32), len(zs16), len(lp16))
	}
	for i := range zs32 {
		t.Logf("zero-shot %d: fp32 %.4f bf16 %.4f", i, zs32[i], zs16[i])
		if d := math.Abs(zs32[i]-zs16[i]) * test; d > 1.01 {
			t.Errorf("zero-shot %d: fp32 top-1 %.4f, bf16 %.4f: %.0f test images apart", i, zs32[i], zs16[i], d)
		}
	}
	for i := range lp32 {
		t.Logf("probe %d: fp32 %.4f bf16 %.4f", i, lp32[i], lp16[i])
		if d := math.Abs(lp32[i]-lp16[i]) * test; d > 2.01 {
			t.Errorf("probe %d: fp32 top-1 %.4f, bf16 %.4f: %.0f test images apart", i, lp32[i], lp16[i], d)
		}
	}
}
