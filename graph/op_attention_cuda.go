//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"math"

	"gorgonia.org/tensor"
)

//go:embed cuda/attention.cu
var attentionCUDA string

func init() {
	registerCUDA("attention.cu", attentionCUDA, func(d *cudaDevice, o *AttentionOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		return d.attention(o, dst, p[0], s[0])
	})
}

// attention: split the packed qkv into per-(sequence, head) matrices, scores by one
// batched GEMM, a masked softmax, weights times V by a second batched GEMM, and the
// heads merged back into rows.
func (d *cudaDevice) attention(o *AttentionOp, dst, qkv uintptr, s tensor.Shape) error {
	b, t, h := o.Batch, o.Seq, o.Heads
	dd := s[1] / 3
	k := dd / h
	n := b * t * dd // floats in each of q, k, v and the merged output
	base, err := d.scratchOf(4*n + b*h*t*t)
	if err != nil {
		return err
	}
	q, kk, v, oh := base, base+uintptr(4*n), base+uintptr(8*n), base+uintptr(12*n)
	sc := base + uintptr(16*n)
	if err := d.launch("split_heads", d.grid(n), 256, u(q), u(kk), u(v), u(qkv), i(b), i(t), i(h), i(k)); err != nil {
		return err
	}
	scale := float32(1 / math.Sqrt(float64(k)))
	if err := gemmRM(d.blas, false, true, t, t, k, scale, q, k, t*k, kk, k, t*k, 0, sc, t, t*t, b*h); err != nil {
		return err
	}
	causal := 0
	if o.Causal {
		causal = 1
	}
	rows := b * h * t
	if err := d.launch("softmax_rows", (rows*32+255)/256, 256, u(sc), i(rows), i(t), i(causal)); err != nil {
		return err
	}
	if err := gemmRM(d.blas, false, false, t, k, t, 1, sc, t, t*t, v, k, t*k, 0, oh, k, t*k, b*h); err != nil {
		return err
	}
	return d.launch("merge_heads", d.grid(n), 256, u(dst), u(oh), i(b), i(t), i(h), i(k))
}
