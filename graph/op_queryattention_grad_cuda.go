//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"math"

	"gorgonia.org/tensor"
)

//go:embed cuda/query_attention_grad.cu
var queryAttentionGradCUDA string

// queryAttentionGradOp on the GPU: one block of 128 threads per (image, head), as the
// forward kernel, the weights and their gradients in device scratch. Inputs q, kv, dy.
func init() {
	registerCUDA("query_attention_grad.cu", queryAttentionGradCUDA, func(d *cudaDevice, o *queryAttentionGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		fw := o.fwd
		dd, t, h := s[0][1], fw.Seq, fw.Heads
		kd := dd / h
		scratch, err := d.scratchOf(2 * fw.Batch * h * t)
		if err != nil {
			return err
		}
		scale := float32(1 / math.Sqrt(float64(kd)))
		return d.launch("query_attention_grad", fw.Batch*h, 128, u(dst), u(p[0]), u(p[1]), u(p[2]), u(scratch),
			i(t), i(h), i(kd), f(scale), flag(o.kv))
	})
}
