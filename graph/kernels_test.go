package graph

import (
	"math"
	"math/rand/v2"
	"slices"
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

// The unfused reference kernels: the plain loops the fused ops replaced, kept here to
// check them.

// refSoftmax computes, for each row of each [T,C] matrix in x [M,T,C], softmax(scale*x)
// over C with float64 math.Exp; with causal set, column j > row i gets weight 0.
func refSoftmax(dst, x []float32, t, c int, scale float32, causal bool) {
	for r := 0; r*c < len(x); r++ {
		i := r % t
		row, out := x[r*c:(r+1)*c], dst[r*c:(r+1)*c]
		n := c
		if causal && i+1 < c {
			n = i + 1
		}
		mx := math.Inf(-1)
		for _, v := range row[:n] {
			mx = math.Max(mx, float64(v*scale))
		}
		var sum float64
		for j, v := range row[:n] {
			e := math.Exp(float64(v*scale) - mx)
			out[j] = float32(e)
			sum += e
		}
		for j := range out[:n] {
			out[j] = float32(float64(out[j]) / sum)
		}
		clear(out[n:])
	}
}

// refSplitHeads extracts part (0 q, 1 k, 2 v) of a packed projection x [B*T, 3D] into
// dst [B*H, T, K].
func refSplitHeads(dst, x []float32, b, t, h, k, part int) {
	d := h * k
	for bi := 0; bi < b; bi++ {
		for ti := 0; ti < t; ti++ {
			src := x[(bi*t+ti)*3*d+part*d:]
			for hi := 0; hi < h; hi++ {
				copy(dst[((bi*h+hi)*t+ti)*k:((bi*h+hi)*t+ti+1)*k], src[hi*k:(hi+1)*k])
			}
		}
	}
}

// refMergeHeads is the inverse layout change: x [B*H, T, K] to dst [B*T, H*K].
func refMergeHeads(dst, x []float32, b, t, h, k int) {
	d := h * k
	for bi := 0; bi < b; bi++ {
		for hi := 0; hi < h; hi++ {
			for ti := 0; ti < t; ti++ {
				copy(dst[(bi*t+ti)*d+hi*k:(bi*t+ti)*d+(hi+1)*k], x[((bi*h+hi)*t+ti)*k:((bi*h+hi)*t+ti+1)*k])
			}
		}
	}
}

// refMatMul returns a [M,K] times b [K,N] (or b^T for b stored [N,K]) in float64.
func refMatMul(a, b []float32, m, k, n int, bT bool) []float32 {
	c := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for l := 0; l < k; l++ {
				bv := b[l*n+j]
				if bT {
					bv = b[j*k+l]
				}
				s += float64(a[i*k+l]) * float64(bv)
			}
			c[i*n+j] = float32(s)
		}
	}
	return c
}

// refAttention is attention through the unfused kernels: split heads, Q K^T, softmax,
// times V, merge heads.
func refAttention(qkv []float32, b, t, h int, causal bool) []float32 {
	d := len(qkv) / (b * t * 3)
	k := d / h
	parts := make([][]float32, 3)
	for p := range parts {
		parts[p] = make([]float32, b*t*d)
		refSplitHeads(parts[p], qkv, b, t, h, k, p)
	}
	ctx := make([]float32, b*t*d)
	for m := 0; m < b*h; m++ {
		q, kk, v := parts[0][m*t*k:(m+1)*t*k], parts[1][m*t*k:(m+1)*t*k], parts[2][m*t*k:(m+1)*t*k]
		s := refMatMul(q, kk, t, k, t, true)
		refSoftmax(s, s, t, t, float32(1/math.Sqrt(float64(k))), causal)
		copy(ctx[m*t*k:], refMatMul(s, v, t, t, k, false))
	}
	out := make([]float32, b*t*d)
	refMergeHeads(out, ctx, b, t, h, k)
	return out
}

// randn returns n deterministic N(0, scale^2) values.
func randn(rng *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = scale * float32(rng.NormFloat64())
	}
	return x
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
		// Causal: the first row sees only column 0.
		{"softmaxRow causal", func() []float32 {
			row := []float32{5, 9}
			softmaxRow(row, 1)
			return row
		}, []float32{1, 0}},
		{"softmaxRow", func() []float32 {
			row := []float32{0, float32(math.Log(3))}
			softmaxRow(row, 2)
			return row
		}, []float32{0.25, 0.75}},
		{"quickGELU", func() []float32 {
			x := []float32{0, 1, -100}
			quickGELU(x)
			return x
		}, []float32{0, float32(1 / (1 + math.Exp(-1.702))), 0}},
		{"gelu", func() []float32 {
			x := []float32{0, 1}
			gelu(x)
			return x
		}, []float32{0, 0.8413447}},
		{"patchify", func() []float32 {
			// R=2, P=1: 4 patches of the 3 channels.
			dst := make([]float32, 12)
			patchify(dst, []float32{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23}, 2, 1)
			return dst
		}, []float32{0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23}},
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

// TestExpf checks the float32 exp against math.Exp over the range the kernels use.
func TestExpf(t *testing.T) {
	var worst float64
	for x := float32(-87); x <= 88; x += 0.001 {
		want := math.Exp(float64(x))
		got := float64(expf(x))
		worst = math.Max(worst, math.Abs(got-want)/want)
	}
	t.Logf("expf: max relative error %.3g", worst)
	if worst > 1e-6 {
		t.Errorf("expf: max relative error %g, want <= 1e-6", worst)
	}
	if expf(-1000) > 1e-37 || !math.IsInf(float64(expf(1000)), 1) && expf(1000) < 1e38 {
		t.Errorf("expf clamps: got %g and %g", expf(-1000), expf(1000))
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
	m := compileOutput(t, b, "z", z)
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

// TestCompileDropsWhatNoOutputReads builds two branches over two inputs and reads one:
// the other branch never runs, its input need not be given, and its weight is not
// held by the machine's graph.
func TestCompileDropsWhatNoOutputReads(t *testing.T) {
	b := NewBuilder()
	x, unused := b.Input("x", 2, 3), b.Input("unused", 2, 3)
	var ran []string
	branch := func(name string, in *G.Node) *G.Node {
		n, err := Host(name, func(dst []float32, v [][]float32) error {
			ran = append(ran, name)
			for i, f := range v[0] {
				dst[i] = 2 * f
			}
			return nil
		}, []int{2, 3}, in)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	read, dead := branch("read", x), branch("dead", unused)
	w := b.Param("dead.weight", tensor.New(tensor.WithShape(3, 3), tensor.WithBacking(make([]float32, 9))))
	if _, err := G.Mul(dead, w); err != nil {
		t.Fatal(err)
	}
	m := compileOutput(t, b, "y", read)
	for _, n := range b.G.AllNodes() {
		if n == dead || n == unused || n == w {
			t.Errorf("node %s is still in the compiled graph", n.Name())
		}
	}
	out, err := m.Run(map[string][]float32{"x": {1, 2, 3, 4, 5, 6}})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := close32(out["y"].Data, []float32{2, 4, 6, 8, 10, 12}, 0); !ok || !slices.Equal(ran, []string{"read"}) {
		t.Errorf("got %v (max diff %g), ran %v: want only the read branch", out["y"].Data, d, ran)
	}
	if _, err := m.Run(map[string][]float32{"x": make([]float32, 6), "unused": {1}}); err != nil {
		t.Errorf("an input no output reads was checked: %v", err)
	}
}
