//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"gorgonia.org/tensor"
)

//go:embed cuda/positional.cu
var positionalCUDA string

// AddPositionalOp on the GPU: one elementwise kernel.
func init() {
	registerCUDA("positional.cu", positionalCUDA, func(d *cudaDevice, o *AddPositionalOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n, w := s[0][0], s[0][1]
		return d.launch("add_positional", d.grid(n*w), 256, u(dst), u(p[0]), u(p[1]), i(n), i(o.Seq), i(w))
	})
}
