package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/results"
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
	code, out, errOut := run("", probeArgs(dir, "--sweep", "--shots", "2", "--seed", "3", "--val-fraction", "0.25", "-o", outPath)...)
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
	if r.Shots != 2 || r.Seed != 3 || r.Train != 6 || !(r.C >= 1e-6 && r.C <= 1e6) {
		t.Errorf("got shots %d seed %d n_train %d C %v want 2 3 6 and C in [1e-6, 1e6]", r.Shots, r.Seed, r.Train, r.C)
	}
	if !strings.Contains(errOut, "sweep: 6 training and 15 validation examples") || !strings.Contains(errOut, "sweep: C=1e-06") {
		t.Errorf("stderr lacks sweep progress:\n%s", errOut)
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
	for i, test := range []struct {
		args []string
		code int
		want []string
	}{
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
	} {
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
	if _, err := os.Stat(filepath.Join(dir, "r.json")); err == nil {
		t.Errorf("a failed run wrote results")
	}
}
