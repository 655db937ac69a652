package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/probes"
)

// probeFiles writes three separable classes of 2-D features: n per class for
// training and 2 per class for testing, labels as int32 and int64.
func probeFiles(t *testing.T, n int) (dir string) {
	t.Helper()
	dir = t.TempDir()
	write := func(name string, per int, offset float32, wide bool) {
		var x []float32
		var y32 []int32
		var y64 []int64
		for c := 0; c < 3; c++ {
			for i := 0; i < per; i++ {
				jitter := offset + 0.1*float32(i%5)
				x = append(x, float32(4*c)+jitter, float32(-3*c)+jitter)
				y32, y64 = append(y32, int32(c)), append(y64, int64(c))
			}
		}
		if err := npy.WriteFloat32(filepath.Join(dir, name+"_x.npy"), []int{3 * per, 2}, x); err != nil {
			t.Fatal(err)
		}
		var err error
		if wide {
			err = npy.WriteInt64(filepath.Join(dir, name+"_y.npy"), []int{3 * per}, y64)
		} else {
			err = npy.WriteInt32(filepath.Join(dir, name+"_y.npy"), []int{3 * per}, y32)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	write("train", n, 0, false)
	write("test", 2, 0.05, true)
	return dir
}

func probeArgs(dir string, extra ...string) []string {
	return append([]string{"probe",
		"--train-features", filepath.Join(dir, "train_x.npy"), "--train-labels", filepath.Join(dir, "train_y.npy"),
		"--test-features", filepath.Join(dir, "test_x.npy"), "--test-labels", filepath.Join(dir, "test_y.npy"),
		"--threads", "2"}, extra...)
}

func TestProbeStdout(t *testing.T) {
	dir := probeFiles(t, 10)
	code, out, errOut := run("", probeArgs(dir, "--C", "10", "--dataset", "toy")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r results.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if r.Task != results.TaskLinearProbe || r.Dataset != "toy" || r.C != 10 || r.Train != 30 || r.Test != 6 {
		t.Errorf("got task %q dataset %q C %v n_train %d n_test %d want linear_probe toy 10 30 6", r.Task, r.Dataset, r.C, r.Train, r.Test)
	}
	if r.Method != "logreg" || r.Shots != 0 || !strings.Contains(out, `"fewshot_k": -1`) || r.Val != 0 || !strings.Contains(out, `"seed": 0`) || strings.Contains(out, "n_val") {
		t.Errorf("got method %q shots %d n_val %d want logreg, the full set (fewshot_k -1), no validation and seed 0 written:\n%s", r.Method, r.Shots, r.Val, out)
	}
	if r.Metrics["lp_acc1"] != 1 || r.Metrics["lp_mean_per_class_recall"] != 1 || !strings.Contains(out, `"lp_acc5": null`) {
		t.Errorf("got metrics %v want acc1 1, recall 1, acc5 null (3 classes)", r.Metrics)
	}
	if len(r.Confusion) != 3 || r.Confusion[2][2] != 2 || len(r.PerClassAccuracy) != 3 {
		t.Errorf("got confusion %v per-class %v", r.Confusion, r.PerClassAccuracy)
	}
	if !strings.Contains(errOut, "fit: C=10 on 30 examples") {
		t.Errorf("stderr lacks the fit summary:\n%s", errOut)
	}
}

func TestProbeSweepShotsToFile(t *testing.T) {
	dir := probeFiles(t, 20)
	outPath := filepath.Join(dir, "r.json")
	code, out, errOut := run("", probeArgs(dir, "--sweep", "--shots", "2", "--seed", "3", "-o", outPath)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "" {
		t.Errorf("stdout should be empty with -o, got %q", out)
	}
	var r results.Result
	if err := results.Load(outPath, &r); err != nil {
		t.Fatal(err)
	}
	// 2 shots and min(2, 4) validation images per class, none of the other 54.
	if r.Shots != 2 || r.Seed != 3 || r.Train != 6 || r.Val != 6 || !(r.C >= 1e-6 && r.C <= 1e6) {
		t.Errorf("got shots %d seed %d n_train %d n_val %d C %v want 2 3 6 6 and C in [1e-6, 1e6]", r.Shots, r.Seed, r.Train, r.Val, r.C)
	}
	if !strings.Contains(errOut, "sweep: 6 training and 6 validation examples") || !strings.Contains(errOut, "sweep: C=1e-06") {
		t.Errorf("stderr lacks sweep progress:\n%s", errOut)
	}
}

// cliCase is one command line and what it must give: the exit code and pieces of
// stderr.
type cliCase struct {
	args []string
	code int
	want []string
}

// runCases runs each case as a gorgoclip command.
func runCases(t *testing.T, cases []cliCase) {
	t.Helper()
	for i, test := range cases {
		code, _, errOut := run("", test.args...)
		if code != test.code {
			t.Errorf("test %d: got exit %d want %d (%s)", i, code, test.code, errOut)
		}
		for _, w := range test.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("test %d: got stderr %q want it to contain %q", i, errOut, w)
			}
		}
	}
}

func TestProbeErrors(t *testing.T) {
	dir := probeFiles(t, 4)
	// 5 labels for 12 examples.
	if err := npy.WriteInt64(filepath.Join(dir, "short_y.npy"), []int{5}, []int64{0, 1, 2, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFloat32(filepath.Join(dir, "wide_x.npy"), []int{6, 3}, make([]float32, 18)); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteInt64(filepath.Join(dir, "neg_y.npy"), []int{12}, []int64{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, -1}); err != nil {
		t.Fatal(err)
	}
	sub := func(args []string, flag, file string) []string {
		out := append([]string(nil), args...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = filepath.Join(dir, file)
			}
		}
		return out
	}
	runCases(t, []cliCase{
		{[]string{"probe"}, 2, []string{"are required"}},
		{probeArgs(dir, "--C", "1", "--sweep"), 2, []string{"exclude each other"}},
		{probeArgs(dir, "--C", "-1"), 2, []string{"--C -1"}},
		{probeArgs(dir, "--shots", "-2"), 2, []string{"--shots -2"}},
		{probeArgs(dir, "extra"), 2, []string{`unexpected argument "extra"`}},
		{sub(probeArgs(dir), "--train-labels", "short_y.npy"), 1, []string{"train_x.npy has 12 examples", "short_y.npy has 5 labels"}},
		{sub(probeArgs(dir), "--test-features", "wide_x.npy"), 1, []string{"train_x.npy have dimension 2", "wide_x.npy have 3"}},
		{sub(probeArgs(dir), "--train-labels", "neg_y.npy"), 1, []string{"neg_y.npy: label -1 of example 11"}},
		{sub(probeArgs(dir), "--train-features", "missing.npy"), 1, []string{"missing.npy"}},
		{sub(probeArgs(dir), "--train-labels", "train_x.npy"), 1, []string{"train_x.npy", "not an integer"}},
		{probeArgs(dir, "--shots", "5"), 1, []string{"fewer than 5 shots"}},
	})
	if _, err := os.Stat(filepath.Join(dir, "r.json")); err == nil {
		t.Errorf("a failed run wrote results")
	}
}

// fewShotFiles writes a 3-class problem in 3-D for the few-shot methods: class c
// around the direction e_c plus a shared offset, n per class for training and 4 per
// class for testing, and an imperfect zero-shot classifier (each class tilted
// towards the next) in text.npy.
func fewShotFiles(t *testing.T, n int) (dir string) {
	t.Helper()
	dir = t.TempDir()
	write := func(name string, per int, phase float64) {
		var x []float32
		var y []int64
		for c := 0; c < 3; c++ {
			for i := 0; i < per; i++ {
				v := []float64{1, 1, 1}
				v[c] += 3
				for j := range v {
					v[j] += 0.8 * math.Sin(phase+float64(7*i+3*j+c))
				}
				x = append(x, float32(v[0]), float32(v[1]), float32(v[2]))
				y = append(y, int64(c))
			}
		}
		if err := npy.WriteFloat32(filepath.Join(dir, name+"_x.npy"), []int{3 * per, 3}, x); err != nil {
			t.Fatal(err)
		}
		if err := npy.WriteInt64(filepath.Join(dir, name+"_y.npy"), []int{3 * per}, y); err != nil {
			t.Fatal(err)
		}
	}
	write("train", n, 0)
	write("test", 4, 0.5)
	text := []float32{1, 0.6, 0, 0, 1, 0.6, 0.6, 0, 1}
	if err := npy.WriteFloat32(filepath.Join(dir, "text.npy"), []int{3, 3}, text); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fewShotArgs(dir string, extra ...string) []string {
	return append([]string{"probe",
		"--train-features", filepath.Join(dir, "train_x.npy"), "--train-labels", filepath.Join(dir, "train_y.npy"),
		"--test-features", filepath.Join(dir, "test_x.npy"), "--test-labels", filepath.Join(dir, "test_y.npy"),
		"--text-features", filepath.Join(dir, "text.npy")}, extra...)
}

// TestProbeFewShotMethods runs every few-shot method through the command: results in
// CLIP_benchmark's conventions, the validation size, and test logits whose argmax
// gives the reported accuracy.
func TestProbeFewShotMethods(t *testing.T) {
	dir := fewShotFiles(t, 10)
	for i, test := range []struct {
		method string
		val    int
		params []string
	}{
		{"zs-lp", 0, nil},
		{"clap", 0, nil},
		{"lp++", 12, []string{"epoch"}},
		{"tip-adapter", 12, []string{"alpha", "beta"}},
		{"tip-adapter-f", 12, []string{"alpha", "beta", "epoch"}},
	} {
		outPath, logitsPath := filepath.Join(dir, test.method+".json"), filepath.Join(dir, test.method+".npy")
		code, _, errOut := run("", fewShotArgs(dir, "--method", test.method, "--shots", "4", "--seed", "0", "-o", outPath, "--logits-out", logitsPath)...)
		if code != 0 {
			t.Fatalf("test %d (%s): exit %d: %s", i, test.method, code, errOut)
		}
		var r results.Result
		if err := results.Load(outPath, &r); err != nil {
			t.Fatal(err)
		}
		if r.Method != test.method || r.Shots != 4 || r.Train != 12 || r.Val != test.val || r.Test != 12 {
			t.Errorf("test %d: got method %q shots %d n_train %d n_val %d n_test %d want %q 4 12 %d 12",
				i, r.Method, r.Shots, r.Train, r.Val, r.Test, test.method, test.val)
		}
		for _, p := range test.params {
			if _, ok := r.Hyperparameters[p]; !ok {
				t.Errorf("test %d: hyperparameters %v lack %q", i, r.Hyperparameters, p)
			}
		}
		raw, err := os.ReadFile(outPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), `"seed": 0`) {
			t.Errorf("test %d: seed 0 not written:\n%s", i, raw)
		}
		l, err := npy.ReadFloat32(logitsPath)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Shape) != 2 || l.Shape[0] != 12 || l.Shape[1] != 3 {
			t.Fatalf("test %d: got logits of shape %v want [12 3]", i, l.Shape)
		}
		hit := 0
		for row := 0; row < 12; row++ {
			z := l.Data[row*3 : row*3+3]
			best := 0
			for c, v := range z {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("test %d: logit %v", i, v)
				}
				if v > z[best] {
					best = c
				}
			}
			if best == row/4 {
				hit++
			}
		}
		if acc := float64(hit) / 12; acc != float64(r.Metrics["lp_acc1"]) || acc < 0.5 {
			t.Errorf("test %d: logits give accuracy %v, results %v; want equal and >= 0.5", i, acc, r.Metrics["lp_acc1"])
		}
	}
}

// TestProbeTipAdapterFormula checks --logits-out of Tip-Adapter with fixed alpha and
// beta against the paper's formula, with the shots the seed picks.
func TestProbeTipAdapterFormula(t *testing.T) {
	dir := fewShotFiles(t, 6)
	logitsPath := filepath.Join(dir, "l.npy")
	code, out, errOut := run("", fewShotArgs(dir, "--method", "tip-adapter", "--alpha", "2", "--beta", "3", "--logit-scale", "50", "--shots", "2", "--seed", "5", "--logits-out", logitsPath)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, `"alpha": 2`) || strings.Contains(out, "n_val") {
		t.Errorf("results lack the fixed alpha or report a validation set:\n%s", out)
	}
	read := func(name string) *npy.Float32 {
		a, err := npy.ReadFloat32(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	trainX, testX, text, logits := read("train_x.npy"), read("test_x.npy"), read("text.npy"), read("l.npy")
	trainY := make([]int, 18)
	for i := range trainY {
		trainY[i] = i / 6
	}
	shots, err := probes.SampleShots(trainY, 3, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	unit := func(v []float32) []float64 {
		n := math.Sqrt(float64(v[0]*v[0] + v[1]*v[1] + v[2]*v[2]))
		return []float64{float64(v[0]) / n, float64(v[1]) / n, float64(v[2]) / n}
	}
	dot := func(a, b []float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
	for row := 0; row < 12; row++ {
		f := unit(testX.Data[row*3 : row*3+3])
		for c := 0; c < 3; c++ {
			want := 50 * dot(f, unit(text.Data[c*3:c*3+3]))
			for _, s := range shots {
				if trainY[s] == c {
					want += 2 * math.Exp(-3*(1-dot(f, unit(trainX.Data[s*3:s*3+3]))))
				}
			}
			if got := float64(logits.Data[row*3+c]); math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
				t.Errorf("row %d class %d: got %v want %v", row, c, got, want)
			}
		}
	}
}

func TestProbeFewShotErrors(t *testing.T) {
	dir := fewShotFiles(t, 4)
	if err := npy.WriteFloat32(filepath.Join(dir, "text4.npy"), []int{3, 4}, make([]float32, 12)); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFloat32(filepath.Join(dir, "nan.npy"), []int{3, 3}, []float32{1, 0, 0, 0, float32(math.NaN()), 0, 0, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "train_x.npy"), filepath.Join(dir, "link.npy")); err != nil {
		t.Fatal(err)
	}
	sub := func(args []string, flag, file string) []string {
		out := slices.Clone(args)
		out[slices.Index(out, flag)+1] = filepath.Join(dir, file)
		return out
	}
	base := func(extra ...string) []string { return fewShotArgs(dir, append([]string{"--shots", "2"}, extra...)...) }
	runCases(t, []cliCase{
		{fewShotArgs(dir, "--method", "cop", "--shots", "2"), 2, []string{`--method: probes: unknown method "cop"`, "logreg, zs-lp, clap", "(or coop)"}},
		{fewShotArgs(dir, "--shots", "2"), 2, []string{"--text-features does not apply to --method logreg"}},
		{probeArgs(dir, "--method", "clap", "--shots", "2"), 2, []string{"--method clap needs --text-features"}},
		{base("--method", "clap"), 0, nil},
		{fewShotArgs(dir, "--method", "lp++"), 2, []string{"lp++ is a few-shot method: give --shots k"}},
		{base("--method", "tip-adapter", "--alpha", "1"), 2, []string{"give both or neither"}},
		{base("--method", "tip-adapter", "--alpha", "1", "--beta", "-1"), 2, []string{"--alpha 1 --beta -1"}},
		{base("--method", "zs-lp", "--alpha", "1", "--beta", "1"), 2, []string{"--alpha does not apply to --method zs-lp"}},
		{base("--method", "lp++", "--C", "1"), 2, []string{"--C does not apply to --method lp++ (only to logreg)"}},
		{base("--method", "tip-adapter", "--init-norm", "3"), 2, []string{"--init-norm does not apply"}},
		{base("--method", "clap", "--logit-scale", "0"), 2, []string{"--logit-scale 0"}},
		{probeArgs(dir, "--sweep", "--shots", "2", "--val-fraction", "0.3"), 2, []string{"--val-fraction applies to --sweep on the full training set"}},
		{sub(base("--method", "clap"), "--text-features", "text4.npy"), 1, []string{"text4.npy: zero-shot classifier has shape [3 4]; want [K,3]"}},
		{sub(base("--method", "clap"), "--text-features", "nan.npy"), 1, []string{"nan.npy: value 1 of class 1 is NaN"}},
		{base("--method", "clap", "--classes", "4"), 1, []string{"has 3 classes but --classes is 4"}},
		{probeArgs(dir, "--classes", "1000000000"), 1, []string{"--classes 1000000000 is more than the 24 examples"}},
		{base("--method", "clap", "-o", filepath.Join(dir, "text.npy")), 2, []string{"-o", "text.npy is one of the inputs"}},
		{base("--method", "clap", "--logits-out", filepath.Join(dir, "link.npy")), 2, []string{"--logits-out", "link.npy is the input", "train_x.npy"}},
		{base("--method", "clap", "-o", filepath.Join(dir, "same"), "--logits-out", filepath.Join(dir, "same")), 2, []string{"name the same file"}},
	})
	for _, name := range []string{"train_x.npy", "text.npy"} {
		if a, err := npy.ReadFloat32(filepath.Join(dir, name)); err != nil || a.Shape[1] != 3 {
			t.Errorf("input %s damaged: %v", name, err)
		}
	}
}

// failWriter fails every write, as a full disk does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestProbeStdoutWriteError(t *testing.T) {
	dir := probeFiles(t, 4)
	var errOut bytes.Buffer
	if code := Main(probeArgs(dir)[0:], strings.NewReader(""), failWriter{}, &errOut); code != 1 || !strings.Contains(errOut.String(), "writing the results to stdout: no space left") {
		t.Errorf("got exit %d, stderr %q want 1 and the write error", code, errOut.String())
	}
}
