package experiments

import (
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/plots"
)

// TestCompareFashionMNIST runs the whole comparison on the tiny fixture model and a
// Fashion-MNIST subset: features, zero-shot, every method at every k and the full
// probe, results and plots. Zero-shot accuracy of random weights means nothing; the
// probe must beat chance. With 60 training images a class, k = 58 leaves no room for
// a validation set, so only the methods without one (zs-lp, clap) run there, and
// k = 500 is skipped by all.
func TestCompareFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	fm := testfix.FashionMNIST(t)
	out := t.TempDir()
	cfg := Config{Weights: weights, Vocab: vocab, Dataset: "fashion-mnist:" + fm,
		TrainLimit: 600, TestLimit: 300, Shots: []int{1, 4, 58, 500}, Seeds: 2, Out: out,
		Prompts: []string{"bare", "photo"}}
	cmp, err := Compare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Per method: the k it runs at (2 seeds each), and whether the full set too.
	want := map[string][]int{"logreg": {1, 4, 0}, "zs-lp": {1, 4, 58}, "clap": {1, 4, 58},
		"lp++": {1, 4}, "tip-adapter": {1, 4}, "tip-adapter-f": {1, 4}}
	nProbes, nSummary := 0, 0
	for _, ks := range want {
		nSummary += len(ks)
		for _, k := range ks {
			nProbes += 2
			if k == 0 {
				nProbes--
			}
		}
	}
	if len(cmp.ZeroShot) != 2 || len(cmp.Probes) != nProbes || len(cmp.Summary) != nSummary || len(cmp.ClassNames) != 10 {
		t.Fatalf("got %d zero-shot, %d probes, %d summaries, %d classes; want 2, %d, %d, 10", len(cmp.ZeroShot), len(cmp.Probes), len(cmp.Summary), len(cmp.ClassNames), nProbes, nSummary)
	}
	wantSkipped := results.SkippedShots{"logreg": {58, 500}, "zs-lp": {500}, "clap": {500},
		"lp++": {58, 500}, "tip-adapter": {58, 500}, "tip-adapter-f": {58, 500}}
	if !maps.EqualFunc(cmp.SkippedShots, wantSkipped, slices.Equal) {
		t.Errorf("skipped shots %v, want %v (60 images a class)", cmp.SkippedShots, wantSkipped)
	}
	for i, r := range cmp.Probes {
		ks, ok := want[r.Method]
		switch {
		case !ok || !slices.Contains(ks, r.Shots):
			t.Errorf("probe %d: method %q at k=%d", i, r.Method, r.Shots)
		case r.Shots > 0 && r.Train != 10*r.Shots:
			t.Errorf("probe %d (%s, k=%d): %d training images, want %d", i, r.Method, r.Shots, r.Train, 10*r.Shots)
		}
		// Validation: min(k, 4) images a class for the methods that choose something.
		wantVal := 10 * min(r.Shots, 4)
		if r.Method == "zs-lp" || r.Method == "clap" {
			wantVal = 0
		}
		if r.Shots > 0 && r.Val != wantVal {
			t.Errorf("probe %d (%s, k=%d): %d validation images, want %d", i, r.Method, r.Shots, r.Val, wantVal)
		}
		wantPrompts := "a photo of a {}." // the default prior: fashion-mnist ships no templates
		if r.Method == "logreg" {
			wantPrompts = ""
		}
		if r.Prompts != wantPrompts {
			t.Errorf("probe %d (%s): prompts %q, want %q", i, r.Method, r.Prompts, wantPrompts)
		}
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
	if back.Dataset != "fashion-mnist" || back.DatasetSpec != "fashion-mnist:"+fm || back.Language != "en" {
		t.Errorf("dataset %q, spec %q, language %q", back.Dataset, back.DatasetSpec, back.Language)
	}
	if back.Version == "" || back.Date == "" || back.Command == "" {
		t.Errorf("provenance %+v", back.Provenance)
	}
	// The weights checksum is what sha256sum gives for the .npy files.
	if sum, err := exec.Command("sh", "-c", "cd '"+weights+"' && sha256sum *.npy | sha256sum").Output(); err == nil {
		if want := strings.Fields(string(sum))[0]; back.WeightsSHA256 != want {
			t.Errorf("weights checksum %s, sha256sum says %s", back.WeightsSHA256, want)
		}
	}
	if !strings.Contains(back.Features, "L2-normalised") {
		t.Errorf("features %q", back.Features)
	}
	raw, _ := os.ReadFile(filepath.Join(out, "results.json"))
	for _, want := range []string{`"seed": 0,`, `"fewshot_k": -1`, `"fewshot_k": 4`, `"acc1_ci95_low": `,
		`"method": "clap",`, `"n_val": 40,`, `"skipped_shots": {`, `"lp++": [58, 500]`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("results.json lacks %s", want)
		}
	}
	exported, _ := filepath.Glob(filepath.Join(out, results.CLIPBenchmarkDir, "fashion-mnist_openai_*.json"))
	if len(exported) != 2+nProbes {
		t.Errorf("CLIP_benchmark export: %d files, want 2 zero-shot and %d probes: %v", len(exported), nProbes, exported)
	}
	report, err := os.ReadFile(filepath.Join(out, plots.FileReport))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### Methods", "| zs-lp |", "| lp++ |", "| tip-adapter-f |", "- No logreg, lp++, tip-adapter, tip-adapter-f at k = 58, 500:", "- No zs-lp, clap at k = 500:"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for i, r := range back.ZeroShot {
		for _, k := range []string{"acc1", "acc5", "mean_per_class_recall", results.MetricAcc1Low, results.MetricAcc1High} {
			if v, ok := r.Metrics[k]; !ok || math.IsNaN(float64(v)) {
				t.Errorf("zero-shot %d: metric %s = %v", i, k, v)
			}
		}
		if lo, a, hi := r.Metrics[results.MetricAcc1Low], r.Metrics["acc1"], r.Metrics[results.MetricAcc1High]; !(lo < a && a < hi) {
			t.Errorf("zero-shot %d: acc1 %v outside its interval [%v, %v]", i, a, lo, hi)
		}
	}
	full := back.Probes[slices.IndexFunc(back.Probes, func(r results.Result) bool { return r.Shots == 0 })]
	if full.Method != "logreg" || full.C <= 0 || full.Train != 600 {
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

func TestWilson(t *testing.T) {
	for i, test := range []struct {
		k, n   int
		lo, hi float64
	}{
		{81, 263, 0.2552885, 0.3662096}, // Newcombe (1998), table I
		{0, 10, 0, 0.2775328},
		{10, 10, 0.7224672, 1},
	} {
		lo, hi := Wilson(test.k, test.n)
		if math.Abs(lo-test.lo) > 1e-6 || math.Abs(hi-test.hi) > 1e-6 {
			t.Errorf("test %d: got [%.7f, %.7f] want [%.7f, %.7f]", i, lo, hi, test.lo, test.hi)
		}
	}
	if lo, hi := Wilson(0, 0); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("no examples: got [%v, %v]", lo, hi)
	}
}

