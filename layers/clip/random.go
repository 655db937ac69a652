package clip

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
)

// RandomCheckpoint returns a checkpoint for cfg with deterministic random weights,
// each drawn as the reference code initialises it (the layers.Init its module
// declares: OpenAI's initialize_parameters, else PyTorch's module defaults), from a
// PCG stream seeded by seed, keys visited in sorted order. For tests and benchmarks
// of shapes and speed; the features mean nothing.
func RandomCheckpoint(cfg layers.Config, seed uint64) (*weights.Checkpoint, error) {
	return randomCheckpoint(cfg, seed, nil)
}

// Random returns a Model over RandomCheckpoint(cfg, seed)'s weights, set up by opts.
// In BF16 and FP16 each weight the model keeps in 16 bits is converted as soon as it
// is drawn, as Load converts as it reads, so the model is never whole in float32.
func Random(cfg layers.Config, seed uint64, opts ...Option) (*Model, error) {
	m, err := configure(opts)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	convert, err := m.converter(cfg)
	if err != nil {
		return nil, err
	}
	ck, err := randomCheckpoint(cfg, seed, convert)
	if err != nil {
		return nil, err
	}
	return m.bind(ck, true)
}

// randomCheckpoint is RandomCheckpoint, passing each tensor to convert (when not nil)
// as soon as it is drawn.
func randomCheckpoint(cfg layers.Config, seed uint64, convert func(string, *layers.Tensor) error) (*weights.Checkpoint, error) {
	w, err := layers.Declared(cfg)
	if err != nil {
		return nil, err
	}
	params := w.Params()
	sort.Slice(params, func(i, j int) bool { return params[i].Key < params[j].Key })
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	ck := &weights.Checkpoint{Config: cfg, Tensors: layers.Tensors{}, Format: "random"}
	for _, p := range params {
		data := make([]float32, p.Size())
		p.Init.Fill(data, rng)
		t := &layers.Tensor{Shape: p.Shape, Data: data}
		if convert != nil {
			if err := convert(p.Key, t); err != nil {
				return nil, fmt.Errorf("clip: %s: %w", p.Key, err)
			}
		}
		ck.Tensors[p.Key] = t
	}
	return ck, nil
}
