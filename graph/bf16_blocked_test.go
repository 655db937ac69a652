package graph

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// blockedMLP builds x [n,d] -> fc (W1 [f,d], GELU) -> proj (W2 stored [f,d], InOut,
// + residual x) in precision p over the given weight tensors, and returns the builder
// and the output node.
func blockedMLP(t *testing.T, p Precision, w1, w2 *tensor.Dense, n, d int) (*Builder, *G.Node) {
	t.Helper()
	b := NewBuilder()
	b.SetPrecision(p)
	x := b.Input("x", n, d)
	u, err := Linear("fc", x, b.Param("fc.weight", w1), LinearOptions{Act: GELU})
	if err != nil {
		t.Fatal(err)
	}
	y, err := Linear("proj", u, b.Param("proj", w2), LinearOptions{InOut: true, Residual: x})
	if err != nil {
		t.Fatal(err)
	}
	return b, y
}

// TestPackWeights checks that PackWeights repacks the Linear weights of a BF16 graph
// into oneDNN's blocked layout, in place, both orientations, and that graphs built
// over them afterwards give what the plain layout gave; that it leaves alone what it
// must (a weight whose blocked layout needs padding, one keep refuses, one another
// kind of op reads); and that a float32 graph refuses a blocked weight by name.
//
// A blocked weight at a row count where oneDNN would not read its layout is reordered
// back to the plain one on each call (unblockTest): the same results again.
func TestPackWeights(t *testing.T) {
	if !blockedGEMM() {
		t.Skipf("oneDNN has no bfloat16 GEMM from blocked weights in this build or on this CPU (%s)", BF16Backend())
	}
	rng := rand.New(rand.NewPCG(31, 32))
	const n, d, f = 70, 64, 128
	half := func(data []float32, shape ...int) *tensor.Dense {
		w := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
		if _, err := ToBF16(w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	w1, w2 := half(randn(rng, f*d, 0.2), f, d), half(randn(rng, f*d, 0.1), f, d)
	x := randn(rng, n*d, 1)
	run := func() []float32 {
		b, y := blockedMLP(t, BF16, w1, w2, n, d)
		got, err := compileOutput(t, b, "y", y).Run(map[string][]float32{"x": x})
		if err != nil {
			t.Fatal(err)
		}
		return got["y"].Data
	}
	want := run()
	plain := append([]uint16(nil), w1.Data().([]uint16)...)

	b, _ := blockedMLP(t, BF16, w1, w2, n, d)
	if k, err := b.PackWeights(func(*tensor.Dense) bool { return false }); k != 0 || err != nil {
		t.Fatalf("PackWeights refusing every weight: %d, %v", k, err)
	}
	if k, err := b.PackWeights(nil); k != 2 || err != nil {
		t.Fatalf("PackWeights: %d, %v; want 2 weights", k, err)
	}
	if w1.Dtype() != BF16Blocked || w2.Dtype() != BF16Blocked || !w1.Shape().Eq(tensor.Shape{f, d}) {
		t.Fatalf("after PackWeights: %v %v %v; want BF16Blocked [%d %d]", w1.Dtype(), w2.Dtype(), w1.Shape(), f, d)
	}
	h, _ := weight16(w1)
	if slices.Equal(h, plain) {
		t.Error("the blocked weight holds its values in the plain order")
	}
	if _, err := b.Compile(); err == nil || !strings.Contains(err.Error(), "build it again") {
		t.Errorf("compiling the builder that packed: %v", err)
	}
	for run1 := range 2 {
		if diff, ok := close32(run(), want, 1e-5); !ok {
			t.Errorf("run %d: blocked weights give results %g from the plain ones", run1, diff)
		}
	}
	// Where oneDNN would not read the blocked layout at some row count, the GEMM
	// reorders the weight back on each call: the same results.
	unblockTest(true)
	unblocked := run()
	unblockTest(false)
	if diff, ok := close32(unblocked, want, 1e-5); !ok {
		t.Errorf("blocked weights reordered back give results %g from the plain ones", diff)
	}

	ref, y := blockedMLP(t, FP32, w1, w2, n, d)
	if err := ref.Output("y", y); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Compile(); err == nil || !strings.Contains(err.Error(), "fc.weight") || !strings.Contains(err.Error(), "blocked") {
		t.Errorf("a float32 graph over blocked weights: %v, want a refusal naming fc.weight", err)
	}

	// Left alone: 40 inputs would need padding; a weight also read as an activation.
	odd := half(randn(rng, 40*64, 0.1), 64, 40)
	bo := NewBuilder()
	bo.SetPrecision(BF16)
	if _, err := Linear("fc", bo.Input("x", 4, 40), bo.Param("odd", odd), LinearOptions{}); err != nil {
		t.Fatal(err)
	}
	shared := half(randn(rng, 64*64, 0.1), 64, 64)
	ws := bo.Param("shared", shared)
	if _, err := Linear("a", bo.Input("z", 4, 64), ws, LinearOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Linear("b", bo.Input("v", 4, 64), ws, LinearOptions{InOut: true}); err != nil {
		t.Fatal(err)
	}
	if k, err := bo.PackWeights(nil); k != 0 || err != nil || odd.Dtype() != BFloat16 || shared.Dtype() != BFloat16 {
		t.Errorf("PackWeights over a padded and a doubly read weight: %d, %v, dtypes %v %v; want 0 and both plain", k, err, odd.Dtype(), shared.Dtype())
	}
}
