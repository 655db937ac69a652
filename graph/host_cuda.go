//go:build gorgoclip_cuda

package graph

import (
	"fmt"

	"gorgonia.org/tensor"
)

// A Host node on the GPU: its inputs are copied to the host, the function runs there
// and its result is copied back (the only copies a device graph makes mid-run; a
// loss's gradient is small next to the activations).
func init() {
	registerCUDA("host", "", func(d *cudaDevice, o *hostOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		in := make([][]float32, len(p))
		for j, a := range p {
			in[j] = make([]float32, s[j].TotalSize())
			if err := d.download(in[j], deviceSlice(a, len(in[j]))); err != nil {
				return fmt.Errorf("input %d: %w", j, err)
			}
		}
		out := make([]float32, o.shape.TotalSize())
		if err := o.f(out, in); err != nil {
			return fmt.Errorf("graph: %s: %w", o.label, err)
		}
		return d.upload(deviceSlice(dst, len(out)), out)
	})
}
