package clip

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
)

// parityTol is the agreement the fixtures promise in float32 (see fixtures/README.md).
const parityTol = 1e-4

// golden reads fixtures/clip-tiny-a/golden/name.npy.
func golden(t *testing.T, name string) *npy.Float32 { return goldenOf(t, "clip-tiny-a", name) }

// goldenOf reads fixtures/model/golden/name.npy.
func goldenOf(t *testing.T, model, name string) *npy.Float32 {
	t.Helper()
	g, err := npy.ReadFloat32(testfix.Shared(t, "fixtures/"+model+"/golden/"+name+".npy"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// goldenTokens reads clip-tiny-a's [13,77] prompt ids as int32.
func goldenTokens(t *testing.T) ([]int32, int) { return goldenTokensOf(t, "clip-tiny-a") }

// goldenTokensOf reads a fixture model's prompt ids as int32.
func goldenTokensOf(t *testing.T, model string) ([]int32, int) {
	t.Helper()
	g, err := npy.ReadInt64(testfix.Shared(t, "fixtures/"+model+"/golden/tokens.npy"))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, len(g.Data))
	for i, v := range g.Data {
		ids[i] = int32(v)
	}
	return ids, g.Shape[0]
}

// maxDiff returns the largest absolute difference and where it is.
func maxDiff(got, want []float32) (float64, int) {
	var d float64
	at := -1
	for i := range want {
		if e := math.Abs(float64(got[i]) - float64(want[i])); e > d || math.IsNaN(e) {
			d, at = e, i
			if math.IsNaN(e) {
				return math.Inf(1), i
			}
		}
	}
	return d, at
}

// compare fails when got differs from the golden tensor by more than tol and always
// logs the largest difference.
func compare(t *testing.T, name string, got []float32, want *npy.Float32, tol float64) {
	t.Helper()
	if len(got) != len(want.Data) {
		t.Errorf("%s: got %d values, want %d (shape %v)", name, len(got), len(want.Data), want.Shape)
		return
	}
	d, at := maxDiff(got, want.Data)
	msg := fmt.Sprintf("%-18s %v max |diff| %.3g", name, want.Shape, d)
	if at >= 0 {
		msg += fmt.Sprintf(" at flat index %d (got %g want %g)", at, got[at], want.Data[at])
	}
	if d > tol {
		t.Errorf("%s > %g", msg, tol)
	} else {
		t.Log(msg)
	}
}

// loadLayout loads the tiny fixture model in one layout (openai .npy, hf safetensors,
// hf-bin pytorch_model.bin); every layout is required.
func loadLayout(t *testing.T, layout string, opts ...Option) *Model {
	t.Helper()
	dir := testfix.Shared(t, filepath.Join("fixtures/clip-tiny-a", layout))
	m, err := Load(dir, opts...)
	if err != nil {
		t.Fatalf("%s: %v", layout, err)
	}
	return m
}

func TestParity(t *testing.T) {
	if testing.Short() {
		t.Skip("parity with the fixture model runs the full towers")
	}
	for _, layout := range []string{"openai", "hf", "hf-bin"} {
		t.Run(layout, func(t *testing.T) {
			// Batch size 2 makes the 5 images and 13 prompts end in a partial batch of 1.
			m := loadLayout(t, layout, WithBatchSize(2))
			pix := golden(t, "pixels")
			n := pix.Shape[0]
			img, err := m.ImageStages(pix.Data, n, StageEmbedded, BlockStage(0), StageEncoder, StageFeatures)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "vision_ln_pre", img[StageEmbedded], golden(t, "vision_ln_pre"), parityTol)
			compare(t, "vision_block0", img[BlockStage(0)], golden(t, "vision_block0"), parityTol)
			compare(t, "vision_encoder", img[StageEncoder], golden(t, "vision_encoder"), parityTol)
			compare(t, "image_features", img[StageFeatures], golden(t, "image_features"), parityTol)

			ids, rows := goldenTokens(t)
			txt, err := m.TextStages(ids, rows, BlockStage(0), StageFinal)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "text_block0", txt[BlockStage(0)], golden(t, "text_block0"), parityTol)
			compare(t, "text_ln_final", txt[StageFinal], golden(t, "text_ln_final"), parityTol)
			feats, err := m.EncodeTexts(ids, rows) // trimmed to the longest prompt per batch
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "text_features", feats, golden(t, "text_features"), parityTol)

			logits, err := m.Logits(img[StageFeatures], feats)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "logits_per_image", logits, golden(t, "logits_per_image"), parityTol)
		})
	}
}

