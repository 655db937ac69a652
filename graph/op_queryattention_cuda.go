//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"math"

	"gorgonia.org/tensor"
)

//go:embed cuda/query_attention.cu
var queryAttentionCUDA string

// QueryAttentionOp on the GPU: one block of 128 threads per (image, head), the scores
// in device scratch.
func init() {
	registerCUDA("query_attention.cu", queryAttentionCUDA, func(d *cudaDevice, o *QueryAttentionOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		dd, t, h := s[0][1], o.Seq, o.Heads
		kd := dd / h
		scores, err := d.scratchOf(o.Batch * h * t)
		if err != nil {
			return err
		}
		scale := float32(1 / math.Sqrt(float64(kd)))
		return d.launch("query_attention", o.Batch*h, 128, u(dst), u(p[0]), u(p[1]), u(scores), i(t), i(h), i(kd), f(scale))
	})
}
