package clip

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// goldenTargets reads golden/grad/targets.npy.
func goldenTargets(t *testing.T) []int {
	t.Helper()
	g, err := npy.ReadInt64(testfix.Shared(t, "fixtures/clip-tiny-a/golden/grad/targets.npy"))
	if err != nil {
		t.Fatal(err)
	}
	y := make([]int, len(g.Data))
	for i, v := range g.Data {
		y[i] = int(v)
	}
	return y
}

// largest returns max |x|.
func largest(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// compareGradGoldens compares g's gradients with respect to the pixels and the token
// embeddings with PyTorch autograd's, within 1e-4 of the largest golden value.
func compareGradGoldens(t *testing.T, g *LossGradients) {
	t.Helper()
	for _, c := range []struct {
		name string
		got  []float32
	}{{"pixels_grad", g.Pixels}, {"token_embeddings_grad", g.TokenEmbeddings}} {
		want := golden(t, "grad/"+c.name)
		compare(t, c.name, c.got, want, 1e-4*largest(want.Data))
	}
}

// TestGradientsMatchGolden checks the loss gradients with respect to the pixels and
// the token embeddings against PyTorch autograd on OpenAI's code, within 1e-4 of the
// largest gradient, with batches that split the images and prompts.
func TestGradientsMatchGolden(t *testing.T) {
	m := loadLayout(t, "openai", WithBatchSize(4))
	px := golden(t, "pixels")
	tokens, rows := goldenTokens(t)
	targets := goldenTargets(t)
	g, err := m.Gradients(px.Data, px.Shape[0], tokens, rows, targets)
	if err != nil {
		t.Fatal(err)
	}
	logits := golden(t, "logits_per_image")
	compare(t, "logits_per_image", g.LogitsPerImage, logits, parityTol)
	compareGradGoldens(t, g)
	// The loss, by hand from the golden logits.
	var want float64
	n, mm := logits.Shape[0], logits.Shape[1]
	for i := range n {
		row := logits.Data[i*mm : (i+1)*mm]
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v))
		}
		want += math.Log(s) - float64(row[targets[i]])
	}
	if math.Abs(g.Value-want) > 1e-3 {
		t.Errorf("loss %g, want %g", g.Value, want)
	}
}

