package probes

import (
	"math"
	"testing"
)

// fashionPrior builds an imperfect zero-shot classifier for Fashion-MNIST pixels: per
// class the mean of 20 training images outside the pool the shots come from, mixed
// with the next class's mean at weight mix, so that zero-shot confuses neighbours.
func fashionPrior(all Dataset, from int, mix float64) []float32 {
	d := all.D
	mean := make([]float64, 10*d)
	count := make([]int, 10)
	for i := from; i < all.N; i++ {
		c := all.Y[i]
		if count[c] == 20 {
			continue
		}
		count[c]++
		for j := 0; j < d; j++ {
			mean[c*d+j] += float64(all.X[i*d+j]) / 20
		}
	}
	text := make([]float32, 10*d)
	for c := 0; c < 10; c++ {
		next := (c + 1) % 10
		for j := 0; j < d; j++ {
			text[c*d+j] = float32(mean[c*d+j] + mix*mean[next*d+j])
		}
	}
	return text
}

// TestFashionMNISTFewShot is the real-data check: every method on Fashion-MNIST
// pixels/255 with an imperfect prior (zero-shot about 57%), k = 1, 4, 16 over three
// seeds. Every mean accuracy must be finite and well above chance; at one shot the
// methods that use the prior must stay near it and beat the plain probe (the CLIP
// paper's gap); at 16 shots every method must beat the prior.
func TestFashionMNISTFewShot(t *testing.T) {
	if testing.Short() {
		t.Skip("fits every method 9 times on Fashion-MNIST (about 30 s)")
	}
	all, test := fashionMNIST(t, 0)
	pool := all.Subset(seq(0, 10000))
	text := fashionPrior(all, 50000, 0.6)
	test = test.Subset(seq(0, 2000))
	zs, err := Run(pool, test, 10, Protocol{Method: &ZSLP{Epochs: -1}, Shots: 1, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	zero := zs.Metrics.Top1
	t.Logf("zero-shot (imperfect prior): %.4f", zero)
	mean := map[string]map[int]float64{}
	for _, name := range MethodNames() {
		mean[name] = map[int]float64{}
		for _, k := range []int{1, 4, 16} {
			var accs []float64
			for seed := uint64(0); seed < 3; seed++ {
				m, _ := NewMethod(name)
				if lr, ok := m.(*LogReg); ok {
					lr.Sweep = true
				}
				o, err := Run(pool, test, 10, Protocol{Method: m, Shots: k, Seed: seed, Text: text})
				if err != nil {
					t.Fatalf("%s k=%d seed %d: %v", name, k, seed, err)
				}
				accs = append(accs, o.Metrics.Top1)
			}
			m, std := MeanStd(accs)
			mean[name][k] = m
			t.Logf("%-13s k=%2d: %.4f +- %.4f", name, k, m, std)
			if math.IsNaN(m) || m < 0.3 {
				t.Errorf("%s k=%d: got mean accuracy %.4f want finite and >= 0.3 (chance 0.1)", name, k, m)
			}
		}
	}
	for name, acc := range mean {
		if name != "logreg" && (acc[1] < zero-0.05 || acc[1] <= mean["logreg"][1]) {
			t.Errorf("%s k=1: got %.4f want within 0.05 of zero-shot %.4f and above the plain probe's %.4f", name, acc[1], zero, mean["logreg"][1])
		}
		if acc[16] < zero+0.02 {
			t.Errorf("%s k=16: got %.4f want at least 0.02 above zero-shot %.4f", name, acc[16], zero)
		}
	}
}

func seq(lo, hi int) []int {
	s := make([]int, hi-lo)
	for i := range s {
		s[i] = lo + i
	}
	return s
}
