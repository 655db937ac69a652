package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// writeComparison saves a small 3-class comparison (k = 1, 2 and full data, two
// seeds, one zero-shot prompt set) to dir/results.json.
func writeComparison(t *testing.T, dir string) string {
	t.Helper()
	names := []string{"cat", "dog", "bird"}
	conf := [][]int{{8, 1, 1}, {2, 7, 1}, {0, 1, 9}}
	cmp := results.Comparison{Dataset: "toy", Model: "ViT-B/32", Pretrained: "openai", ClassNames: names, Features: "pre-projection"}
	cmp.ZeroShot = []results.Result{{Task: results.TaskZeroShot, Prompts: "a photo of a {}.", Test: 30, Confusion: conf,
		Metrics: map[string]results.Float{"acc1": 0.7, "acc5": 1, "mean_per_class_recall": 0.7}}}
	for _, k := range []int{1, 2, 0} {
		for seed := int64(0); seed < 2; seed++ {
			a := map[int]float64{1: 0.6, 2: 0.75, 0: 0.9}[k] + 0.02*float64(seed)
			cmp.Probes = append(cmp.Probes, results.Result{Task: results.TaskLinearProbe, Shots: k, Seed: seed, C: 1, Test: 30,
				Confusion: conf, Metrics: map[string]results.Float{"lp_acc1": results.Float(a), "lp_acc5": 1, "lp_mean_per_class_recall": results.Float(a)}})
		}
	}
	path := filepath.Join(dir, "results.json")
	if err := results.Save(path, &cmp); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	path := writeComparison(t, dir)
	// compare draws the similarity figure beside results.json; report keeps it.
	for _, ext := range []string{".png", ".svg"} {
		if err := os.WriteFile(filepath.Join(dir, "similarity"+ext), []byte("figure"+ext), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, out := range []string{"", filepath.Join(dir, "elsewhere")} {
		args := []string{"report", "--results", path}
		want := dir
		if out != "" {
			args, want = append(args, "--out", out), out
		}
		code, stdout, stderr := run("", args...)
		if code != 0 {
			t.Fatalf("test %d: exit %d, stderr %q", i, code, stderr)
		}
		if !strings.Contains(stdout, filepath.Join(want, "report.md")) {
			t.Errorf("test %d: stdout %q does not name the report", i, stdout)
		}
		for _, f := range []string{"report.md", "accuracy_vs_shots.png", "accuracy_vs_shots.svg", "zeroshot_templates.png", "confusion_probe_full.png"} {
			if _, err := os.Stat(filepath.Join(want, f)); err != nil {
				t.Errorf("test %d: %v", i, err)
			}
		}
		md, _ := os.ReadFile(filepath.Join(want, "report.md"))
		if !strings.Contains(string(md), "matches a **") || !strings.Contains(string(md), "](similarity.png)") {
			t.Errorf("test %d: report lacks the zero-shot match line or the similarity figure:\n%s", i, md)
		}
		if b, _ := os.ReadFile(filepath.Join(want, "similarity.svg")); string(b) != "figure.svg" {
			t.Errorf("test %d: similarity.svg holds %q", i, b)
		}
	}
}

// TestReportZeroShotFiles draws the report of what zeroshot writes: zeroshot.json,
// in the list form of earlier versions too, and the JSONL export; without a
// similarity figure it says why.
func TestReportZeroShotFiles(t *testing.T) {
	dir := t.TempDir()
	zs := results.Result{Dataset: "toy", Task: results.TaskZeroShot, Prompts: "a photo of a {}.", Test: 30,
		Confusion: [][]int{{9, 1}, {2, 8}}, Metrics: map[string]results.Float{"acc1": 0.85}}
	cmp := &results.Comparison{Dataset: "toy", ClassNames: []string{"cat", "dog"}, ZeroShot: []results.Result{zs}}
	files := map[string]func(string) error{
		"zeroshot.json": func(p string) error { return results.Save(p, cmp) },
		"old.json":      func(p string) error { return results.Save(p, []results.Result{zs}) },
		"export": func(p string) error {
			_, err := results.WriteCLIPBenchmark(p, cmp)
			return err
		},
	}
	for name, write := range files {
		path := filepath.Join(dir, name)
		if err := write(path); err != nil {
			t.Fatal(err)
		}
		if name == "export" {
			path = filepath.Join(path, results.JSONLinesFile)
		}
		out := filepath.Join(dir, "out-"+name)
		code, _, stderr := run("", "report", "--results", path, "--out", out)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", name, code, stderr)
			continue
		}
		if !strings.Contains(stderr, "similarity figure is drawn by gorgoclip compare") {
			t.Errorf("%s: stderr %q does not say why there is no similarity figure", name, stderr)
		}
		if _, err := os.Stat(filepath.Join(out, "zeroshot_templates.png")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestReportCommandErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")
	garbled := filepath.Join(dir, "garbled.json")
	if err := os.WriteFile(garbled, []byte("{\n  \"zeroshot\": [oops]\n}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, test := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"report"}, 2, "--results is required"},
		{[]string{"report", "--results", missing}, 1, missing},
		{[]string{"report", "--results", empty}, 1, "no zero-shot or linear-probe results"},
		{[]string{"report", "--results", garbled}, 1, garbled + ":2:"},
		{[]string{"report", "--results", empty, "extra"}, 2, "unexpected arguments"},
	} {
		code, _, stderr := run("", test.args...)
		if code != test.code || !strings.Contains(stderr, test.stderr) {
			t.Errorf("test %d: got exit %d stderr %q want %d and %q", i, code, stderr, test.code, test.stderr)
		}
	}
}

// TestZeroShotFlatWordNetFolder runs zeroshot on a flat class-folder directory
// whose folders are WordNet ids, as ImageNet's validation set is laid out: the
// classes get OpenAI's ImageNet names, the results record seed 0 and an interval,
// and the report draws from zeroshot.json.
func TestZeroShotFlatWordNetFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fixture model")
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	dir := t.TempDir()
	val := filepath.Join(dir, "val")
	for i, wnid := range []string{"n01443537", "n01484850", "n01491361"} {
		for j := 0; j < 2; j++ {
			biPNG(t, filepath.Join(val, wnid, fmt.Sprintf("ILSVRC2012_val_%08d.png", 10*i+j)), 40, 30, 3*i+j)
		}
	}
	out := filepath.Join(dir, "out")
	t.Setenv("GORGOCLIP_VOCAB", testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz"))
	t.Setenv("GORGOCLIP_CACHE", t.TempDir())
	code, stdout, stderr := run("", "zeroshot", "--weights", weights, "--dataset", "imagefolder:"+val,
		"--dataset-name", "imagenet1k", "--prompts", "photo", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	cmp, err := results.LoadComparison(filepath.Join(out, "zeroshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"goldfish", "great white shark", "tiger shark"}; !slices.Equal(cmp.ClassNames, want) || cmp.Dataset != "imagenet1k" {
		t.Errorf("classes %q dataset %q, want %q", cmp.ClassNames, cmp.Dataset, want)
	}
	r := cmp.ZeroShot[0]
	if r.Test != 6 || r.Seed != 0 || r.Metrics[results.MetricAcc1High] <= r.Metrics[results.MetricAcc1Low] || cmp.Command == "" {
		t.Errorf("result %+v", r)
	}
	if !strings.Contains(stdout, `"seed": 0`) {
		t.Errorf("stdout lacks the seed:\n%s", stdout)
	}
	if code, _, stderr := run("", "report", "--results", filepath.Join(out, "zeroshot.json")); code != 0 {
		t.Errorf("report: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, results.CLIPBenchmarkDir, "imagenet1k_openai_CLIP_en_zeroshot_classification_a-photo-of-a.json")); err != nil {
		entries, _ := os.ReadDir(filepath.Join(out, results.CLIPBenchmarkDir))
		t.Errorf("CLIP_benchmark export: %v (have %v)", err, entries)
	}
}