// TestParsePromptSetOpenAICache resolves openai:prompts.md#DATASET in the folder
// fetch templates writes to when the working directory has no prompts.md.
func TestParsePromptSetOpenAICache(t *testing.T) {
	md := testfix.Shared(t, "clip/prompts.md")
	cache := t.TempDir()
	t.Setenv("GORGOCLIP_CACHE", cache)
	t.Chdir(t.TempDir())
	if _, err := ParsePromptSet("openai:prompts.md#CIFAR10"); err == nil || !strings.Contains(err.Error(), "gorgoclip fetch templates") {
		t.Errorf("no prompts.md anywhere: got %v", err)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cache, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "templates", "prompts.md"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := ParsePromptSet("openai:prompts.md#CIFAR10")
	if err != nil || set.Name != "CIFAR10 ensemble (18 templates)" || len(set.Templates) != 18 {
		t.Errorf("from the cache: got %+v, %v", set, err)
	}
}

// TestDefaultPromptsWDS checks that a CLIP_benchmark webdataset's own templates are
// the default prompt set, named by their file.
func TestDefaultPromptsWDS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "zeroshot_classification_templates.txt")
	if err := os.WriteFile(path, []byte("a photo of a {c}.\na blurry photo of a {c}.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dataset: "wds:" + dir}
	cfg.defaults()
	if len(cfg.Prompts) != 1 || cfg.Prompts[0] != path || cfg.DatasetName != filepath.Base(dir) {
		t.Fatalf("prompts %q, dataset name %q", cfg.Prompts, cfg.DatasetName)
	}
	set, err := ParsePromptSet(cfg.Prompts[0])
	if err != nil || set.Name != "zeroshot_classification_templates.txt (2 templates)" || len(set.Templates) != 2 {
		t.Errorf("got %+v, %v", set, err)
	}
	other := Config{Dataset: "imagefolder:" + dir}
	other.defaults()
	if len(other.Prompts) != 2 || other.Prompts[0] != "bare" {
		t.Errorf("image folder: prompts %q", other.Prompts)
	}
}
