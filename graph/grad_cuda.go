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
	registerCUDA("grad.cu", "", func(d *cudaDevice, o *colSumOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		var b uintptr
		if len(p) == 2 {
			b = p[1]
		}
		n, c := s[0][0], s[0][1]
		return d.launch("col_sum", (c+31)/32, 256, u(dst), u(p[0]), u(b), i(n), i(c))
	})
	registerCUDA("grad.cu", "", func(d *cudaDevice, o *scaleColsOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n, c := s[0][0], s[0][1]
		return d.launch("scale_cols", d.grid(n*c), 256, u(dst), u(p[0]), u(p[1]), i(n), i(c))
	})
	registerCUDA("grad.cu", "", func(d *cudaDevice, o *actGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n := s[0].TotalSize()
		return d.launch("act_grad", d.grid(n), 256, u(dst), u(p[0]), u(p[1]), i(n), i(int(o.act)))
	})
	registerCUDA("grad.cu", "", func(d *cudaDevice, o *transMatMulOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		pp, q := o.shape[0], o.shape[1]
		n := s[0].TotalSize() / pp
		return gemmRM(d.blas, true, false, pp, q, n, 1, p[0], pp, 0, p[1], q, 0, 0, dst, q, 0, 1)
	})
	registerCUDA("grad.cu", "", func(d *cudaDevice, o *batchSumOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		w := o.shape[len(o.shape)-1]
		b := s[0].TotalSize() / (o.seq * w)
		rows := 1
		if o.row < 0 {
			rows = o.shape[0]
		}
		return d.launch("batch_sum", d.grid(rows*w), 256, u(dst), u(p[0]), i(b), i(o.seq), i(rows), i(o.row), i(w))
	})
}
