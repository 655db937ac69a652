//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"gorgonia.org/tensor"
)

//go:embed cuda/layer_norm.cu
var layerNormCUDA string

// LayerNormOp on the GPU: one block per row.
func init() {
	registerCUDA("layer_norm.cu", layerNormCUDA, func(d *cudaDevice, o *LayerNormOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n, w := s[0][0], s[0][1]
		return d.launch("layer_norm", n, 256, u(dst), u(p[0]), u(p[1]), u(p[2]), i(n), i(w), f(o.Eps))
	})
}
