package graph

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestFP32GEMM checks the fused float32 GEMMs of builds with oneDNN (runF32: what
// Linear and Conv2d of float32 graphs run) against the BLAS and linearEpilogue, for
// every epilogue, both weight layouts and row counts split over two goroutines with
// a remainder; without oneDNN, that runF32 declines and leaves dst alone.
func TestFP32GEMM(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(2)
	rng := rand.New(rand.NewPCG(23, 24))
	const k, n = 72, 40
	for i, s := range []mmSpec{
		{N: n, K: k},
		{N: n, K: k, InOut: true, Bias: true},
		{N: n, K: k, Bias: true, Act: ReLU},
		{N: n, K: k, Bias: true, Scale: true, Res: resF32},
		{N: n, K: k, Bias: true, Res: resF32, Act: QuickGELU},
		{N: n, K: k, InOut: true, Act: GELU},
	} {
		s.F32, s.LDD = true, n
		for _, m := range []int{1, 37, 301} {
			x, w := randn(rng, m*k, 1), randn(rng, n*k, 0.3)
			bias, scale, res := randn(rng, n, 1), randn(rng, n, 1), randn(rng, m*n, 1)
			if !s.Bias {
				bias = nil
			}
			if !s.Scale {
				scale = nil
			}
			if s.Res == noRes {
				res = nil
			}
			want := make([]float32, m*n)
			tw, ldw := blas.Trans, k
			if s.InOut {
				tw, ldw = blas.NoTrans, n
			}
			gemm.Sgemm(blas.NoTrans, tw, m, n, k, 1, x, k, w, ldw, 0, want, n)
			linearEpilogue(want, bias, scale, res, n, s.Act)

			got := make([]float32, m*n)
			for j := range got {
				got[j] = 7 // runF32 must overwrite every value, or leave them all when it declines
			}
			p := newFusedGEMM(s)
			done, err := p.runF32(m, x, w, bias, scale, res, got)
			p.free()
			if err != nil {
				t.Fatalf("spec %d (%v), m=%d: %v", i, s, m, err)
			}
			if done != fp32GEMM {
				t.Fatalf("spec %d, m=%d: runF32 done=%v in a build with fp32GEMM=%v", i, m, done, fp32GEMM)
			}
			if !done {
				for j, v := range got {
					if v != 7 {
						t.Fatalf("spec %d, m=%d: runF32 declined but wrote dst[%d]", i, m, j)
					}
				}
				continue
			}
			if d, ok := close32(got, want, 2e-5); !ok {
				t.Errorf("spec %d (%v), m=%d: oneDNN differs from the BLAS by %g", i, s, m, d)
			}
		}
	}
}