// TestAttentionMatchesGolden checks every block's attention weights, image and text,
// against OpenAI's code within 1e-5.
func TestAttentionMatchesGolden(t *testing.T) {
	m := loadLayout(t, "openai", WithBatchSize(3))
	px := golden(t, "pixels")
	img, err := m.ImageStages(px.Data, px.Shape[0], StageAttention, StageFeatures)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "features with attention", img[StageFeatures], golden(t, "image_features"), parityTol)
	want := golden(t, "grad/vision_attention")
	compare(t, "vision_attention", LayerMajor(img[StageAttention], want.Shape[1], want.Shape[0]), want, 1e-5)
	tokens, rows := goldenTokens(t)
	txt, err := m.TextStages(tokens, rows, StageAttention)
	if err != nil {
		t.Fatal(err)
	}
	want = golden(t, "grad/text_attention")
	compare(t, "text_attention", LayerMajor(txt[StageAttention], want.Shape[1], want.Shape[0]), want, 1e-5)

	rn, err := Load(testfix.Shared(t, "fixtures/clip-tiny-rn/openai"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rn.ImageStages(testPixels(1, 64), 1, StageAttention); err == nil {
		t.Error("the attention of a ResNet tower (no blocks) was returned")
	}
}

// TestResNetPixelGradients checks a ResNet tower's pixel gradients against central
// differences of its features (and that its last stage's gradient comes out NCHW).
func TestResNetPixelGradients(t *testing.T) {
	m, err := Load(testfix.Shared(t, "fixtures/clip-tiny-rn/openai"), WithBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	px := goldenOf(t, "clip-tiny-rn", "pixels")
	n, e := px.Shape[0], m.Config().EmbedDim
	rng := rand.New(rand.NewPCG(5, 6))
	seed := make([]float32, n*e)
	for i := range seed {
		seed[i] = float32(rng.NormFloat64())
	}
	g, err := m.ImageGradients(px.Data, n, seed, WRTPixels, "layer4")
	if err != nil {
		t.Fatal(err)
	}
	if len(g["layer4"]) != n*512*2*2 {
		t.Errorf("layer4 gradient has %d values, want [%d,512,2,2]", len(g["layer4"]), n)
	}
	checkDirectional(t, "ResNet pixels", g[WRTPixels], px.Data, seed, n, rng, func(x []float32) []float32 {
		f, err := m.EncodeImages(x, n)
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

// checkDirectional compares <grad, v> with the central difference of <seed, f(x+hv)>
// along directions v made from the gradient itself, one per item (its rows of grad
// scaled to norm 100, other rows 0) plus random noise of norm ~1 everywhere: the
// towers run in float32, whose rounding buries the effect of a random direction
// (|grad| is ~1e-3 for the tiny models), while along the gradient a wrong gradient
// still shows (the true gradient's projection on it would not be its norm).
func checkDirectional(t *testing.T, what string, grad, x, seed []float32, items int, rng *rand.Rand, f func([]float32) []float32) {
	t.Helper()
	const h = 1e-3
	per := len(x) / items
	for k := range items {
		g := grad[k*per : (k+1)*per]
		norm := math.Sqrt(dot32(g, g))
		v := make([]float32, len(x))
		var analytic float64
		for i := range v {
			v[i] = float32(rng.NormFloat64() / math.Sqrt(float64(len(x))))
			if i/per == k {
				v[i] += float32(100 * float64(grad[i]) / norm)
			}
			analytic += float64(grad[i]) * float64(v[i])
		}
		at := func(s float32) float64 {
			y := make([]float32, len(x))
			for i := range y {
				y[i] = x[i] + s*v[i]
			}
			var l float64
			for i, fv := range f(y) {
				l += float64(seed[i]) * float64(fv)
			}
			return l
		}
		fd := (at(h) - at(-h)) / (2 * h)
		if math.Abs(fd-analytic) > 2e-2*math.Abs(analytic) {
			t.Errorf("%s, item %d: <grad, v> = %g, finite difference %g", what, k, analytic, fd)
		} else {
			t.Logf("%s, item %d: <grad, v> = %.6g, finite difference %.6g", what, k, analytic, fd)
		}
	}
}

func dot32(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

// TestWeightAndStageGradients checks gradients that can be worked out by hand from
// the forward stages: with features = pooled @ proj, dL/dproj = pooled^T dfeatures
// (summed over batches) and dL/dpooled = dfeatures proj^T.
func TestWeightAndStageGradients(t *testing.T) {
	m := loadLayout(t, "openai", WithBatchSize(2))
	px := golden(t, "pixels")
	n, e, d := px.Shape[0], m.Config().EmbedDim, m.Config().Vision.Width
	rng := rand.New(rand.NewPCG(7, 8))
	seed := make([]float32, n*e)
	for i := range seed {
		seed[i] = float32(rng.NormFloat64())
	}
	g, err := m.ImageGradients(px.Data, n, seed, "visual.proj", string(StagePooled))
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.ImageStages(px.Data, n, StagePooled)
	if err != nil {
		t.Fatal(err)
	}
	pooled := st[StagePooled]
	proj := m.CLIP.Visual.(*layers.VisionTransformer).Proj.Data().([]float32) // [D,E]
	wantProj, wantPooled := make([]float32, d*e), make([]float32, n*d)
	for i := range n {
		for a := range d {
			for c := range e {
				wantProj[a*e+c] += pooled[i*d+a] * seed[i*e+c]
				wantPooled[i*d+a] += seed[i*e+c] * proj[a*e+c]
			}
		}
	}
	for name, want := range map[string][]float32{"visual.proj": wantProj, string(StagePooled): wantPooled} {
		if dd, at := maxDiff(g[name], want); dd > 1e-5*largest(want) || len(g[name]) != len(want) {
			t.Errorf("d/%s differs from the hand computation by %g at %d (%d values, want %d)", name, dd, at, len(g[name]), len(want))
		}
	}
	for _, bad := range [][]string{{}, {"pixels", "pixels"}, {"visual.nonexistent"}, {"block9"}} {
		if _, err := m.ImageGradients(px.Data, n, seed, bad...); err == nil {
			t.Errorf("ImageGradients(%q) was accepted", bad)
		} else {
			t.Log(err)
		}
	}
	if _, err := m.ImageGradients(px.Data, n, seed[:e], WRTPixels); err == nil {
		t.Error("a feature gradient of the wrong size was accepted")
	}
}

// TestLastBlockTapGradients asks for gradients with respect to taps of the last block,
// which the pooled-rows graph (layers.Transformer.Pooled) does not reach: the graph
// is built from the taps instead, the gradients are zero but at the pooled rows, and
// the pixel gradients equal the pooled-rows graph's.
func TestLastBlockTapGradients(t *testing.T) {
	m := loadLayout(t, "openai", WithBatchSize(2))
	px := golden(t, "pixels")
	n, e, d, tokens := px.Shape[0], m.Config().EmbedDim, m.Config().Vision.Width, m.Config().Vision.Tokens()
	rng := rand.New(rand.NewPCG(9, 10))
	seed := make([]float32, n*e)
	for i := range seed {
		seed[i] = float32(rng.NormFloat64())
	}
	pruned, err := m.ImageGradients(px.Data, n, seed, WRTPixels)
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.ImageGradients(px.Data, n, seed, WRTPixels, string(StageEncoder))
	if err != nil {
		t.Fatal(err)
	}
	if dd, at := maxDiff(g[WRTPixels], pruned[WRTPixels]); dd > 1e-5*largest(pruned[WRTPixels]) {
		t.Errorf("pixel gradients from the taps and from the pooled rows differ by %g at %d", dd, at)
	}
	checkPooledRowsOnly(t, "encoder", g[string(StageEncoder)], n, tokens, d, func(int) int { return 0 })

	ids, rows := goldenTokens(t)
	in, err := m.EmbedTokens(ids, rows)
	if err != nil {
		t.Fatal(err)
	}
	tseed := make([]float32, rows*e)
	for i := range tseed {
		tseed[i] = float32(rng.NormFloat64())
	}
	tg, err := m.TextGradients(in, tseed, string(StageFinal))
	if err != nil {
		t.Fatal(err)
	}
	eot, _ := EndOfText(ids, rows)
	checkPooledRowsOnly(t, "ln_final", tg[string(StageFinal)], rows, in.Seq, m.Config().Text.Width, func(r int) int { return eot[r] })
}

// checkPooledRowsOnly checks that a tap's gradient g [items, seq, d] is zero except at
// each item's pooled row, where it is not.
func checkPooledRowsOnly(t *testing.T, name string, g []float32, items, seq, d int, pooled func(item int) int) {
	t.Helper()
	if len(g) != items*seq*d {
		t.Fatalf("d/%s has %d values, want [%d,%d,%d]", name, len(g), items, seq, d)
	}
	for i := range items {
		for p := range seq {
			row := g[(i*seq+p)*d : (i*seq+p+1)*d]
			if nonzero := largest(row) > 0; nonzero != (p == pooled(i)) {
				t.Errorf("d/%s of item %d at position %d: largest %g, pooled at %d", name, i, p, largest(row), pooled(i))
			}
		}
	}
}

// TestCrossEntropyByHand checks the host loss's gradients against central
// differences in float64, and its logits against Logits.
func TestCrossEntropyByHand(t *testing.T) {
	const n, m, dim = 3, 4, 5
	rng := rand.New(rand.NewPCG(9, 10))
	img, txt := make([]float32, n*dim), make([]float32, m*dim)
	for _, x := range [][]float32{img, txt} {
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
	}
	targets := []int{2, 0, 3}
	const scale = 7.5
	l, err := CrossEntropy(img, txt, dim, scale, targets)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := Logits(img, txt, dim, scale)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := maxDiff(l.LogitsPerImage, logits); d > 1e-5 {
		t.Errorf("logits differ from Logits by %g", d)
	}
	for _, c := range []struct {
		x, grad []float32
	}{{img, l.Images}, {txt, l.Texts}} {
		for i := range c.x {
			v := c.x[i]
			const h = 1e-3
			c.x[i] = v + h
			lp, _ := CrossEntropy(img, txt, dim, scale, targets)
			c.x[i] = v - h
			lm, _ := CrossEntropy(img, txt, dim, scale, targets)
			c.x[i] = v
			fd := (lp.Value - lm.Value) / (2 * h)
			if math.Abs(fd-float64(c.grad[i])) > 1e-4*math.Max(1, math.Abs(fd)) {
				t.Errorf("gradient %d: %g, finite difference %g", i, c.grad[i], fd)
			}
		}
	}
	for _, bad := range []struct {
		img     []float32
		targets []int
	}{{img, []int{0}}, {img, []int{0, 1, 4}}, {make([]float32, n*dim), targets}} {
		if _, err := CrossEntropy(bad.img, txt, dim, scale, bad.targets); err == nil {
			t.Errorf("CrossEntropy with targets %v was accepted", bad.targets)
		}
	}
}

// TestTextLossGradients checks the one-run loss gradients (host head between the
// passes) against the same computed in steps, and the batched path against both.
func TestTextLossGradients(t *testing.T) {
	tokens, rows := goldenTokens(t)
	img := golden(t, "image_features")
	targets := goldenTargets(t)
	var want map[string][]float32
	var wantLoss float64
	for _, batch := range []int{32, 5} { // all 13 prompts in one run; then 3 batches
		m := loadLayout(t, "openai", WithBatchSize(batch))
		in, err := m.EmbedTokens(tokens, rows)
		if err != nil {
			t.Fatal(err)
		}
		head := func(txt, grad []float32) (float64, error) {
			l, err := CrossEntropy(img.Data, txt, img.Shape[1], math.Exp(float64(m.LogitScale())), targets)
			if err != nil {
				return 0, err
			}
			copy(grad, l.Texts)
			return l.Value, nil
		}
		loss, got, err := m.TextLossGradients(in, head, WRTEmbeddings, "ln_final.weight")
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			txt, err := m.EncodeEmbeddings(in)
			if err != nil {
				t.Fatal(err)
			}
			grad := make([]float32, len(txt))
			if wantLoss, err = head(txt, grad); err != nil {
				t.Fatal(err)
			}
			if want, err = m.TextGradients(in, grad, WRTEmbeddings, "ln_final.weight"); err != nil {
				t.Fatal(err)
			}
		}
		if math.Abs(loss-wantLoss) > 1e-6*math.Abs(wantLoss) { // batches cut to their own longest prompt
			t.Errorf("batch %d: loss %g, want %g", batch, loss, wantLoss)
		}
		for k, w := range want {
			if d, at := maxDiff(got[k], w); d > 1e-5*largest(w) || len(got[k]) != len(w) {
				t.Errorf("batch %d: d/%s differs by %g at %d (%d values, want %d)", batch, k, d, at, len(got[k]), len(w))
			}
		}
	}
}

// TestGradientsRefuse16Bit: a model whose weights are bfloat16 refuses gradients by
// name (its backward ops read float32 weights) instead of failing inside gorgonia.
func TestGradientsRefuse16Bit(t *testing.T) {
	m := loadLayout(t, "openai", WithPrecision(graph.BF16))
	px := golden(t, "pixels")
	n, e := px.Shape[0], m.Config().EmbedDim
	_, err := m.ImageGradients(px.Data, n, make([]float32, n*e), WRTPixels)
	if err == nil || !strings.Contains(err.Error(), "gradients need the model's float32 weights") || !strings.Contains(err.Error(), "bf16") {
		t.Errorf("ImageGradients of a bf16 model: %v", err)
	}
	tokens, rows := goldenTokens(t)
	if _, err := m.Gradients(px.Data, n, tokens, rows, goldenTargets(t)); err == nil || !strings.Contains(err.Error(), "float32 weights") {
		t.Errorf("Gradients of a bf16 model: %v", err)
	}
}
