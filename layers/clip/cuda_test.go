//go:build gorgoclip_cuda

package clip

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers"
)

// cudaTol is the GPU's agreement with the goldens and the CPU path: cuBLAS and the
// kernels sum in other orders than OpenBLAS and the Go kernels.
const cudaTol = 1e-3

// TestCUDAParityGolden is TestParity on the GPU.
func TestCUDAParityGolden(t *testing.T) {
	testfix.CUDA(t)
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
	testfix.CUDA(t)
	cpu := randomModel(t, "ViT-B/32", WithBatchSize(3))
	gpu := randomModel(t, "ViT-B/32", WithBatchSize(3), WithDevice("cuda"))
	pix := testPixels(4, 224)
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
		agree(t, "image "+string(s), gi[s], ci[s], 1)
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
	agree(t, "text features", gt, ct, 1)
}

// agree fails when the GPU's result g differs from the CPU's c by more than cudaTol
// times c's largest magnitude or floor, whichever is larger.
func agree(t *testing.T, name string, g, c []float32, floor float64) {
	t.Helper()
	if len(g) != len(c) || len(c) == 0 {
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
	if d > cudaTol*math.Max(floor, s) || s == 0 {
		t.Errorf("%s: GPU and CPU differ by %g (scale %g)", name, d, s)
	}
}

// TestCUDACopies: each image batch copies its pixels in and its features out, each
// text batch its embedded tokens and end-of-text positions in and its features out;
// the weights went up once, before the first run.
func TestCUDACopies(t *testing.T) {
	testfix.CUDA(t)
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

// cudaGoldens adds a GPU model's text features and logits_per_image to its results got
// (golden name -> result; image_features must be there) and compares each with the
// fixture model's golden at cudaTol.
func cudaGoldens(t *testing.T, m *Model, model string, got map[string][]float32) {
	t.Helper()
	if !strings.HasPrefix(m.Device(), "cuda") {
		t.Fatalf("model runs on %s", m.Device())
	}
	var err error
	ids, rows := goldenTokensOf(t, model)
	if got["text_features"], err = m.EncodeTexts(ids, rows); err != nil {
		t.Fatal(err)
	}
	if got["logits_per_image"], err = m.Logits(got["image_features"], got["text_features"]); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(got))
	for name := range got {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		compare(t, name, got[name], goldenOf(t, model, name), cudaTol)
	}
}

// TestCUDAParityGoldenResNet is TestParityResNet on the GPU: OpenAI's ModifiedResNet
// (fixtures/clip-tiny-rn) in both layouts, batches of 2 ending in a partial one.
func TestCUDAParityGoldenResNet(t *testing.T) {
	testfix.CUDA(t)
	const model = "clip-tiny-rn"
	for _, layout := range []string{"openai", "open_clip"} {
		t.Run(layout, func(t *testing.T) {
			m, err := Load(testfix.Shared(t, filepath.Join("fixtures", model, layout)), WithBatchSize(2), WithDevice("cuda"))
			if err != nil {
				t.Fatal(err)
			}
			pix := goldenOf(t, model, "pixels")
			img, err := m.ImageStages(pix.Data, pix.Shape[0], StageStem, ResNetStage(1), ResNetStage(4), StageFeatures)
			if err != nil {
				t.Fatal(err)
			}
			cudaGoldens(t, m, model, map[string][]float32{
				"vision_stem": img[StageStem], "vision_layer1": img[ResNetStage(1)], "vision_layer4": img[ResNetStage(4)],
				"vision_attnpool": img[StageFeatures], "image_features": img[StageFeatures],
			})
		})
	}
}

// TestCUDAParityGoldenOpenCLIP is TestParityOpenCLIP on the GPU: exact GELU, head
// width 32, fractional MLP ratios and layer scale (fixtures/openclip-tiny).
func TestCUDAParityGoldenOpenCLIP(t *testing.T) {
	testfix.CUDA(t)
	const model = "openclip-tiny"
	m, err := Load(testfix.Shared(t, "fixtures/"+model+"/open_clip"), WithBatchSize(2), WithDevice("cuda"))
	if err != nil {
		t.Fatal(err)
	}
	pix := goldenOf(t, model, "pixels")
	n := pix.Shape[0]
	img, err := m.ImageStages(pix.Data, n, StageEmbedded, BlockStage(0), StageFeatures)
	if err != nil {
		t.Fatal(err)
	}
	ids, rows := goldenTokensOf(t, model)
	txt, err := m.TextStages(ids, rows, BlockStage(0))
	if err != nil {
		t.Fatal(err)
	}
	cudaGoldens(t, m, model, map[string][]float32{
		"vision_ln_pre":  img[StageEmbedded],
		"vision_block0":  tokenFirst(img[BlockStage(0)], n, m.Config().Vision.Width),
		"image_features": img[StageFeatures],
		"text_block0":    tokenFirst(txt[BlockStage(0)], rows, m.Config().Text.Width),
	})
}

// TestCUDAParityCPURN50 compares the GPU with the CPU on RN50 with random weights,
// every stage relative to its largest magnitude however small (PyTorch's default
// convolution init shrinks the activations stage by stage, to about 0.01 in layer4,
// where an absolute 1e-3 would pass anything). OpenAI initialises the last
// BatchNorm gain of each bottleneck (bn3) to zero, which would make every conv3, and
// with it a third of the convolutions, contribute nothing: those gains are drawn from
// [0.5, 1.5) instead.
func TestCUDAParityCPURN50(t *testing.T) {
	testfix.CUDA(t)
	cfg, err := layers.Preset("RN50")
	if err != nil {
		t.Fatal(err)
	}
	ck, err := RandomCheckpoint(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2, 3))
	gains := 0
	for key, w := range ck.Tensors {
		if strings.HasPrefix(key, "visual.layer") && strings.HasSuffix(key, ".bn3.weight") {
			for i := range w.Data {
				w.Data[i] = 0.5 + rng.Float32()
			}
			gains++
		}
	}
	if gains != 16 {
		t.Fatalf("%d bn3 gains in RN50's checkpoint, want 16 (one per bottleneck)", gains)
	}
	models := map[string]*Model{}
	for _, dev := range []string{"cpu", "cuda"} {
		if models[dev], err = New(ck, WithBatchSize(2), WithDevice(dev)); err != nil {
			t.Fatal(err)
		}
	}
	const n = 2
	pix := make([]float32, n*3*224*224)
	for i := range pix {
		pix[i] = float32(rng.NormFloat64())
	}
	stages := []Stage{StageStem, ResNetStage(1), ResNetStage(2), ResNetStage(3), ResNetStage(4), StagePooled, StageFeatures}
	res := map[string]map[Stage][]float32{}
	for dev, m := range models {
		if res[dev], err = m.ImageStages(pix, n, stages...); err != nil {
			t.Fatalf("%s: %v", dev, err)
		}
	}
	for _, s := range stages {
		agree(t, string(s), res["cuda"][s], res["cpu"][s], 0)
	}
}

