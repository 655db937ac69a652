//go:build openblas

package graph

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
int gc_init(void);
void gc_linear_epilogue(float *y, const float *bias, const float *res, long rows, long nout, int act);
void gc_layer_norm(float *dst, const float *x, const float *gain, const float *bias, long rows, long d, float eps);
void gc_attention(const float *qkv, float *dst, float *scratch, long t, long d, long k, long heads,
                  int causal, float scale, long lo, long hi);
*/
import "C"

// The openblas build already uses cgo, so it runs the hot non-GEMM kernels in C
// (kernels_openblas.c: vectorised AVX2+FMA, with expf's polynomial on 8 lanes) when
// the CPU has AVX2 and FMA. Each function below does one chunk of rows in one cgo
// call and reports false when it did nothing, so that the caller runs the Go kernel.

// cKernels says the C kernels are usable on this CPU.
var cKernels = C.gc_init() != 0

func ptr(x []float32) *C.float {
	if len(x) == 0 {
		return nil
	}
	return (*C.float)(&x[0])
}

// cLinearEpilogue is linearEpilogue for Identity and QuickGELU.
func cLinearEpilogue(y, bias, res []float32, nout int, act Activation) bool {
	if !cKernels || (act != Identity && act != QuickGELU) {
		return false
	}
	if len(y) == 0 {
		return true
	}
	a := 0
	if act == QuickGELU {
		a = 1
	}
	C.gc_linear_epilogue(ptr(y), ptr(bias), ptr(res), C.long(len(y)/nout), C.long(nout), C.int(a))
	return true
}

// cLayerNorm is layerNorm.
func cLayerNorm(dst, x, gain, bias []float32, d int, eps float32) bool {
	if !cKernels {
		return false
	}
	if len(x) < d {
		return true
	}
	C.gc_layer_norm(ptr(dst), ptr(x), ptr(gain), ptr(bias), C.long(len(x)/d), C.long(d), C.float(eps))
	return true
}

// cAttention runs attention for the sequence x head pairs [lo,hi) of qkv [B*T, 3D]
// into dst [B*T, D], heads of width k (a multiple of 8 for the C kernel).
func cAttention(dst, qkv []float32, t, d, k, heads int, causal bool, scale float32, lo, hi int) bool {
	if !cKernels || k%8 != 0 || k == 0 {
		return false
	}
	if lo >= hi {
		return true
	}
	tp := (t + 7) &^ 7
	scratch := make([]float32, k*tp+t*tp+3*t*k)
	cz := C.int(0)
	if causal {
		cz = 1
	}
	C.gc_attention(ptr(qkv), ptr(dst), ptr(scratch), C.long(t), C.long(d), C.long(k), C.long(heads), cz, C.float(scale), C.long(lo), C.long(hi))
	return true
}
