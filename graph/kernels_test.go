package graph

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func close32(got, want []float32, tol float64) (float64, bool) {
	var d float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i]-want[i])))
	}
	return d, len(got) == len(want) && d <= tol
}

func TestKernels(t *testing.T) {
	for i, test := range []struct {
		name string
		run  func() []float32
		want []float32
	}{
		// Row (1,2,3): mean 2, var 2/3; gain 2, bias 1.
		{"layerNorm", func() []float32 {
			dst := make([]float32, 3)
			layerNorm(dst, []float32{1, 2, 3}, []float32{2, 2, 2}, []float32{1, 1, 1}, 3, 0)
			return dst
		}, []float32{1 - 2*float32(math.Sqrt(1.5)), 1, 1 + 2*float32(math.Sqrt(1.5))}},
		// Causal 2x2: row 0 sees only column 0.
		{"softmax causal", func() []float32 {
			dst := make([]float32, 4)
			softmax(dst, []float32{5, 9, 0, float32(math.Log(3))}, 2, 2, 1, true)
			return dst
		}, []float32{1, 0, 0.25, 0.75}},
		{"softmax scale", func() []float32 {
			dst := make([]float32, 2)
			softmax(dst, []float32{0, float32(math.Log(9))}, 1, 2, 0.5, false)
			return dst
		}, []float32{0.25, 0.75}},
		{"quickGELU", func() []float32 {
			dst := make([]float32, 2)
			quickGELU(dst, []float32{0, 1})
			return dst
		}, []float32{0, float32(1 / (1 + math.Exp(-1.702)))}},
		{"gelu", func() []float32 {
			dst := make([]float32, 2)
			gelu(dst, []float32{0, 1})
			return dst
		}, []float32{0, 0.8413447}},
		// B=1, T=2, H=2, K=1: qkv rows (q0 q1 k0 k1 v0 v1).
		{"splitHeads k", func() []float32 {
			dst := make([]float32, 4)
			splitHeads(dst, []float32{1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16}, 1, 2, 2, 1, 1)
			return dst
		}, []float32{3, 13, 4, 14}},
		{"mergeHeads", func() []float32 {
			dst := make([]float32, 4)
			mergeHeads(dst, []float32{3, 13, 4, 14}, 1, 2, 2, 1)
			return dst
		}, []float32{3, 4, 13, 14}},
		{"classPosEmbed", func() []float32 {
			dst := make([]float32, 4)
			classPosEmbed(dst, []float32{10, 20}, []float32{1, 2}, []float32{100, 200, 300, 400}, 1, 2, 2)
			return dst
		}, []float32{101, 202, 310, 420}},
		{"selectRows", func() []float32 {
			dst := make([]float32, 2)
			selectRows(dst, []float32{1, 2, 3, 4, 5, 6}, []int{2, 0}, 3, 1)
			return dst
		}, []float32{3, 4}},
	} {
		got := test.run()
		if d, ok := close32(got, test.want, 1e-6); !ok {
			t.Errorf("test %d (%s): got %v want %v (max diff %g)", i, test.name, got, test.want, d)
		}
	}
}

// TestMachineReuse builds a small graph once and runs it on two inputs, checking that
// outputs follow the inputs (no stale values) and that bad inputs are errors.
func TestMachineReuse(t *testing.T) {
	b := NewBuilder()
	x := b.Input("x", 2, 3)
	gain := b.Param("ln.weight", tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 1, 1})))
	bias := b.Param("ln.bias", tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{0, 0, 0})))
	y, err := LayerNorm("ln", x, gain, bias, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	w := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 0, 0, 0, 1, 0})) // [Out,In]
	if err := w.T(); err != nil {
		t.Fatal(err)
	}
	z, err := G.Mul(y, b.Param("proj.weight", w)) // [2,3] @ [3,2]: first two columns
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Output("z", z); err != nil {
		t.Fatal(err)
	}
	m, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := float32(math.Sqrt(1.5 / (1 + 1.5e-5)))
	for i, test := range []struct {
		in, want []float32
	}{
		{[]float32{1, 2, 3, 3, 2, 1}, []float32{-s, 0, s, 0}},
		{[]float32{0, 0, 1, 5, 5, 5}, []float32{-1 / float32(math.Sqrt2), -1 / float32(math.Sqrt2), 0, 0}},
	} {
		out, err := m.Run(map[string][]float32{"x": test.in})
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := close32(out["z"].Data, test.want, 1e-3); !ok {
			t.Errorf("test %d: got %v want %v (max diff %g)", i, out["z"].Data, test.want, d)
		}
	}
	if _, err := m.Run(map[string][]float32{"x": {1}}); err == nil {
		t.Error("wrong input size accepted")
	}
	if _, err := m.Run(nil); err == nil {
		t.Error("missing input accepted")
	}
}
