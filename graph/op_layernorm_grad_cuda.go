//go:build gorgoclip_cuda

package graph

import (
	_ "embed"

	"gorgonia.org/tensor"
)

//go:embed cuda/layer_norm_grad.cu
var layerNormGradCUDA string

// LayerNorm's backward ops on the GPU: dx one block per row; dgain from each row's
// statistics (in scratch), then column sums.
func init() {
	registerCUDA("layer_norm_grad.cu", layerNormGradCUDA, func(d *cudaDevice, o *layerNormGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n, w := s[0][0], s[0][1]
		return d.launch("layer_norm_grad", n, 256, u(dst), u(p[0]), u(p[1]), u(p[2]), i(n), i(w), f(o.eps))
	})
	registerCUDA("layer_norm_grad.cu", "", func(d *cudaDevice, o *layerNormGainGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n, w := s[0][0], s[0][1]
		stats, err := d.scratchOf(2 * n)
		if err != nil {
			return err
		}
		if err := d.launch("layer_norm_stats", n, 256, u(stats), u(p[0]), i(n), i(w), f(o.eps)); err != nil {
			return err
		}
		return d.launch("layer_norm_gain_grad", (w+31)/32, 256, u(dst), u(p[0]), u(p[1]), u(stats), i(n), i(w))
	})
}
