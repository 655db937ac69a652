package cli

import (
	"fmt"

	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// withAttention returns stage, plus clip.StageAttention when path (an --attention
// flag) is set.
func withAttention(stage clip.Stage, path string) []clip.Stage {
	if path == "" {
		return []clip.Stage{stage}
	}
	return []clip.Stage{stage, clip.StageAttention}
}

// attentionMaps are a tower's attention weights as clip.StageAttention returns them:
// item-major [N, layers, heads, T, T].
type attentionMaps struct {
	data          []float32
	layers, heads int
}

// write saves the maps of n items as the layer-major [layers, N, heads, T, T] of
// `embed --attention` (the layout of PyTorch's per-block outputs stacked).
func (a attentionMaps) write(path string, n int) error {
	per := len(a.data) / max(n*a.layers, 1) // heads*T*T
	t := 1
	for t*t*a.heads < per {
		t++
	}
	if n == 0 || a.layers == 0 || t*t*a.heads != per {
		return fmt.Errorf("attention maps: %d values for %d items of %d layers and %d heads", len(a.data), n, a.layers, a.heads)
	}
	return npy.WriteFloat32(path, []int{a.layers, n, a.heads, t, t}, clip.LayerMajor(a.data, n, a.layers))
}
