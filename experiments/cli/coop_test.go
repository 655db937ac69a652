package cli

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// TestCompareCoOp runs compare with CoOp beside logreg on the fixture model: CoOp is
// fitted on the same shots and seeds through the text tower, recorded as its own
// method with its context size and epochs, and left out unless asked for.
func TestCompareCoOp(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	fm := testfix.FashionMNIST(t)
	out := t.TempDir()
	code, _, stderr := run("", "compare", "--weights", weights, "--dataset", "fashion-mnist:"+fm,
		"--train-limit", "100", "--test-limit", "50", "--methods", "logreg,coop", "--prompts", "bare",
		"--shots", "1", "--seeds", "2", "--no-full", "--out", out)
	if code != 0 {
		t.Fatalf("compare: exit %d:\n%s", code, stderr)
	}
	cmp, err := results.LoadComparison(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var coop []results.Result
	for _, r := range cmp.Probes {
		if r.Method == "coop" {
			coop = append(coop, r)
		}
	}
	if len(coop) != 2 {
		t.Fatalf("%d coop results, want 2 (k=1, seeds 0 and 1)", len(coop))
	}
	for i, r := range coop {
		acc := float64(r.Metrics["lp_acc1"])
		if r.Shots != 1 || r.Seed != int64(i) || r.Train != 10 || r.Val != 0 || r.Hyperparameters["n_ctx"] != 16 ||
			r.Hyperparameters["epochs"] != 50 || math.IsNaN(acc) || acc < 0 || acc > 1 {
			t.Errorf("coop result %d: %+v", i, r)
		}
	}
	if !strings.Contains(stderr, "fit and test time per method: logreg ") || !strings.Contains(stderr, "coop ") {
		t.Errorf("stderr lacks the time per method:\n%s", stderr)
	}
}

// TestProbeCoOp runs probe --method coop on feature files: the flags it needs, the
// ones only it takes, and a result recorded as CoOp's.
func TestProbeCoOp(t *testing.T) {
	if testing.Short() {
		t.Skip("trains through the fixture's text tower")
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	dir := t.TempDir()
	feats, labels, names := coopFeatureFiles(t, dir)
	base := []string{"probe", "--train-features", feats, "--train-labels", labels, "--test-features", feats, "--test-labels", labels}
	for i, test := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--method", "coop", "--shots", "2"}, 2, "--method coop needs --weights"},
		{[]string{"--method", "logreg", "--n-ctx", "4"}, 2, "--n-ctx does not apply to --method logreg"},
		{[]string{"--method", "coop", "--shots", "2", "--weights", weights, "--class-names", filepath.Join(dir, "x.npy")}, 1, "x.npy"},
	} {
		code, _, stderr := run("", append(base, test.args...)...)
		if code != test.code || !strings.Contains(stderr, test.msg) {
			t.Errorf("test %d: exit %d %q, want exit %d mentioning %q", i, code, stderr, test.code, test.msg)
		}
	}
	out := filepath.Join(dir, "r.json")
	code, _, stderr := run("", append(base, "--method", "coop", "--shots", "2", "--weights", weights, "--class-names", names,
		"--ctx-init", "a photo of a", "--epochs", "5", "-o", out)...)
	if code != 0 {
		t.Fatalf("probe --method coop: exit %d:\n%s", code, stderr)
	}
	var r results.Result
	if err := results.Load(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Method != "coop" || r.Shots != 2 || r.Train != 6 || r.Hyperparameters["n_ctx"] != 4 || r.Hyperparameters["epochs"] != 5 {
		t.Errorf("result %+v: want coop, 2 shots, 6 training images, 4 context vectors (a photo of a), 5 epochs", r)
	}
}

// coopFeatureFiles writes three classes of 32-d features (the fixture's embedding),
// four images each, their labels and class names into dir for probe --method coop.
func coopFeatureFiles(t *testing.T, dir string) (feats, labels, names string) {
	t.Helper()
	const k, d = 3, 32
	var x []float32
	var y []int64
	for c := range k {
		for i := range 4 {
			for j := range d {
				x = append(x, float32(math.Sin(float64(c*7+j)))+0.1*float32(math.Cos(float64(i*13+j))))
			}
			y = append(y, int64(c))
		}
	}
	write := func(name string, f func(string) error) string {
		p := filepath.Join(dir, name)
		if err := f(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	feats = write("x.npy", func(p string) error { return npy.WriteFloat32(p, []int{k * 4, d}, x) })
	labels = write("y.npy", func(p string) error { return npy.WriteInt64(p, []int{k * 4}, y) })
	names = write("names.txt", func(p string) error { return os.WriteFile(p, []byte("cat\ndog\nbird\n"), 0o644) })
	return feats, labels, names
}
