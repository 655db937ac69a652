package coop

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/probes"
)

// fixture loads the tiny fixture CLIP and the BPE tokenizer.
func fixture(t testing.TB) (*clip.Model, *tokenizer.Tokenizer) {
	t.Helper()
	m, err := clip.Load(testfix.Shared(t, "fixtures/clip-tiny-a/openai"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

var classes = []string{"tench", "English springer", "cassette player", "chain_saw"}

// separable returns k examples per class of features dim wide, each its class's
// random direction (length 5) plus unit Gaussian noise: a problem a linear head
// separates, on which a random text tower's zero-shot prompts are at chance.
func separable(rng *rand.Rand, k, dim int) probes.Dataset {
	dirs := make([]float64, len(classes)*dim)
	for i := range dirs {
		dirs[i] = rng.NormFloat64()
	}
	d := probes.Dataset{N: k * len(classes), D: dim}
	for i := range d.N {
		c := i % len(classes)
		var norm float64
		for j := range dim {
			norm += dirs[c*dim+j] * dirs[c*dim+j]
		}
		for j := range dim {
			d.X = append(d.X, float32(5*dirs[c*dim+j]/math.Sqrt(norm)+rng.NormFloat64()))
		}
		d.Y = append(d.Y, c)
	}
	return d
}

func TestSchedule(t *testing.T) {
	for k, want := range map[int]int{1: 50, 2: 100, 4: 100, 8: 200, 16: 200} {
		if got := EpochsForShots(k); got != want {
			t.Errorf("EpochsForShots(%d) = %d, want %d", k, got, want)
		}
	}
	o, err := Options{}.withDefaults(probes.Dataset{Y: []int{0, 1, 1, 0, 1}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if o.Epochs != 100 || o.Shots != 3 || o.BatchSize != 32 || o.LR != 0.002 || o.Momentum != 0.9 || o.WeightDecay != 5e-4 {
		t.Errorf("defaults for 3 shots: %+v", o)
	}
	for e, want := range map[int]float64{0: 1e-5, 1: 0.002 * (1 + math.Cos(math.Pi/100)) / 2, 50: 0.001, 99: 0.002 * (1 + math.Cos(math.Pi*99/100)) / 2} {
		if got := o.lrAt(e); math.Abs(got-want) > 1e-15 {
			t.Errorf("lr at epoch %d = %g, want %g", e, got, want)
		}
	}
	for _, bad := range []Options{{NCtx: -1}, {Momentum: 1}, {LR: -1}, {Epochs: -2}} {
		if _, err := bad.withDefaults(probes.Dataset{Y: []int{0, 1}}, 2); err == nil {
			t.Errorf("options %+v were accepted", bad)
		}
	}
}

// TestInitFromWords checks that a context initialised from "a photo of a" is those
// words' token embeddings: the untrained prompts encode exactly as the zero-shot
// prompts "a photo of a {name}." do.
func TestInitFromWords(t *testing.T) {
	m, tok := fixture(t)
	p, err := newPrompts(m, tok, classes, Options{Init: "a photo of a"})
	if err != nil {
		t.Fatal(err)
	}
	if p.nctx != 4 || len(p.ctx) != 4*m.Config().Text.Width {
		t.Fatalf("%d context vectors (%d values), want 4", p.nctx, len(p.ctx))
	}
	got, err := m.EncodeEmbeddings(p.input())
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, c := range classes {
		texts = append(texts, "a photo of a "+strings.ReplaceAll(c, "_", " ")+".")
	}
	ids, err := tok.Tokenize(texts, 77, false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.EncodeTexts(ids, len(texts))
	if err != nil {
		t.Fatal(err)
	}
	var d float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
	}
	if d > 1e-5 {
		t.Errorf("untrained CoOp prompts differ from the zero-shot prompts by %g", d)
	}
	if _, err := newPrompts(m, tok, classes, Options{Init: "a photo of a", NCtx: 16}); err == nil {
		t.Error("16 context vectors initialised from 4 words were accepted")
	}
	csc, err := newPrompts(m, tok, classes, Options{Init: "a photo of a", ClassSpecific: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(csc.ctx) != len(classes)*len(p.ctx) {
		t.Errorf("class-specific context has %d values, want %d", len(csc.ctx), len(classes)*len(p.ctx))
	}
}

// TestContextGradient checks the gradient of a batch's loss with respect to the
// context against central differences of the loss along unit directions (the
// gradient's, and a random one), unified and class-specific.
func TestContextGradient(t *testing.T) {
	m, tok := fixture(t)
	rng := rand.New(rand.NewPCG(3, 4))
	batch := separable(rng, 3, m.Config().EmbedDim)
	scale := math.Exp(float64(m.LogitScale()))
	for _, csc := range []bool{false, true} {
		p, err := newPrompts(m, tok, classes, Options{NCtx: 4, ClassSpecific: csc})
		if err != nil {
			t.Fatal(err)
		}
		for i := range p.ctx {
			p.ctx[i] = float32(0.02 * rng.NormFloat64())
		}
		_, grad, err := p.step(m, batch, scale)
		if err != nil {
			t.Fatal(err)
		}
		for _, along := range []bool{true, false} {
			v := make([]float64, len(grad)) // a unit direction
			var vn, analytic float64
			for i := range v {
				v[i] = rng.NormFloat64()
				if along {
					v[i] = grad[i]
				}
				vn += v[i] * v[i]
			}
			for i := range v {
				v[i] /= math.Sqrt(vn)
				analytic += grad[i] * v[i]
			}
			const h = 1e-3
			at := func(s float64) float64 {
				q := *p
				q.ctx = make([]float32, len(p.ctx))
				for i := range q.ctx {
					q.ctx[i] = p.ctx[i] + float32(s*v[i])
				}
				l, _, err := q.step(m, batch, scale)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			fd := (at(h) - at(-h)) / (2 * h)
			if math.Abs(fd-analytic) > 1e-2*math.Abs(analytic)+1e-3 {
				t.Errorf("class-specific %v, along the gradient %v: <grad, v> = %g, finite difference %g", csc, along, analytic, fd)
			} else {
				t.Logf("class-specific %v, along the gradient %v: <grad, v> = %.6g, finite difference %.6g", csc, along, analytic, fd)
			}
		}
	}
}

// TestFitBeatsZeroShot trains on a tiny separable problem: the loss decreases, and
// the learned prompts classify held-out examples at least as well as the zero-shot
// prompt "a photo of a {}." does.
func TestFitBeatsZeroShot(t *testing.T) {
	m, tok := fixture(t)
	rng := rand.New(rand.NewPCG(5, 6))
	all := separable(rng, 32, m.Config().EmbedDim)
	idx := rng.Perm(all.N)
	train, test := all.Subset(idx[:64]), all.Subset(idx[64:]) // 16 shots of each class
	texts := make([]string, len(classes))
	for i, c := range classes {
		texts[i] = "a photo of a " + c + "."
	}
	ids, err := tok.Tokenize(texts, 77, false)
	if err != nil {
		t.Fatal(err)
	}
	zs, err := m.EncodeTexts(ids, len(texts))
	if err != nil {
		t.Fatal(err)
	}
	scores, err := clip.Logits(test.X, zs, test.D, 1)
	if err != nil {
		t.Fatal(err)
	}
	zero, err := probes.Evaluate(scores, test.Y, len(classes))
	if err != nil {
		t.Fatal(err)
	}
	// The paper's settings, fewer epochs.
	for _, opt := range []Options{{Epochs: 40, Seed: 1}, {Init: "a photo of a", ClassSpecific: true, Epochs: 40, Seed: 2}} {
		var epochs int
		opt.Progress = func(Progress) { epochs++ }
		c, err := Fit(m, tok, classes, train, opt)
		if err != nil {
			t.Fatal(err)
		}
		first, last := c.Losses[0], c.Losses[len(c.Losses)-1]
		got, err := c.Evaluate(test)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v: loss %.3f -> %.3f; test top-1 %.2f (zero-shot %.2f)", opt, first, last, got.Top1, zero.Top1)
		if epochs != opt.Epochs || len(c.Losses) != opt.Epochs {
			t.Errorf("%d progress reports and %d losses for %d epochs", epochs, len(c.Losses), opt.Epochs)
		}
		if !(last < 0.8*first) {
			t.Errorf("loss went from %g to %g", first, last)
		}
		if got.Top1 < zero.Top1 {
			t.Errorf("CoOp test accuracy %.2f is below zero-shot's %.2f", got.Top1, zero.Top1)
		}
	}
	if _, err := Fit(m, tok, classes, probes.Dataset{X: make([]float32, 8), Y: []int{0, 1}, N: 2, D: 4}, Options{}); err == nil {
		t.Error("image features of the wrong dimension were accepted")
	}
}
