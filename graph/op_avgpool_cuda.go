//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"gorgonia.org/tensor"
)

//go:embed cuda/avg_pool.cu
var avgPoolCUDA string

// AvgPoolOp on the GPU: one thread per output value.
func init() {
	registerCUDA("avg_pool.cu", avgPoolCUDA, func(d *cudaDevice, o *AvgPoolOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		c, k := s[0][1], o.Kernel
		n := o.Batch * (o.Height / k) * (o.Width / k) * c
		return d.launch("avg_pool", d.grid(n), 256, u(dst), u(p[0]), i(o.Batch), i(o.Height), i(o.Width), i(c), i(k))
	})
}
