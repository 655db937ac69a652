package probes

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomProblem draws n examples of dimension d with labels in [0, k) and a point
// theta of scale s.
func randomProblem(seed uint64, n, d, k int, s float64) (Dataset, []float64) {
	rng := rand.New(rand.NewPCG(seed, 5))
	ds := Dataset{X: make([]float32, n*d), Y: make([]int, n), N: n, D: d}
	for i := range ds.X {
		ds.X[i] = rng.Float32()
	}
	for i := range ds.Y {
		ds.Y[i] = rng.IntN(k)
	}
	theta := make([]float64, k*d+k)
	for i := range theta {
		theta[i] = s * rng.NormFloat64()
	}
	return ds, theta
}

// TestFusedParity compares the fused kernel with the two-GEMM path on shapes that
// exercise its tails: odd row counts, class counts that are not multiples of 5,
// dimensions that are not multiples of 16 or 8.
func TestFusedParity(t *testing.T) {
	t.Parallel()
	if !fusedOK {
		t.Skip("fused kernel not built or no AVX2/FMA (" + BLAS + ")")
	}
	for _, sh := range []struct{ n, d, k, threads int }{
		{1, 1, 2, 1}, {3, 7, 3, 1}, {37, 5, 4, 2}, {301, 23, 10, 2}, {1000, 784, 10, 2},
		{555, 64, 7, 3}, {200, 130, 32, 2}, {129, 8, 6, 1}, {64, 16, 5, 1}, {99, 24, 11, 2},
	} {
		for _, s := range []float64{0.01, 1} {
			ds, theta := randomProblem(uint64(sh.n*sh.d+sh.k), sh.n, sh.d, sh.k, s)
			o := newObjective(ds, sh.k, 0.5, sh.threads)
			g0, g1 := make([]float64, len(theta)), make([]float64, len(theta))
			o.fused = false
			f0 := o.eval(theta, g0)
			o.fused = true
			f1 := o.eval(theta, g1)
			if math.Abs(f1-f0) > 1e-6*math.Abs(f0) {
				t.Errorf("%+v, scale %v: fused loss %v, GEMMs %v", sh, s, f1, f0)
			}
			gmax := maxAbs(g0)
			for i := range g0 {
				if math.Abs(g1[i]-g0[i]) > 1e-5*gmax {
					t.Errorf("%+v, scale %v: gradient %d: fused %v, GEMMs %v (max %v)", sh, s, i, g1[i], g0[i], gmax)
					break
				}
			}
			if f2 := o.eval(theta, g0); f2 != f1 {
				t.Errorf("%+v: fused loss %v then %v: not deterministic", sh, f1, f2)
			}
		}
	}
}
