//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
	"gorgonia.org/tensor"
)

//go:embed cuda/cast.cu
var castCUDA string

func init() { registerCUDASource("cast.cu", castCUDA) }

// gemmW is gemmRM for a GEMM of activations by a weight (LinearOp, PatchEmbedOp,
// Conv2dOp) in the op's precision prec: A holds float32 activations (count matrices
// sa floats apart), B the weight's device copy (float32, or 16 bits in a BF16 or FP16
// graph).
// FP32 is cuBLAS's exact SGEMM; TF32 the same operands on TF32 tensor cores; BF16 and
// FP16 round A to 16 bits (cast16, into d.half, same layout) and run a tensor-core
// GemmEx, accumulating in float32 as the CPU's oneDNN path does. Activations stay
// float32 on the GPU: the rounding is part of reading them.
func (d *cudaDevice) gemmW(prec Precision, ta, tb bool, m, n, k int, a uintptr, lda, sa int, b uintptr, ldb, sb int,
	beta float32, c uintptr, ldc, sc, count int) error {
	switch prec {
	case FP32:
		return gemmRM(d.blas, ta, tb, m, n, k, 1, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, count)
	case TF32:
		return gemmExRM(d.blas, cudaR32F, computeTF32, ta, tb, m, n, k, 1, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, count)
	case BF16, FP16:
	default:
		return fmt.Errorf("no CUDA GEMM for precision %v", prec)
	}
	rows, cols := m, k // A as stored
	if ta {
		rows, cols = k, m
	}
	n16 := (count-1)*sa + (rows-1)*lda + cols // A's extent in elements
	h, err := d.halfOf(n16)
	if err != nil {
		return err
	}
	typ, fp16 := cudaR16BF, 0
	if prec == FP16 {
		typ, fp16 = cudaR16F, 1
	}
	if err := d.launch("cast16", d.grid(n16), 256, u(h), u(a), i(n16), i(fp16)); err != nil {
		return err
	}
	return gemmExRM(d.blas, typ, compute32F, ta, tb, m, n, k, 1, h, lda, sa, b, ldb, sb, beta, c, ldc, sc, count)
}

// halfOf returns device memory for n 16-bit values (valid until the next call).
func (d *cudaDevice) halfOf(n int) (uintptr, error) { return d.grow(&d.half, (n+1)/2) }

// weight16 uploads a 16-bit weight (BF16 or FP16 graphs) as it is: half the bytes of
// its float32 form.
func (d *cudaDevice) weight16(w *tensor.Dense, host []uint16) error {
	dev, err := d.alloc((len(host) + 1) / 2)
	if err != nil {
		return err
	}
	if len(host) > 0 {
		if err := cu.MemcpyHtoD(cu.DevicePtr(addrOf(dev)), unsafe.Pointer(&host[0]), int64(2*len(host))); err != nil {
			return err
		}
	}
	d.wcopies[w], d.sizes[w] = dev, w.Shape().Clone()
	copyStats.w.Add(1)
	copyStats.wb.Add(int64(2 * len(host)))
	return nil
}
