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
	if err := d.splitHeads(o, base, n, qkv, dd); err != nil {
		return err
	}
	if err := d.attentionWeights(o, sc, q, kk, dd); err != nil {
		return err
	}
	if err := gemmRM(d.blas, false, false, t, k, t, 1, sc, t, t*t, v, k, t*k, 0, oh, k, t*k, b*h); err != nil {
		return err
	}
	return d.launch("merge_heads", d.grid(n), 256, u(dst), u(oh), i(b), i(t), i(h), i(k))
}

// splitHeads splits the qkv [B*T, 3D] of attention f into q, k and v [B, H, T, K]
// (split_heads), from base on, n = B*T*D floats apart.
func (d *cudaDevice) splitHeads(f *AttentionOp, base uintptr, n int, qkv uintptr, dd int) error {
	return d.launch("split_heads", d.grid(n), 256, u(base), u(base+uintptr(4*n)), u(base+uintptr(8*n)), u(qkv),
		i(f.Batch), i(f.Seq), i(f.Heads), i(dd/f.Heads))
}

// attentionWeights writes the softmax weights p [B*H, T, T] of attention f from its
// queries and keys q, k [B, H, T, K] (split_heads; D = H*K): AttentionOp's first
// GEMM and masked softmax.
func (d *cudaDevice) attentionWeights(f *AttentionOp, p, q, k uintptr, dd int) error {
	t, bh := f.Seq, f.Batch*f.Heads
	kd := dd / f.Heads
	scale := float32(1 / math.Sqrt(float64(kd)))
	if err := gemmRM(d.blas, false, true, t, t, kd, scale, q, kd, t*kd, k, kd, t*kd, 0, p, t, t*t, bh); err != nil {
		return err
	}
	return d.launch("softmax_rows", warpPerRow(bh*t), 256, u(p), i(bh*t), i(t), flag(f.Causal))
}

// warpPerRow returns the blocks of 256 threads that give each of rows rows a warp.
func warpPerRow(rows int) int { return (rows*32 + 255) / 256 }

// flag is a bool kernel argument: 1 or 0.
func flag(on bool) uint64 {
	if on {
		return 1
	}
	return 0
}
