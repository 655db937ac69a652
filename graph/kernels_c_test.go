package graph

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The C kernels of the openblas build (kernels_openblas.c) against the Go kernels they
// replace, to 1e-5. Skipped in builds without them.

func skipNoC(t *testing.T) {
	t.Helper()
	if !cKernels {
		t.Skip("no C kernels in this build or on this CPU")
	}
}

func TestCLinearEpilogue(t *testing.T) {
	skipNoC(t)
	rng := rand.New(rand.NewPCG(3, 1))
	for _, nout := range []int{1, 7, 8, 13, 64, 3072} {
		rows := 5
		bias, res := randn(rng, nout, 1), randn(rng, rows*nout, 1)
		x := randn(rng, rows*nout, 4)
		x[0] = 80 // clamped exponent on both sides
		x[len(x)-1] = -80
		for _, act := range []Activation{Identity, QuickGELU} {
			for _, c := range []struct{ b, r []float32 }{{nil, nil}, {bias, nil}, {bias, res}, {nil, res}} {
				if act == QuickGELU && c.r != nil {
					continue
				}
				want, got := slices.Clone(x), slices.Clone(x)
				linearEpilogue(want, c.b, nil, c.r, nout, act)
				if !cLinearEpilogue(got, c.b, c.r, nout, act) {
					t.Fatal("C epilogue declined")
				}
				if d, ok := close32(got, want, 1e-5); !ok {
					t.Errorf("nout %d %v bias %v res %v: max diff %g", nout, act, c.b != nil, c.r != nil, d)
				}
			}
		}
	}
}

func TestCLayerNorm(t *testing.T) {
	skipNoC(t)
	rng := rand.New(rand.NewPCG(4, 1))
	for _, d := range []int{3, 8, 20, 512, 768} {
		x := randn(rng, 7*d, 3)
		for i := range x {
			x[i] += 5 // an offset mean
		}
		g, b := randn(rng, d, 1), randn(rng, d, 1)
		want, got := make([]float32, len(x)), make([]float32, len(x))
		layerNorm(want, x, g, b, d, 1e-5)
		if !cLayerNorm(got, x, g, b, d, 1e-5) {
			t.Fatal("C LayerNorm declined")
		}
		if diff, ok := close32(got, want, 1e-5); !ok {
			t.Errorf("d %d: max diff %g", d, diff)
		}
	}
}

func TestCAttention(t *testing.T) {
	skipNoC(t)
	rng := rand.New(rand.NewPCG(5, 1))
	for _, c := range []struct {
		b, t, h, k int
		causal     bool
	}{{2, 50, 3, 64, false}, {2, 77, 2, 64, true}, {3, 1, 2, 64, true}, {2, 9, 2, 8, false}, {1, 10, 2, 40, true}, {1, 17, 1, 24, false}} {
		d := c.h * c.k
		qkv := randn(rng, c.b*c.t*3*d, 2)
		scale := float32(1 / math.Sqrt(float64(c.k)))
		want, got := make([]float32, c.b*c.t*d), make([]float32, c.b*c.t*d)
		for i := range got {
			got[i] = float32(math.NaN()) // every output must be written
		}
		attention(want, qkv, c.t, d, c.k, c.h, c.causal, scale, 0, c.b*c.h)
		// in two chunks, as parallel splits it
		mid := c.b * c.h / 2
		if !cAttention(got, qkv, c.t, d, c.k, c.h, c.causal, scale, 0, mid) ||
			!cAttention(got, qkv, c.t, d, c.k, c.h, c.causal, scale, mid, c.b*c.h) {
			t.Fatal("C attention declined")
		}
		if diff, ok := close32(got, want, 1e-5); !ok {
			t.Errorf("%+v: max diff %g", c, diff)
		}
	}
}
