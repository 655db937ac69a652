package results

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
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

// TestSeedAndFewshotK checks CLIP_benchmark's conventions: seed always written (0
// too), fewshot_k -1 for the full set, and older files' "shots" still read.
func TestSeedAndFewshotK(t *testing.T) {
	for i, test := range []struct {
		r    Result
		want []string // JSON fragments
		not  []string
	}{
		{Result{Task: TaskLinearProbe, Shots: 0, Seed: 0}, []string{`"seed":0`, `"fewshot_k":-1`}, []string{`"shots"`}},
		{Result{Task: TaskLinearProbe, Shots: 4, Seed: 2}, []string{`"seed":2`, `"fewshot_k":4`}, nil},
		{Result{Task: TaskZeroShot, Seed: 0}, []string{`"seed":0`}, []string{`fewshot_k`}},
	} {
		b, err := json.Marshal(test.r)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range test.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("test %d: %s lacks %s", i, b, w)
			}
		}
		for _, w := range test.not {
			if strings.Contains(string(b), w) {
				t.Errorf("test %d: %s has %s", i, b, w)
			}
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil || back.Shots != test.r.Shots || back.Seed != test.r.Seed {
			t.Errorf("test %d: round trip got %+v, %v want shots %d seed %d", i, back, err, test.r.Shots, test.r.Seed)
		}
	}
	var old Result
	if err := json.Unmarshal([]byte(`{"task":"linear_probe","shots":8}`), &old); err != nil || old.Shots != 8 {
		t.Errorf("old shots key: got %d, %v", old.Shots, err)
	}
	if err := json.Unmarshal([]byte(`{"task":"linear_probe","fewshot_k":0}`), &old); err == nil || !strings.Contains(err.Error(), "fewshot_k 0") {
		t.Errorf("fewshot_k 0: got %v", err)
	}
	var s ShotSummary
	b, _ := json.Marshal(ShotSummary{Shots: 0, Seeds: 3})
	if !strings.HasPrefix(string(b), `{"fewshot_k":-1,`) || json.Unmarshal(b, &s) != nil || s.Shots != 0 || s.Seeds != 3 {
		t.Errorf("summary: %s -> %+v", b, s)
	}
}

// TestSaveFormat checks that confusion rows and other arrays of scalars stay on one
// line, that the output is the same JSON, and that provenance is stamped.
func TestSaveFormat(t *testing.T) {
	cmp := &Comparison{Dataset: "toy", ClassNames: []string{"a", `b "quoted", [x]`},
		ZeroShot: []Result{{Task: TaskZeroShot, Confusion: [][]int{{5, 1}, {0, 6}}, Metrics: map[string]Float{"acc1": 0.9},
			PerTemplate: []TemplateAccuracy{{Template: "{}", Acc1: 0.5}}}},
		Skipped: map[string][]string{}}
	p := filepath.Join(t.TempDir(), "results.json")
	if err := Save(p, cmp); err != nil {
		t.Fatal(err)
	}
	if cmp.Version != "" {
		t.Error("Save modified its argument's provenance")
	}
	b, _ := os.ReadFile(p)
	text := string(b)
	for _, want := range []string{"\n        [5, 1],\n        [0, 6]\n", `"classnames": ["a", "b \"quoted\", [x]"],`,
		`"gorgoclip_version": "`, `"date": "`, `"command": "`} {
		if !strings.Contains(text, want) {
			t.Errorf("results.json lacks %q:\n%s", want, text)
		}
	}
	var back Comparison
	if err := Load(p, &back); err != nil {
		t.Fatal(err)
	}
	if back.ZeroShot[0].Confusion[1][1] != 6 || back.ClassNames[1] != `b "quoted", [x]` || back.ZeroShot[0].PerTemplate[0].Template != "{}" {
		t.Errorf("round trip: got %+v", back)
	}
}

