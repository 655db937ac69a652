//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"gorgonia.org/tensor"
)

//go:embed cuda/select_rows.cu
var selectRowsCUDA string

// SelectRowsOp on the GPU: positions are read on the device, so no copy back is needed.
func init() {
	registerCUDA("select_rows.cu", selectRowsCUDA, func(d *cudaDevice, o *SelectRowsOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		b, w := s[0][0]/o.Seq, s[0][1]
		var idx uintptr
		if o.Dynamic {
			idx = p[1]
		}
		return d.launch("select_rows", d.grid(b*w), 256, u(dst), u(p[0]), u(idx), i(o.Index), i(b), i(o.Seq), i(w))
	})
}
