package clip

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
)

// RandomCheckpoint returns a checkpoint for cfg with deterministic random weights (a
// PCG stream seeded by seed, keys visited in sorted order): matrices and embeddings
// N(0, 0.02^2), LayerNorm gains 1 + N(0, 0.02^2), biases N(0, 0.02^2), logit_scale
// log(1/0.07) as OpenAI initialises it. For tests and benchmarks of shapes and speed;
// the features mean nothing.
func RandomCheckpoint(cfg layers.Config, seed uint64) (*weights.Checkpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	shapes := weights.ExpectedShapes(cfg)
	keys := make([]string, 0, len(shapes))
	for k := range shapes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	ck := &weights.Checkpoint{Config: cfg, Tensors: map[string]*npy.Float32{}, Format: "random"}
	for _, k := range keys {
		shape := shapes[k]
		n := 1
		for _, s := range shape {
			n *= s
		}
		data := make([]float32, n)
		switch {
		case k == "logit_scale":
			data[0] = float32(math.Log(1 / 0.07))
		case strings.HasSuffix(k, "ln_1.weight"), strings.HasSuffix(k, "ln_2.weight"),
			strings.HasPrefix(k, "ln_final.weight"), strings.HasSuffix(k, "ln_pre.weight"), strings.HasSuffix(k, "ln_post.weight"):
			for i := range data {
				data[i] = 1 + 0.02*float32(rng.NormFloat64())
			}
		default:
			for i := range data {
				data[i] = 0.02 * float32(rng.NormFloat64())
			}
		}
		ck.Tensors[k] = &npy.Float32{Shape: shape, Data: data}
	}
	return ck, nil
}
