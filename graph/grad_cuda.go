//go:build gorgoclip_cuda

package graph

import (
	_ "embed"

	"gorgonia.org/tensor"
)

//go:embed cuda/grad.cu
var gradCUDA string

// The backward ops of grad.go on the GPU.
func init() {
	registerCUDA("grad.cu", gradCUDA, func(d *cudaDevice, o *sumOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n := s[0].TotalSize()
		if err := d.launch("sum2", d.grid(n), 256, u(dst), u(p[0]), u(p[1]), i(n)); err != nil {
			return err
		}
		for _, x := range p[2:] {
			if err := d.launch("sum2", d.grid(n), 256, u(dst), u(dst), u(x), i(n)); err != nil {
				return err
			}
		}
		return nil
	})
}