func TestIndentJSON(t *testing.T) {
	in := `{"a":{},"b":[],"c":[[1,2],[]],"d":[{"e":"x,y"}],"f":"[\\\"]"}`
	want := `{
  "a": {},
  "b": [],
  "c": [
    [1, 2],
    []
  ],
  "d": [
    {
      "e": "x,y"
    }
  ],
  "f": "[\\\"]"
}
`
	if got := string(indentJSON([]byte(in))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestLoadComparisonForms(t *testing.T) {
	dir := t.TempDir()
	zs := Result{Dataset: "toy", Task: TaskZeroShot, Prompts: "p", Metrics: map[string]Float{"acc1": 0.5}}
	lp := Result{Dataset: "toy", Task: TaskLinearProbe, Shots: 2, Metrics: map[string]Float{"lp_acc1": 0.6}}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	must := func(v any) string { b, _ := json.MarshalIndent(v, "", "  "); return string(b) }
	line := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for i, test := range []struct {
		name, text string
		zs, lp     int
	}{
		{"compare.json", must(Comparison{Dataset: "toy", ZeroShot: []Result{zs}, Probes: []Result{lp}}), 1, 1},
		{"list.json", must([]Result{zs, zs}), 2, 0},
		{"probe.json", must(lp), 0, 1},
		{"export.jsonl", line(zs) + "\n" + line(lp) + "\n", 1, 1},
	} {
		cmp, err := LoadComparison(write(test.name, test.text))
		if err != nil {
			t.Errorf("test %d (%s): %v", i, test.name, err)
			continue
		}
		if len(cmp.ZeroShot) != test.zs || len(cmp.Probes) != test.lp || cmp.Dataset != "toy" {
			t.Errorf("test %d (%s): got %d zero-shot, %d probes, dataset %q", i, test.name, len(cmp.ZeroShot), len(cmp.Probes), cmp.Dataset)
		}
	}
	for i, test := range []struct{ name, text, want string }{
		{"empty.json", `{"dataset": "x"}`, "holds no zero-shot or linear-probe results"},
		{"syntax.json", "{\n  \"zeroshot\": [\n    {\"task\": }\n  ]\n}", "syntax.json:3:14: not valid JSON"},
		{"type.json", `{"zeroshot": 3}`, "zeroshot holds a JSON number"},
		{"task.json", `[{"task": "retrieval"}]`, `task "retrieval"`},
		{"mixed.json", `[{"task": "linear_probe", "dataset": "a"}, {"task": "linear_probe", "dataset": "b"}]`, "one dataset at a time"},
		{"text.json", "hello", "not a results file"},
	} {
		_, err := LoadComparison(write(test.name, test.text))
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.Contains(err.Error(), test.name) {
			t.Errorf("test %d: got %v want an error naming %s with %q", i, err, test.name, test.want)
		}
	}
}

// TestWriteCLIPBenchmark checks the export against what CLIP_benchmark's build
// step reads: one JSON object per file with dataset, model, pretrained, task,
// metrics and language, scalars only (it writes every key as a CSV column).
func TestWriteCLIPBenchmark(t *testing.T) {
	cmp := &Comparison{Dataset: "cifar10", Model: "ViT-B/32", Pretrained: "openai", Language: LanguageEnglish,
		ZeroShot: []Result{
			{Dataset: "cifar10", Model: "ViT-B/32", Pretrained: "openai", Task: TaskZeroShot, Prompts: "a photo of a {}.", Metrics: map[string]Float{"acc1": 0.9}, Confusion: [][]int{{1}}},
		},
		Probes: []Result{
			{Dataset: "cifar10", Model: "ViT-B/32", Pretrained: "openai", Task: TaskLinearProbe, Shots: 0, Seed: 0, Metrics: map[string]Float{"lp_acc1": 0.95}, PerClassAccuracy: []Float{1}},
			{Dataset: "cifar10", Model: "ViT-B/32", Pretrained: "openai", Task: TaskLinearProbe, Shots: 4, Seed: 1, Metrics: map[string]Float{"lp_acc1": 0.7}},
		},
		Provenance: Provenance{Version: "v9", Command: "gorgoclip compare", WeightsSHA256: "abc", Date: "2026-11-30T00:00:00Z"}}
	dir := t.TempDir()
	paths, err := WriteCLIPBenchmark(dir, cmp)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{
		"cifar10_openai_ViT-B-32_en_zeroshot_classification_a-photo-of-a.json",
		"cifar10_openai_ViT-B-32_en_linear_probe_k-1_seed0.json",
		"cifar10_openai_ViT-B-32_en_linear_probe_k4_seed1.json",
		JSONLinesFile,
	}
	if len(paths) != len(wantNames) {
		t.Fatalf("got %v", paths)
	}
	for i, p := range paths {
		if filepath.Base(p) != wantNames[i] {
			t.Errorf("file %d: got %s want %s", i, filepath.Base(p), wantNames[i])
		}
		if i == len(paths)-1 {
			break
		}
		b, _ := os.ReadFile(p)
		var obj map[string]any
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, k := range []string{"dataset", "model", "pretrained", "task", "metrics", "language", "seed", "gorgoclip_version", "command", "weights_sha256", "date"} {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s lacks %q", p, k)
			}
		}
		for k, v := range obj {
			switch v.(type) {
			case []any:
				t.Errorf("%s: %q is an array", p, k)
			case map[string]any:
				if k != "metrics" {
					t.Errorf("%s: %q is an object", p, k)
				}
			}
		}
	}
	back, err := LoadComparison(paths[len(paths)-1])
	if err != nil || len(back.ZeroShot) != 1 || len(back.Probes) != 2 || back.Probes[0].Shots != 0 || back.Probes[1].Shots != 4 {
		t.Errorf("JSONL round trip: %+v, %v", back, err)
	}
	if len(cmp.ZeroShot[0].Confusion) != 1 {
		t.Error("the export cleared the comparison's own confusion matrix")
	}
}

func TestCommandLine(t *testing.T) {
	got := CommandLine([]string{"gorgoclip", "compare", "--dataset", "imagefolder:/data/x y", "--prompts", "a photo of a {}.", "it's"})
	want := `gorgoclip compare --dataset 'imagefolder:/data/x y' --prompts 'a photo of a {}.' 'it'\''s'`
	if got != want {
		t.Errorf("got %s want %s", got, want)
	}
}

// TestMethods checks the per-method fields: a probe without a method is logreg's, a
// summary per method round-trips with n_val, skipped_shots maps methods to k (an
// older file's plain list is logreg's), and the export names a method other than
// logreg.
func TestMethods(t *testing.T) {
	if m := (Result{Task: TaskLinearProbe}).MethodName(); m != MethodLogReg {
		t.Errorf("probe without a method: %q", m)
	}
	if m := (Result{Task: TaskZeroShot}).MethodName(); m != "" {
		t.Errorf("zero-shot result: method %q", m)
	}
	b, _ := json.Marshal(ShotSummary{Method: "clap", Shots: 4, Seeds: 3, Val: 40})
	var s ShotSummary
	if err := json.Unmarshal(b, &s); err != nil || s.Method != "clap" || s.Shots != 4 || s.Val != 40 || s.MethodName() != "clap" {
		t.Errorf("summary %s -> %+v, %v", b, s, err)
	}
	if (ShotSummary{}).MethodName() != MethodLogReg {
		t.Error("summary without a method is not logreg's")
	}
	for i, test := range []struct {
		in   string
		want SkippedShots
	}{
		{`{"skipped_shots": [16, 500]}`, SkippedShots{MethodLogReg: {16, 500}}},
		{`{"skipped_shots": {"lp++": [58], "clap": [500]}}`, SkippedShots{"lp++": {58}, "clap": {500}}},
		{`{}`, nil},
	} {
		var cmp Comparison
		if err := json.Unmarshal([]byte(test.in), &cmp); err != nil || !reflect.DeepEqual(cmp.SkippedShots, test.want) {
			t.Errorf("test %d: got %v, %v want %v", i, cmp.SkippedShots, err, test.want)
		}
	}
	var cmp Comparison
	if err := json.Unmarshal([]byte(`{"skipped_shots": "16"}`), &cmp); err == nil || !strings.Contains(err.Error(), "skipped_shots") {
		t.Errorf("a string: got %v", err)
	}
	out, _ := json.Marshal(Comparison{SkippedShots: SkippedShots{"lp++": {58, 500}}})
	if !strings.Contains(string(out), `"skipped_shots":{"lp++":[58,500]}`) {
		t.Errorf("encoded %s", out)
	}

	probe := func(method string, seed int64) Result {
		return Result{Dataset: "d", Model: "m", Pretrained: "p", Task: TaskLinearProbe, Method: method, Shots: 4, Seed: seed, Metrics: map[string]Float{"lp_acc1": 0.5}}
	}
	paths, err := WriteCLIPBenchmark(t.TempDir(), &Comparison{Probes: []Result{probe("logreg", 0), probe("lp++", 0), probe("", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	want := []string{"d_p_m_none_linear_probe_k4_seed0.json", "d_p_m_none_linear_probe_lpplusplus_k4_seed0.json", "d_p_m_none_linear_probe_k4_seed1.json", JSONLinesFile}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("export names %v, want %v", names, want)
	}
}
