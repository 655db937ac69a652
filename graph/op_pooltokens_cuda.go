//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"gorgonia.org/tensor"
)

//go:embed cuda/pool_tokens.cu
var poolTokensCUDA string

// PoolTokensOp on the GPU: one thread per (image, channel).
func init() {
	registerCUDA("pool_tokens.cu", poolTokensCUDA, func(d *cudaDevice, o *PoolTokensOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		c := s[0][1]
		return d.launch("pool_tokens", d.grid(o.Batch*c), 256, u(dst), u(p[0]), u(p[1]), i(o.Batch), i(o.Spatial), i(c))
	})
}
