package clip

import (
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
		ck.Tensors[p.Key] = &layers.Tensor{Shape: p.Shape, Data: data}
	}
	return ck, nil
}
