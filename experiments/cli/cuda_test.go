//go:build gorgoclip_cuda

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// TestCUDACommands: embed --device cuda matches the goldens within the GPU tolerance,
// and zeroshot and compare --device cuda reach the CPU's zero-shot and probe results
// on a small image folder (the commands' device plumbing, end to end).
func TestCUDACommands(t *testing.T) {
	testfix.CUDA(t)
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	tmp := t.TempDir()
	for _, c := range []struct{ flag, input, golden string }{
		{"--pixels", "pixels", "image_features"},
		{"--tokens", "tokens", "text_features"},
	} {
		out := filepath.Join(tmp, c.golden+".npy")
		code, _, stderr := run("", "embed", "--device", "cuda", "--weights", filepath.Join(tiny, "openai"),
			c.flag, filepath.Join(tiny, "golden", c.input+".npy"), "-o", out)
		if code != 0 {
			t.Fatalf("embed %s --device cuda: exit %d: %s", c.flag, code, stderr)
		}
		got, err := npy.ReadFloat32(out)
		if err != nil {
			t.Fatal(err)
		}
		want, err := npy.ReadFloat32(filepath.Join(tiny, "golden", c.golden+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Data) != len(want.Data) {
			t.Fatalf("embed %s: %v values, want %v", c.flag, got.Shape, want.Shape)
		}
		d := embedMaxDiff(got.Data, want.Data)
		t.Logf("embed %s --device cuda: %s max |diff| %.3g", c.flag, c.golden, d)
		if d > 1e-3 {
			t.Errorf("embed %s --device cuda: %s differs from golden by %g", c.flag, c.golden, d)
		}
	}

	ds := biImageFolder(t, 3, 3)
	// Top-1 and the confusion matrix of each result: the features differ in the last
	// digits, the predictions must not.
	type result struct {
		Metrics   map[string]float64 `json:"metrics"`
		N         int                `json:"n_test"`
		Confusion [][]int            `json:"confusion_matrix"`
	}
	type accuracy struct {
		ZeroShot []result `json:"zeroshot"`
		Probes   []result `json:"linear_probe"`
	}
	results := map[string]accuracy{}
	zeroshot := map[string][]result{}
	for _, dev := range []string{"cpu", "cuda"} {
		code, stdout, stderr := run("", "zeroshot", "--device", dev, "--weights", filepath.Join(tiny, "openai"),
			"--vocab", testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz"), "--dataset", "imagefolder:"+ds)
		if code != 0 {
			t.Fatalf("zeroshot --device %s: exit %d:\n%s", dev, code, stderr)
		}
		var zs accuracy // zeroshot prints the results file's object
		if err := json.Unmarshal([]byte(stdout), &zs); err != nil || len(zs.ZeroShot) == 0 || zs.ZeroShot[0].N != 6 {
			t.Fatalf("zeroshot --device %s: %v, results:\n%s", dev, err, stdout)
		}
		zeroshot[dev] = zs.ZeroShot

		code, stderr, out := biCompare(t, ds, "--device", dev)
		if code != 0 {
			t.Fatalf("compare --device %s: exit %d:\n%s", dev, code, stderr)
		}
		raw, err := os.ReadFile(filepath.Join(out, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		var a accuracy
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if len(a.ZeroShot) == 0 || len(a.Probes) == 0 || a.ZeroShot[0].N != 6 {
			t.Fatalf("compare --device %s: results.json lacks zero-shot or probe results:\n%s", dev, raw)
		}
		results[dev] = a
	}
	cpu, gpu := results["cpu"], results["cuda"]
	same := func(what string, c, g []result, key string) {
		t.Helper()
		if len(c) != len(g) {
			t.Fatalf("%s: %d results on the CPU, %d with cuda", what, len(c), len(g))
		}
		for i := range c {
			t.Logf("%s %d: %s cpu %v, cuda %v", what, i, key, c[i].Metrics[key], g[i].Metrics[key])
			if c[i].Metrics[key] != g[i].Metrics[key] || !reflect.DeepEqual(c[i].Confusion, g[i].Confusion) {
				t.Errorf("%s %d differs: cpu %+v, cuda %+v", what, i, c[i], g[i])
			}
		}
	}
	same("zeroshot command", zeroshot["cpu"], zeroshot["cuda"], "acc1")
	same("compare zero-shot", cpu.ZeroShot, gpu.ZeroShot, "acc1")
	same("compare probe", cpu.Probes, gpu.Probes, "lp_acc1")
}

// TestCUDAGrad: grad --device cuda matches PyTorch autograd's gradients, and embed
// --attention --device cuda its attention maps, as on the CPU.
func TestCUDAGrad(t *testing.T) {
	testfix.CUDA(t)
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	gold := filepath.Join(tiny, "golden")
	out := t.TempDir()
	code, _, stderr := run("", "grad", "--device", "cuda", "--weights", filepath.Join(tiny, "openai"), "--pixels", filepath.Join(gold, "pixels.npy"),
		"--tokens", filepath.Join(gold, "tokens.npy"), "--targets", filepath.Join(gold, "grad/targets.npy"), "-o", out, "--batch", "4")
	if code != 0 {
		t.Fatalf("grad --device cuda: exit %d: %s", code, stderr)
	}
	for _, f := range []string{"pixels_grad.npy", "token_embeddings_grad.npy"} {
		checkGolden(t, filepath.Join(out, f), filepath.Join(gold, "grad", f), 1e-4, true)
	}
	att := filepath.Join(out, "vision_attention.npy")
	code, _, stderr = run("", "embed", "--device", "cuda", "--weights", filepath.Join(tiny, "openai"), "--pixels", filepath.Join(gold, "pixels.npy"),
		"-o", filepath.Join(out, "f.npy"), "--attention", att, "--batch", "4")
	if code != 0 {
		t.Fatalf("embed --attention --device cuda: exit %d: %s", code, stderr)
	}
	checkGolden(t, att, filepath.Join(gold, "grad", "vision_attention.npy"), 1e-5, false)
}

// TestCUDAProbeCoOp trains CoOp's prompts on the GPU (the text tower's forward pass,
// the loss on the host and the backward pass, every step) and on the CPU from the same
// seed: the test logits must agree.
func TestCUDAProbeCoOp(t *testing.T) {
	testfix.CUDA(t)
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	dir := t.TempDir()
	feats, labels, names := coopFeatureFiles(t, dir)
	logits := map[string][]float32{}
	for _, dev := range []string{"cpu", "cuda"} {
		out := filepath.Join(dir, dev+".logits.npy")
		code, _, stderr := run("", "probe", "--train-features", feats, "--train-labels", labels, "--test-features", feats,
			"--test-labels", labels, "--method", "coop", "--shots", "2", "--weights", weights, "--class-names", names,
			"--ctx-init", "a photo of a", "--epochs", "3", "--device", dev, "--logits-out", out)
		if code != 0 {
			t.Fatalf("probe --method coop --device %s: exit %d:\n%s", dev, code, stderr)
		}
		l, err := npy.ReadFloat32(out)
		if err != nil {
			t.Fatal(err)
		}
		logits[dev] = l.Data
	}
	d := embedMaxDiff(logits["cuda"], logits["cpu"])
	t.Logf("CoOp test logits: max |gpu-cpu| %.3g", d)
	if len(logits["cuda"]) != len(logits["cpu"]) || d > 1e-3 {
		t.Errorf("CoOp's test logits differ by %g between the GPU and the CPU (%d and %d values)", d, len(logits["cuda"]), len(logits["cpu"]))
	}
}
