package coop

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/probes"
)

var imagenette = []string{"tench", "English springer", "cassette player", "chain saw", "church",
	"French horn", "garbage truck", "gas pump", "golf ball", "parachute"}

// benchSetup returns ViT-B/32 with random weights, the prompts of CoOp's default
// context for Imagenette's ten classes, and a batch of 32 random image features.
func benchSetup(b *testing.B) (*clip.Model, *prompts, probes.Dataset) {
	cfg, err := layers.Preset("ViT-B/32")
	if err != nil {
		b.Fatal(err)
	}
	ck, err := clip.RandomCheckpoint(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := clip.New(ck)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokenizer.Load(testfix.Shared(b, "clip/bpe_simple_vocab_16e6.txt.gz"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := newPrompts(m, tok, imagenette, Options{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range p.ctx {
		p.ctx[i] = float32(0.02 * rng.NormFloat64())
	}
	batch := probes.Dataset{N: DefaultBatchSize, D: cfg.EmbedDim}
	for range batch.N * batch.D {
		batch.X = append(batch.X, float32(rng.NormFloat64()))
	}
	for i := range batch.N {
		batch.Y = append(batch.Y, i%len(imagenette))
	}
	return m, p, batch
}

// BenchmarkStepViTB32 times one CoOp training step on ViT-B/32's text tower (random
// weights): ten Imagenette prompts with 16 context vectors, a batch of 32 images. A
// 16-shot run on ten classes is 200 epochs of 5 steps: 1000 steps. Each iteration also
// times the prompts' forward pass alone, right before the step, and reports the
// step as a multiple of it (the machines are shared: only in-run ratios compare).
func BenchmarkStepViTB32(b *testing.B) {
	m, p, batch := benchSetup(b)
	scale := float64(m.LogitScale())
	if _, _, err := p.step(m, batch, scale); err != nil { // graphs built outside the timer
		b.Fatal(err)
	}
	if _, err := m.EncodeEmbeddings(p.input()); err != nil {
		b.Fatal(err)
	}
	var fwd, step time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := m.EncodeEmbeddings(p.input()); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, _, err := p.step(m, batch, scale); err != nil {
			b.Fatal(err)
		}
		fwd, step = fwd+t1.Sub(t0), step+time.Since(t1)
	}
	b.ReportMetric(step.Seconds()/float64(b.N), "s/step")
	b.ReportMetric(fwd.Seconds()/float64(b.N), "s/forward")
	b.ReportMetric(step.Seconds()/fwd.Seconds(), "step/forward")
	b.ReportMetric(1000*step.Minutes()/float64(b.N), "min/16-shot-run")
}
