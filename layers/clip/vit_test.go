package clip

import (
	"flag"
	"math"
	"testing"

	"github.com/gorgoclip/gorgoclip/layers"
)

var large = flag.Bool("large", false, "also run ViT-B/16 and ViT-L/14 with random weights (slow, several GB)")

// randomModel builds preset name with RandomCheckpoint(seed 1).
func randomModel(tb testing.TB, name string, opts ...Option) *Model {
	tb.Helper()
	cfg, err := layers.Preset(name)
	if err != nil {
		tb.Fatal(err)
	}
	ck, err := RandomCheckpoint(cfg, 1)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := New(ck, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// testPixels returns n deterministic images of side r.
func testPixels(n, r int) []float32 {
	p := make([]float32, n*3*r*r)
	for i := range p {
		p[i] = float32(math.Sin(float64(i) * 0.001))
	}
	return p
}

func TestRandomCheckpointDeterministic(t *testing.T) {
	cfg := layers.Config{EmbedDim: 8, QuickGELU: true, LayerNormEps: 1e-5,
		Vision: layers.VisionConfig{Kind: "vit", ImageResolution: 8, PatchSize: 4, Width: 16, Layers: 1, Heads: 2},
		Text:   layers.TextConfig{Kind: "transformer", ContextLength: 5, VocabSize: 10, Width: 16, Layers: 1, Heads: 2}}
	a, err := RandomCheckpoint(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomCheckpoint(cfg, 7)
	c, _ := RandomCheckpoint(cfg, 8)
	k := "visual.transformer.resblocks.0.attn.in_proj_weight"
	if d, _ := maxDiff(a.Tensors[k].Data, b.Tensors[k].Data); d != 0 {
		t.Errorf("same seed: %s differs by %g", k, d)
	}
	if d, _ := maxDiff(a.Tensors[k].Data, c.Tensors[k].Data); d == 0 {
		t.Errorf("seeds 7 and 8 gave the same %s", k)
	}
	if _, err := RandomCheckpoint(layers.Config{}, 1); err == nil {
		t.Error("zero config accepted")
	}
}

// checkPreset runs n images and two prompts through a random preset and checks shapes,
// finiteness, and that a batch of n equals the images run one at a time.
func checkPreset(t *testing.T, name string, n int) {
	m := randomModel(t, name, WithBatchSize(n))
	cfg := m.Config()
	pix := testPixels(n, cfg.Vision.ImageResolution)
	f, err := m.EncodeImages(pix, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != n*cfg.EmbedDim {
		t.Fatalf("%s: got %d features, want [%d,%d]", name, len(f), n, cfg.EmbedDim)
	}
	for i, v := range f {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s: feature %d is %v", name, i, v)
		}
	}
	if d, _ := maxDiff(f[:cfg.EmbedDim], f[cfg.EmbedDim:2*cfg.EmbedDim]); d == 0 {
		t.Errorf("%s: two different images have identical features", name)
	}
	one, err := m.EncodeImages(pix[len(pix)/n*(n-1):], 1) // last image alone (padded graph)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := maxDiff(one, f[(n-1)*cfg.EmbedDim:]); d > 1e-4 {
		t.Errorf("%s: image %d alone vs in a batch of %d: max |diff| %g", name, n-1, n, d)
	}
	toks := make([]int32, 2*cfg.Text.ContextLength)
	copy(toks, []int32{49406, 320, 1125, 539, 320, 49407})
	copy(toks[cfg.Text.ContextLength:], []int32{49406, 49407})
	tf, err := m.EncodeTexts(toks, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(tf) != 2*cfg.EmbedDim {
		t.Fatalf("%s: got %d text features, want [2,%d]", name, len(tf), cfg.EmbedDim)
	}
}

func TestViTB32Random(t *testing.T) {
	if testing.Short() {
		t.Skip("ViT-B/32 with random weights takes seconds")
	}
	checkPreset(t, "ViT-B/32", 2)
}

func TestLargePresetsRandom(t *testing.T) {
	if !*large {
		t.Skip("run with -large to build and run ViT-B/16 and ViT-L/14")
	}
	for _, name := range []string{"ViT-B/16", "ViT-L/14"} {
		t.Run(name, func(t *testing.T) { checkPreset(t, name, 2) })
	}
}

func TestInputErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the fixture model")
	}
	m := loadLayout(t, "openai")
	for i, test := range []struct {
		name string
		run  func() error
	}{
		{"too few pixels", func() error { _, err := m.EncodeImages(make([]float32, 10), 1); return err }},
		{"zero images", func() error { _, err := m.EncodeImages(nil, 0); return err }},
		{"ragged tokens", func() error { _, err := m.EncodeTexts(make([]int32, 7), 2); return err }},
		{"token out of vocabulary", func() error { _, err := m.EncodeTexts([]int32{49406, 60000, 3}, 1); return err }},
		{"negative token", func() error { _, err := m.EncodeTexts([]int32{-1, 49407}, 1); return err }},
		{"context too long", func() error { _, err := m.EncodeTexts(make([]int32, 78), 1); return err }},
		{"unknown stage", func() error { _, err := m.ImageStages(make([]float32, 3*64*64), 1, "nope"); return err }},
		{"ln_final on images", func() error { _, err := m.ImageStages(make([]float32, 3*64*64), 1, StageFinal); return err }},
	} {
		if err := test.run(); err == nil {
			t.Errorf("test %d (%s): got nil error", i, test.name)
		}
	}
}

func TestZeroShotWeights(t *testing.T) {
	// Class 0: templates (3,4) and (1,0) normalise to (.6,.8) and (1,0); mean (.8,.4).
	w, err := ZeroShotWeights([][]float32{{3, 4, 1, 0}, {0, 2}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	s := float32(math.Sqrt(0.8*0.8 + 0.4*0.4))
	want := []float32{0.8 / s, 0.4 / s, 0, 1}
	if d, at := maxDiff(w, want); d > 1e-6 {
		t.Errorf("got %v want %v (diff %g at %d)", w, want, d, at)
	}
	if _, err := ZeroShotWeights([][]float32{{1, 2, 3}}, 2); err == nil {
		t.Error("ragged class accepted")
	}
	l, err := Logits([]float32{2, 0}, w, 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := maxDiff(l, []float32{100 * 0.8 / s, 0}); d > 1e-4 {
		t.Errorf("logits %v", l)
	}
}

var benchSink []float32

// BenchmarkViTB32Images8 times ViT-B/32 images at batch 8 (random weights).
func BenchmarkViTB32Images8(b *testing.B) { benchImages(b, "ViT-B/32", 8) }

func benchImages(b *testing.B, name string, n int, opts ...Option) {
	m := randomModel(b, name, append(opts, WithBatchSize(n))...)
	pix := testPixels(n, m.Config().Vision.ImageResolution)
	if _, err := m.EncodeImages(pix, n); err != nil { // build the graph outside the timer
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := m.EncodeImages(pix, n)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = f
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkRN50Images8 times RN50's image tower at batch 8 (random weights).
func BenchmarkRN50Images8(b *testing.B) { benchImages(b, "RN50", 8) }

// BenchmarkViTB32Images32 times ViT-B/32 images at batch 32, the default batch size.
func BenchmarkViTB32Images32(b *testing.B) { benchImages(b, "ViT-B/32", 32) }
