//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"math"

	"gorgonia.org/tensor"
)

//go:embed cuda/attention_grad.cu
var attentionGradCUDA string

func init() {
	registerCUDA("attention_grad.cu", attentionGradCUDA, func(d *cudaDevice, o *attentionGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		return d.attentionGrad(o.fwd, dst, p[0], p[1], s[0])
	})
	registerCUDA("attention_grad.cu", "", func(d *cudaDevice, o *attentionProbsOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		f, dd := o.fwd, s[0][1]/3
		n := f.Batch * f.Seq * dd
		base, err := d.scratchOf(3 * n)
		if err != nil {
			return err
		}
		if err := d.splitHeads(f, base, n, p[0], dd); err != nil {
			return err
		}
		return d.attentionWeights(f, dst, base, base+uintptr(4*n), dd)
	})
}

// attentionGrad writes dqkv [B*T, 3D] of attention f from qkv and dy [B*T, D], as
// the CPU's attentionGrad does, every (sequence, head) pair at once: the weights P
// recomputed (split_heads, attentionWeights), then by batched GEMMs dV = P^T dO and
// dP = dO V^T, the softmax's backward dS (softmax_grad_rows), dQ = scale dS K and
// dK = scale dS^T Q, each merged back into its third of dqkv.
func (d *cudaDevice) attentionGrad(f *AttentionOp, dst, qkv, dy uintptr, s tensor.Shape) error {
	b, t, h := f.Batch, f.Seq, f.Heads
	dd := s[1] / 3
	kd := dd / h
	n, tt, bh := b*t*dd, t*t, b*h // n: floats in each of q, k, v, dO, dV
	base, err := d.scratchOf(5*n + 2*bh*tt)
	if err != nil {
		return err
	}
	at := func(slot int) uintptr { return base + uintptr(4*slot*n) }
	q, kk, v, do, dv := at(0), at(1), at(2), at(3), at(4)
	p := at(5)
	dp := p + uintptr(4*bh*tt)
	dq, dk := do, v // dO and V are read for the last time by the GEMM of dP
	if err := d.splitHeads(f, base, n, qkv, dd); err != nil {
		return err
	}
	if err := d.launch("split_head_rows", d.grid(n), 256, u(do), u(dy), i(b), i(t), i(h), i(kd), i(dd)); err != nil {
		return err
	}
	if err := d.attentionWeights(f, p, q, kk, dd); err != nil {
		return err
	}
	if err := gemmRM(d.blas, true, false, t, kd, t, 1, p, t, tt, do, kd, t*kd, 0, dv, kd, t*kd, bh); err != nil {
		return err
	}
	if err := gemmRM(d.blas, false, true, t, t, kd, 1, do, kd, t*kd, v, kd, t*kd, 0, dp, t, tt, bh); err != nil {
		return err
	}
	rows := bh * t
	if err := d.launch("softmax_grad_rows", warpPerRow(rows), 256, u(dp), u(p), i(rows), i(t), flag(f.Causal)); err != nil {
		return err
	}
	scale := float32(1 / math.Sqrt(float64(kd)))
	if err := gemmRM(d.blas, false, false, t, kd, t, scale, dp, t, tt, kk, kd, t*kd, 0, dq, kd, t*kd, bh); err != nil {
		return err
	}
	if err := gemmRM(d.blas, true, false, t, kd, t, scale, dp, t, tt, q, kd, t*kd, 0, dk, kd, t*kd, bh); err != nil {
		return err
	}
	for j, x := range []uintptr{dq, dk, dv} {
		if err := d.launch("merge_head_rows", d.grid(n), 256, u(dst+uintptr(4*j*dd)), u(x), i(b), i(t), i(h), i(kd), i(3*dd)); err != nil {
			return err
		}
	}
	return nil
}