// TestParityResNet checks OpenAI's ModifiedResNet (fixtures/clip-tiny-rn) in both
// layouts: OpenAI .npy files and open_clip's hub files.
func TestParityResNet(t *testing.T) {
	if testing.Short() {
		t.Skip("parity with the fixture model runs the full towers")
	}
	const model = "clip-tiny-rn"
	for _, layout := range []string{"openai", "open_clip"} {
		t.Run(layout, func(t *testing.T) {
			m, err := Load(testfix.Shared(t, filepath.Join("fixtures", model, layout)), WithBatchSize(2))
			if err != nil {
				t.Fatal(err)
			}
			pix := goldenOf(t, model, "pixels")
			img, err := m.ImageStages(pix.Data, pix.Shape[0], StageStem, ResNetStage(1), ResNetStage(4), StageFeatures)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "vision_stem", img[StageStem], goldenOf(t, model, "vision_stem"), parityTol)
			compare(t, "vision_layer1", img[ResNetStage(1)], goldenOf(t, model, "vision_layer1"), parityTol)
			compare(t, "vision_layer4", img[ResNetStage(4)], goldenOf(t, model, "vision_layer4"), parityTol)
			compare(t, "vision_attnpool", img[StageFeatures], goldenOf(t, model, "vision_attnpool"), parityTol)
			compare(t, "image_features", img[StageFeatures], goldenOf(t, model, "image_features"), parityTol)
			textParity(t, m, model, img[StageFeatures])
		})
	}
}

// TestParityOpenCLIP checks an open_clip ViT with exact GELU, head width 32, MLP ratios
// 4.5 and 3.0 and layer scale (fixtures/openclip-tiny). Its block goldens are token
// first ([T, N, D]), as open_clip v2.24 keeps them.
func TestParityOpenCLIP(t *testing.T) {
	if testing.Short() {
		t.Skip("parity with the fixture model runs the full towers")
	}
	const model = "openclip-tiny"
	m, err := Load(testfix.Shared(t, "fixtures/"+model+"/open_clip"), WithBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config(); c.QuickGELU || c.Vision.Heads != 3 || c.Vision.LayerScaleInit == 0 {
		t.Fatalf("config %+v: want GELU, 3 vision heads, layer scale", c)
	}
	pix := goldenOf(t, model, "pixels")
	n := pix.Shape[0]
	img, err := m.ImageStages(pix.Data, n, StageEmbedded, BlockStage(0), StageFeatures)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "vision_ln_pre", img[StageEmbedded], goldenOf(t, model, "vision_ln_pre"), parityTol)
	compare(t, "vision_block0", tokenFirst(img[BlockStage(0)], n, 96), goldenOf(t, model, "vision_block0"), parityTol)
	compare(t, "image_features", img[StageFeatures], goldenOf(t, model, "image_features"), parityTol)
	ids, rows := goldenTokensOf(t, model)
	txt, err := m.TextStages(ids, rows, BlockStage(0))
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "text_block0", tokenFirst(txt[BlockStage(0)], rows, 64), goldenOf(t, model, "text_block0"), parityTol)
	textParity(t, m, model, img[StageFeatures])
}

// textParity checks a fixture model's text features and its logits_per_image.
func textParity(t *testing.T, m *Model, model string, imageFeatures []float32) {
	t.Helper()
	ids, rows := goldenTokensOf(t, model)
	feats, err := m.EncodeTexts(ids, rows)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "text_features", feats, goldenOf(t, model, "text_features"), parityTol)
	logits, err := m.Logits(imageFeatures, feats)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "logits_per_image", logits, goldenOf(t, model, "logits_per_image"), parityTol)
}

// tokenFirst reorders x [N, T, D] as [T, N, D].
func tokenFirst(x []float32, n, d int) []float32 {
	t := len(x) / (n * d)
	out := make([]float32, len(x))
	for i := range n {
		for j := range t {
			copy(out[(j*n+i)*d:(j*n+i+1)*d], x[(i*t+j)*d:(i*t+j+1)*d])
		}
	}
	return out
}

// TestTextTrimming checks that running only up to the last end-of-text position gives
// the same features as the full 77-position run (exact by causality).
func TestTextTrimming(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the text tower twice")
	}
	m := loadLayout(t, "openai", WithBatchSize(4))
	ids, rows := goldenTokens(t)
	full, err := m.TextStages(ids, rows, StageFeatures, StageFinal) // a per-position stage forces all 77
	if err != nil {
		t.Fatal(err)
	}
	trimmed, err := m.EncodeTexts(ids, rows)
	if err != nil {
		t.Fatal(err)
	}
	d, at := maxDiff(trimmed, full[StageFeatures])
	t.Logf("trimmed vs full 77-token text features: max |diff| %.3g", d)
	// Causality makes the maths identical; only the GEMM blocking (and so the float32
	// summation order) changes with the matrix sizes.
	if d > 1e-5 {
		t.Errorf("trimmed vs full text features differ by %g at %d", d, at)
	}
	// The first batch of four prompts is short: its graph must have been trimmed.
	eot, _ := EndOfText(ids[:4*77], 4)
	longest := 0
	for _, e := range eot {
		longest = max(longest, e+1)
	}
	if longest >= 77 {
		t.Fatalf("fixture changed: first four prompts end at %v", eot)
	}
	if !m.cache.Has(fmt.Sprintf("text/b=4/l=%d/features", longest)) {
		t.Errorf("no trimmed graph of length %d was built", longest)
	}
}

