//go:build gorgoclip_cuda

package graph

import "gorgonia.org/tensor"

// scatterRowsOp (SelectRows' backward op) on the GPU: kernel scatter_rows of
// cuda/grad.cu, positions read on the device.
func init() {
	registerCUDA("grad.cu", "", func(d *cudaDevice, o *scatterRowsOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		w := o.shape[1]
		b := s[0][0]
		var idx uintptr
		if o.fwd.Dynamic {
			idx = p[1]
		}
		return d.launch("scatter_rows", d.grid(b*o.fwd.Seq*w), 256, u(dst), u(p[0]), u(idx), i(o.fwd.Index), i(b), i(o.fwd.Seq), i(w))
	})
}
