//go:build gorgoclip_cuda

package clip

import (
	"math"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
)

// cudaTol is the GPU's agreement with the goldens and the CPU path: cuBLAS and the
// kernels sum in other orders than OpenBLAS and the Go kernels.
const cudaTol = 1e-3

func cudaModelOrSkip(t *testing.T) {
	t.Helper()
	if _, err := graph.OpenDevice("cuda"); err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
}

// TestCUDAParityGolden is TestParity on the GPU.
func TestCUDAParityGolden(t *testing.T) {
	cudaModelOrSkip(t)
	m := loadLayout(t, "openai", WithBatchSize(2), WithDevice("cuda"))
	t.Log(m.Device())
	if !strings.HasPrefix(m.Device(), "cuda") {
		t.Fatalf("model runs on %s", m.Device())
	}
	pix := golden(t, "pixels")
	n := pix.Shape[0]
	img, err := m.ImageStages(pix.Data, n, StageEmbedded, BlockStage(0), StageEncoder, StageFeatures)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "vision_ln_pre", img[StageEmbedded], golden(t, "vision_ln_pre"), cudaTol)
	compare(t, "vision_block0", img[BlockStage(0)], golden(t, "vision_block0"), cudaTol)
	compare(t, "vision_encoder", img[StageEncoder], golden(t, "vision_encoder"), cudaTol)
	compare(t, "image_features", img[StageFeatures], golden(t, "image_features"), cudaTol)
	ids, rows := goldenTokens(t)
	txt, err := m.TextStages(ids, rows, BlockStage(0), StageFinal)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "text_block0", txt[BlockStage(0)], golden(t, "text_block0"), cudaTol)
	compare(t, "text_ln_final", txt[StageFinal], golden(t, "text_ln_final"), cudaTol)
	feats, err := m.EncodeTexts(ids, rows)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "text_features", feats, golden(t, "text_features"), cudaTol)
	logits, err := m.Logits(img[StageFeatures], feats)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "logits_per_image", logits, golden(t, "logits_per_image"), cudaTol)
}

// TestCUDAParityCPU compares the GPU with the CPU on ViT-B/32 with random weights,
// relative to the largest magnitude of each result.
func TestCUDAParityCPU(t *testing.T) {
	cudaModelOrSkip(t)
	cpu := randomModel(t, "ViT-B/32", WithBatchSize(3))
	gpu := randomModel(t, "ViT-B/32", WithBatchSize(3), WithDevice("cuda"))
	pix := testPixels(4, 224)
	check := func(name string, g, c []float32) {
		t.Helper()
		if len(g) != len(c) {
			t.Fatalf("%s: %d values on the GPU, %d on the CPU", name, len(g), len(c))
		}
		var d, s float64
		for i := range c {
			s = math.Max(s, math.Abs(float64(c[i])))
			e := math.Abs(float64(g[i]) - float64(c[i]))
			if math.IsNaN(e) {
				e = math.Inf(1)
			}
			d = math.Max(d, e)
		}
		t.Logf("%-16s max |gpu-cpu| %.3g, max |cpu| %.3g", name, d, s)
		if d > cudaTol*math.Max(1, s) {
			t.Errorf("%s: GPU and CPU differ by %g (scale %g)", name, d, s)
		}
	}
	stages := []Stage{StageEmbedded, StageEncoder, StagePooled, StageFeatures}
	gi, err := gpu.ImageStages(pix, 4, stages...)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cpu.ImageStages(pix, 4, stages...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stages {
		check("image "+string(s), gi[s], ci[s])
	}
	ids := make([]int32, 4*77)
	for r := range 4 {
		ids[r*77] = 49406
		for j := 1; j < 6+r; j++ {
			ids[r*77+j] = int32((r*131 + j*977) % 49000)
		}
		ids[r*77+6+r] = 49407
	}
	gt, err := gpu.EncodeTexts(ids, 4)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := cpu.EncodeTexts(ids, 4)
	if err != nil {
		t.Fatal(err)
	}
	check("text features", gt, ct)
}

// TestCUDACopies: each image batch copies its pixels in and its features out, each
// text batch its embedded tokens and end-of-text positions in and its features out;
// the weights went up once, before the first run.
func TestCUDACopies(t *testing.T) {
	cudaModelOrSkip(t)
	m := randomModel(t, "ViT-B/32", WithBatchSize(8), WithDevice("cuda"))
	pix := testPixels(16, 224)
	if _, err := m.EncodeImages(pix, 16); err != nil { // compiles, uploads the vision weights
		t.Fatal(err)
	}
	before := graph.CopyStats()
	if _, err := m.EncodeImages(pix, 16); err != nil {
		t.Fatal(err)
	}
	c := graph.CopyStats().Sub(before)
	t.Logf("16 images in batches of 8: %+v", c)
	if c.HostToDevice != 2 || c.DeviceToHost != 2 || c.Weights != 0 || c.BytesIn != 4*int64(len(pix)) || c.BytesOut != 4*16*512 {
		t.Errorf("copies %+v, want 2 in (the pixels) and 2 out (the features)", c)
	}
	ids := make([]int32, 8*77)
	for r := range 8 {
		ids[r*77], ids[r*77+1], ids[r*77+2] = 49406, int32(100+r), 49407
	}
	if _, err := m.EncodeTexts(ids, 8); err != nil {
		t.Fatal(err)
	}
	before = graph.CopyStats()
	if _, err := m.EncodeTexts(ids, 8); err != nil {
		t.Fatal(err)
	}
	c = graph.CopyStats().Sub(before)
	t.Logf("8 prompts: %+v", c)
	if c.HostToDevice != 2 || c.DeviceToHost != 1 || c.Weights != 0 {
		t.Errorf("copies %+v, want 2 in (tokens, eot) and 1 out", c)
	}
}
