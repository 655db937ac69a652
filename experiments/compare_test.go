package experiments

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/plots"
)

// TestCompareFashionMNIST runs the whole comparison on the tiny fixture model and a
// Fashion-MNIST subset: features, zero-shot, k-shot and full probes, results and plots.
// Zero-shot accuracy of random weights means nothing; the probe must beat chance.
func TestCompareFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	fm := testfix.FashionMNIST(t)
	out := t.TempDir()
	cfg := Config{Weights: weights, Vocab: vocab, Dataset: "fashion-mnist:" + fm,
		TrainLimit: 600, TestLimit: 300, Shots: []int{1, 4, 500}, Seeds: 2, Out: out,
		Prompts: []string{"bare", "photo"}}
	cmp, err := Compare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.ZeroShot) != 2 || len(cmp.Probes) != 5 || len(cmp.Summary) != 3 || len(cmp.ClassNames) != 10 {
		t.Fatalf("got %d zero-shot, %d probes, %d summaries, %d classes", len(cmp.ZeroShot), len(cmp.Probes), len(cmp.Summary), len(cmp.ClassNames))
	}
	if len(cmp.SkippedShots) != 1 || cmp.SkippedShots[0] != 500 {
		t.Errorf("skipped shots %v, want [500] (60 images a class)", cmp.SkippedShots)
	}
	for _, name := range []string{"results.json", "report.md", plots.FileShots + ".png", plots.FileShots + ".svg", plots.FilePerClass + ".png", plots.FileSimilarity + ".png"} {
		if st, err := os.Stat(filepath.Join(out, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	var back results.Comparison
	if err := results.Load(filepath.Join(out, "results.json"), &back); err != nil {
		t.Fatal(err)
	}
	for i, r := range back.ZeroShot {
		for _, k := range []string{"acc1", "acc5", "mean_per_class_recall"} {
			if v, ok := r.Metrics[k]; !ok || math.IsNaN(float64(v)) {
				t.Errorf("zero-shot %d: metric %s = %v", i, k, v)
			}
		}
	}
	full := back.Probes[len(back.Probes)-1]
	if full.Shots != 0 || full.C <= 0 || full.Train != 600 {
		t.Fatalf("full probe: %+v", full)
	}
	if acc := float64(full.Metrics["lp_acc1"]); acc < 0.4 {
		t.Errorf("full-data probe top-1 %.3f: should beat chance (0.1) clearly", acc)
	}
	// A second run reads every feature from the cache.
	cfg.Shots, cfg.NoFull = []int{1}, true
	if _, err := Compare(cfg); err != nil {
		t.Fatal(err)
	}
}
