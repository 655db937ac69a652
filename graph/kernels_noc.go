//go:build !openblas

package graph

// Without the openblas tag the build has no cgo kernels: these report false and the
// callers run the Go kernels (kernels_openblas.go has the C versions).

const cKernels = false

func cLinearEpilogue(y, bias, res []float32, nout int, act Activation) bool { return false }

func cLayerNorm(dst, x, gain, bias []float32, d int, eps float32) bool { return false }

func cAttention(dst, qkv []float32, t, d, k, heads int, causal bool, scale float32, lo, hi int) bool {
	return false
}
