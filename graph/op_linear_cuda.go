//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"gorgonia.org/tensor"
)

//go:embed cuda/linear.cu
var linearCUDA string

// LinearOp on the GPU: one cuBLAS GEMM into the output, then the epilogue kernel when
// there is anything to add or apply.
func init() {
	registerCUDA("linear.cu", linearCUDA, func(d *cudaDevice, o *LinearOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n, nin := s[0][0], s[0][1]
		_, nout := o.dims(s[1])
		ldw, tw := nin, true
		if o.InOut {
			ldw, tw = nout, false
		}
		if err := gemmRM(d.blas, false, tw, n, nout, nin, 1, p[0], nin, 0, p[1], ldw, 0, 0, dst, nout, 0, 1); err != nil {
			return err
		}
		bias, scale, res := operands(o, p)
		if bias == 0 && scale == 0 && res == 0 && o.Act == Identity {
			return nil
		}
		return d.launch("epilogue", d.grid(n*nout), 256, u(dst), u(bias), u(scale), u(res), i(n), i(nout), i(int(o.Act)))
	})
}