// TestTransformFollowsConfig checks that the model's image transform takes its
// resolution and normalisation from the config (open_clip's preprocess_cfg).
func TestTransformFollowsConfig(t *testing.T) {
	ck, err := weights.Load(testfix.Shared(t, "fixtures/openclip-tiny/open_clip"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(ck)
	if err != nil {
		t.Fatal(err)
	}
	if tr := m.Transform(); tr.Size != 64 || !tr.Norm.IsCLIP() {
		t.Errorf("fixture transform %+v: want 64 px and CLIP's normalisation", tr)
	}
	ck.Config.Preprocess = &layers.PreprocessConfig{Mean: [3]float64{0.5, 0.5, 0.5}, Std: [3]float64{0.5, 0.5, 0.5}}
	if m, err = New(ck); err != nil {
		t.Fatal(err)
	}
	if n := m.Transform().Norm; n.Mean != [3]float32{0.5, 0.5, 0.5} || n.Std != [3]float32{0.5, 0.5, 0.5} {
		t.Errorf("transform normalisation %+v, want the config's", n)
	}
}

// TestPooledRowsOnly checks that the towers' pooled outputs run the last block's
// out_proj and MLP on the pooled rows only (layers.Transformer.Pooled), and that the
// features equal those pooled from every row (graph.Builder.SetPoolFromTaps).
func TestPooledRowsOnly(t *testing.T) {
	m := loadLayout(t, "openai")
	pix := golden(t, "pixels")
	ids, rows := goldenTokens(t)
	n, seq, w := pix.Shape[0], 77, m.cfg.Text.Width
	emb := make([]float32, rows*seq*w)
	if err := m.Text.Embed(emb, ids, rows, seq); err != nil {
		t.Fatal(err)
	}
	eots, err := EndOfText(ids, rows)
	if err != nil {
		t.Fatal(err)
	}
	eot := make([]float32, rows)
	for i, e := range eots {
		eot[i] = float32(e)
	}
	towers := []struct {
		name, fc    string // fc: the last block's c_fc
		items, rows int
		forward     func(b *graph.Builder) (*layers.TowerOutputs, error)
		inputs      map[string][]float32
	}{
		{"image", fmt.Sprintf("visual.transformer.resblocks.%d.mlp.c_fc", m.cfg.Vision.Layers-1), n, m.cfg.Vision.Tokens(),
			func(b *graph.Builder) (*layers.TowerOutputs, error) {
				return m.Visual.Forward(b, b.Input("pixels", n, len(pix.Data)/n), n)
			}, map[string][]float32{"pixels": pix.Data}},
		{"text", fmt.Sprintf("transformer.resblocks.%d.mlp.c_fc", m.cfg.Text.Layers-1), rows, seq,
			func(b *graph.Builder) (*layers.TowerOutputs, error) {
				return m.Text.Forward(b, b.Input("tokens", rows*seq, w), b.Input("eot", rows), rows, seq)
			}, map[string][]float32{"tokens": emb, "eot": eot}},
	}
	for _, tw := range towers {
		var feats [2][]float32
		for i, fromTaps := range []bool{false, true} {
			b := graph.NewBuilder()
			b.SetPoolFromTaps(fromTaps)
			o, err := tw.forward(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Output("features", o.Features); err != nil {
				t.Fatal(err)
			}
			mach, err := b.Compile()
			if err != nil {
				t.Fatal(err)
			}
			var fcRows []int
			for _, nd := range b.G.AllNodes() {
				if nd.Name() == tw.fc {
					fcRows = append(fcRows, nd.Shape()[0])
				}
			}
			want := tw.items
			if fromTaps {
				want = tw.items * tw.rows
			}
			if !slices.Equal(fcRows, []int{want}) {
				t.Errorf("%s, from taps %v: the last block's MLP runs on %v rows, want [%d]", tw.name, fromTaps, fcRows, want)
			}
			res, err := mach.Run(tw.inputs)
			if err != nil {
				t.Fatal(err)
			}
			feats[i] = res["features"].Data
			mach.Close()
		}
		if d, at := maxDiff(feats[0], feats[1]); d > 1e-6 {
			t.Errorf("%s: features pooled from the pooled rows and from every row differ by %g at %d", tw.name, d, at)
		}
	}
}
