package probes

import (
	"math/rand/v2"
	"testing"
)

func benchEval(b *testing.B, n, d, k int) {
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
	restore := singleThreadedBLAS()
	defer restore()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchLoss = o.eval(theta, g)
	}
}

var benchLoss float64

// BenchmarkEvalFashion is one loss-and-gradient evaluation at the anchor's size.
func BenchmarkEvalFashion(b *testing.B) { benchEval(b, 20000, 784, 10) }
