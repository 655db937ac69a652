package probes

import (
	"math"
	"math/rand/v2"
)

// clipLike draws n examples per class of a K-class problem in D dimensions shaped like
// CLIP features: a common direction shared by every image (CLIP's features share a
// large one), a unit class direction mu_c and Gaussian noise of norm about spread. The
// zero-shot classifier is mu_c turned by prior radians towards a random direction, an
// imperfect text prior, plus a share of the common direction.
func clipLike(seed uint64, k, d, n int, spread, prior float64) (all Dataset, text []float32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	unit := func() []float64 {
		v := make([]float64, d)
		var ss float64
		for j := range v {
			v[j] = rng.NormFloat64()
			ss += v[j] * v[j]
		}
		for j := range v {
			v[j] /= math.Sqrt(ss)
		}
		return v
	}
	common := unit()
	mu := make([][]float64, k)
	text = make([]float32, k*d)
	for c := range mu {
		mu[c] = unit()
		r := unit()
		for j := 0; j < d; j++ {
			text[c*d+j] = float32(math.Cos(prior)*mu[c][j] + math.Sin(prior)*r[j] + 0.5*common[j])
		}
	}
	all = Dataset{N: k * n, D: d}
	for c := 0; c < k; c++ {
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				all.X = append(all.X, float32(2*common[j]+mu[c][j]+spread*rng.NormFloat64()/math.Sqrt(float64(d))))
			}
			all.Y = append(all.Y, c)
		}
	}
	return all, text
}