// TestCUDAGradientsGolden is TestGradientsMatchGolden and TestAttentionMatchesGolden
// on the GPU: the loss gradients with respect to the pixels and the token embeddings,
// and every block's attention weights, against PyTorch autograd on OpenAI's code.
func TestCUDAGradientsGolden(t *testing.T) {
	testfix.CUDA(t)
	m := loadLayout(t, "openai", WithBatchSize(4), WithDevice("cuda"))
	px := golden(t, "pixels")
	tokens, rows := goldenTokens(t)
	g, err := m.Gradients(px.Data, px.Shape[0], tokens, rows, goldenTargets(t))
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "logits_per_image", g.LogitsPerImage, golden(t, "logits_per_image"), cudaTol)
	compareGradGoldens(t, g)
	img, err := m.ImageStages(px.Data, px.Shape[0], StageAttention)
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, "grad/vision_attention")
	compare(t, "vision_attention", LayerMajor(img[StageAttention], want.Shape[1], want.Shape[0]), want, 1e-5)
	txt, err := m.TextStages(tokens, rows, StageAttention)
	if err != nil {
		t.Fatal(err)
	}
	want = golden(t, "grad/text_attention")
	compare(t, "text_attention", LayerMajor(txt[StageAttention], want.Shape[1], want.Shape[0]), want, 1e-5)
}

// TestCUDAGradientsResNet compares a ResNet tower's gradients on the GPU with the
// CPU's (checked there against finite differences): pixels, the last stage and a
// convolution's weight.
func TestCUDAGradientsResNet(t *testing.T) {
	testfix.CUDA(t)
	dir := testfix.Shared(t, "fixtures/clip-tiny-rn/openai")
	px := goldenOf(t, "clip-tiny-rn", "pixels")
	var ref map[string][]float32
	for _, dev := range []string{"cpu", "cuda"} {
		m, err := Load(dir, WithBatchSize(2), WithDevice(dev))
		if err != nil {
			t.Fatal(err)
		}
		n, e := px.Shape[0], m.Config().EmbedDim
		rng := rand.New(rand.NewPCG(5, 6))
		seed := make([]float32, n*e)
		for i := range seed {
			seed[i] = float32(rng.NormFloat64())
		}
		g, err := m.ImageGradients(px.Data, n, seed, WRTPixels, "layer4", "visual.layer1.0.conv1.weight")
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = g
			continue
		}
		for k, w := range ref {
			if d, at := maxDiff(g[k], w); d > 1e-4*largest(w) || len(g[k]) != len(w) {
				t.Errorf("d/%s: GPU and CPU differ by %g at %d (largest %g)", k, d, at, largest(w))
			}
		}
	}
}

// TestCUDATextLossGradients runs prompt learning's step on the GPU: the text tower's
// forward pass, the loss on the host (a Host node) and the backward pass in one run,
// against the CPU's.
func TestCUDATextLossGradients(t *testing.T) {
	testfix.CUDA(t)
	tokens, rows := goldenTokens(t)
	img := golden(t, "image_features")
	targets := goldenTargets(t)
	var want map[string][]float32
	var wantLoss float64
	for _, dev := range []string{"cpu", "cuda"} {
		m := loadLayout(t, "openai", WithBatchSize(32), WithDevice(dev))
		in, err := m.EmbedTokens(tokens, rows)
		if err != nil {
			t.Fatal(err)
		}
		loss, got, err := m.TextLossGradients(in, func(txt, grad []float32) (float64, error) {
			l, err := CrossEntropy(img.Data, txt, img.Shape[1], math.Exp(float64(m.LogitScale())), targets)
			if err != nil {
				return 0, err
			}
			copy(grad, l.Texts)
			return l.Value, nil
		}, WRTEmbeddings, "ln_final.weight")
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want, wantLoss = got, loss
			continue
		}
		if math.Abs(loss-wantLoss) > 1e-4*math.Abs(wantLoss) {
			t.Errorf("loss %g on the GPU, %g on the CPU", loss, wantLoss)
		}
		for k, w := range want {
			if d, at := maxDiff(got[k], w); d > 1e-4*largest(w) || len(got[k]) != len(w) {
				t.Errorf("d/%s: GPU and CPU differ by %g at %d (largest %g)", k, d, at, largest(w))
			}
		}
	}
}
