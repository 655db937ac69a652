package probes

import (
	"math/rand/v2"
	"testing"
)

func benchEval(b *testing.B, n, d, k int, fused bool) {
	if fused && !fusedOK {
		b.Skip("fused kernel not built or no AVX2/FMA (" + BLAS + ")")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ds := Dataset{X: make([]float32, n*d), Y: make([]int, n), N: n, D: d}
	for i := range ds.X {
		ds.X[i] = rng.Float32()
	}
	for i := range ds.Y {
		ds.Y[i] = rng.IntN(k)
	}
	theta := make([]float64, k*d+k)
	for i := range theta {
		theta[i] = 0.01 * rng.NormFloat64()
	}
	g := make([]float64, len(theta))
	o := newObjective(ds, k, 1, 2)
	o.fused = fused
	restore := singleThreadedBLAS()
	defer restore()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchLoss = o.eval(theta, g)
	}
}

var benchLoss float64

// BenchmarkEvalFashion is one loss-and-gradient evaluation at the anchor's size, as
// fits run it (the fused kernel where available).
func BenchmarkEvalFashion(b *testing.B) { benchEval(b, 20000, 784, 10, fusedOK) }

// BenchmarkEvalFashionGEMM is the same evaluation with the two float32 GEMMs.
func BenchmarkEvalFashionGEMM(b *testing.B) { benchEval(b, 20000, 784, 10, false) }

// BenchmarkEvalFashionFused is the same evaluation with the fused kernel.
func BenchmarkEvalFashionFused(b *testing.B) { benchEval(b, 20000, 784, 10, true) }
