package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// param wraps data as a weight of the given shape.
func param(b *Builder, name string, data []float32, shape ...int) *G.Node {
	return b.Param(name, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data)))
}

// compileOutput marks y as b's output name, compiles b and closes the Machine when
// the test ends.
func compileOutput(t testing.TB, b *Builder, name string, y *G.Node) *Machine {
	t.Helper()
	if err := b.Output(name, y); err != nil {
		t.Fatal(err)
	}
	m, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// runOne compiles b with output y and runs it on inputs.
func runOne(t testing.TB, b *Builder, y *G.Node, inputs map[string][]float32) []float32 {
	t.Helper()
	m := compileOutput(t, b, "y", y)
	out, err := m.Run(inputs)
	if err != nil {
		t.Fatal(err)
	}
	return out["y"].Data
}

// TestLinearOp checks every LinearOp variant against the float64 reference product
// followed by the unfused bias add, residual add and float64 activation.
func TestLinearOp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, in, out = 5, 7, 6
	x, w, bias, res := randn(rng, n*in, 1), randn(rng, out*in, 1), randn(rng, out, 1), randn(rng, n*out, 1)
	for i, test := range []struct {
		bias, res, inOut bool
		act              Activation
	}{
		{}, {bias: true}, {bias: true, act: QuickGELU}, {bias: true, act: GELU},
		{bias: true, res: true}, {res: true}, {inOut: true},
	} {
		b := NewBuilder()
		xn := b.Input("x", n, in)
		wShape := []int{out, in}
		if test.inOut {
			wShape = []int{in, out}
		}
		opt := LinearOptions{Act: test.act, InOut: test.inOut}
		if test.bias {
			opt.Bias = param(b, "b", bias, out)
		}
		if test.res {
			opt.Residual = b.Input("res", n, out)
		}
		y, err := Linear("fc", xn, param(b, "w", w, wShape...), opt)
		if err != nil {
			t.Fatal(err)
		}
		got := runOne(t, b, y, map[string][]float32{"x": x, "res": res})

		want := refMatMul(x, w, n, in, out, !test.inOut)
		for r := 0; r < n; r++ {
			for j := 0; j < out; j++ {
				v := float64(want[r*out+j])
				if test.bias {
					v += float64(bias[j])
				}
				if test.res {
					v += float64(res[r*out+j])
				}
				want[r*out+j] = float32(act64(test.act, v))
			}
		}
		if d, ok := close32(got, want, 1e-5); !ok {
			t.Errorf("test %d (%+v): max diff %g\ngot  %v\nwant %v", i, test, d, got, want)
		}
	}
	b := NewBuilder()
	if _, err := Linear("bad", b.Input("x", 2, 3), param(b, "w", make([]float32, 8), 2, 4), LinearOptions{}); err == nil {
		t.Error("a [2,3] x [2,4]^T product was accepted")
	}
}

// TestAttentionOp checks the fused attention against split heads, Q K^T, the exact
// softmax, times V and merge heads, on one and several goroutines.
func TestAttentionOp(t *testing.T) {
	defer SetThreads(Threads())
	rng := rand.New(rand.NewPCG(3, 4))
	const bsz, seq, heads, d = 2, 5, 3, 12
	qkv := randn(rng, bsz*seq*3*d, 1)
	for i, test := range []struct {
		causal  bool
		threads int
	}{{false, 1}, {true, 1}, {false, 4}, {true, 3}} {
		SetThreads(test.threads)
		b := NewBuilder()
		y, err := Attention("attn", b.Input("qkv", bsz*seq, 3*d), bsz, seq, heads, test.causal)
		if err != nil {
			t.Fatal(err)
		}
		got := runOne(t, b, y, map[string][]float32{"qkv": qkv})
		want := refAttention(qkv, bsz, seq, heads, test.causal)
		if d, ok := close32(got, want, 1e-5); !ok {
			t.Errorf("test %d (%+v): max diff %g", i, test, d)
		} else {
			t.Logf("test %d (%+v): max diff %.3g", i, test, d)
		}
	}
}

// TestPatchEmbedOp checks patchify + conv1 + class token + positional embedding
// against the plain product of the patch rows and the weight.
func TestPatchEmbedOp(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const bsz, r, p, d = 2, 4, 2, 3
	g2, pp := (r/p)*(r/p), 3*p*p
	px, w, cls, pos := randn(rng, bsz*3*r*r, 1), randn(rng, d*pp, 1), randn(rng, d, 1), randn(rng, (g2+1)*d, 1)
	b := NewBuilder()
	y, err := PatchEmbed("embed", b.Input("px", bsz, 3*r*r), param(b, "w", w, d, pp), param(b, "cls", cls, d),
		param(b, "pos", pos, g2+1, d), bsz, r, p)
	if err != nil {
		t.Fatal(err)
	}
	got := runOne(t, b, y, map[string][]float32{"px": px})
	var want []float32
	for i := 0; i < bsz; i++ {
		patches := make([]float32, g2*pp)
		patchify(patches, px[i*3*r*r:(i+1)*3*r*r], r, p)
		emb := append(append([]float32(nil), cls...), refMatMul(patches, w, g2, pp, d, true)...)
		for j := range emb {
			emb[j] += pos[j]
		}
		want = append(want, emb...)
	}
	if d, ok := close32(got, want, 1e-5); !ok {
		t.Errorf("max diff %g\ngot  %v\nwant %v", d, got, want)
	}
}

// TestArenaReuse runs a pre-LN residual chain, whose ops share few arena slots, twice
// with different inputs and with an intermediate tapped, and checks every output
// against the same chain run op by op outside a Machine (each result allocated).
func TestArenaReuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n, d, layers = 6, 8, 4
	ones, zeros := make([]float32, d), make([]float32, d)
	for i := range ones {
		ones[i] = 1
	}
	ws := make([][]float32, layers)
	for i := range ws {
		ws[i] = randn(rng, d*d, 0.3)
	}
	b := NewBuilder()
	x := b.Input("x", n, d)
	gain, bias := param(b, "g", ones, d), param(b, "b", zeros, d)
	h := x
	for i := 0; i < layers; i++ {
		ln, err := LayerNorm(fmt.Sprintf("ln%d", i), h, gain, bias, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if h, err = Linear(fmt.Sprintf("fc%d", i), ln, param(b, fmt.Sprintf("w%d", i), ws[i], d, d), LinearOptions{Residual: h}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := b.Output("mid", h); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := compileOutput(t, b, "y", h)
	if got, most := m.ArenaBytes(), 4*n*d*(2*layers); got >= most {
		t.Errorf("arena holds %d bytes, not less than one buffer per op (%d)", got, most)
	}
	for run := 0; run < 2; run++ {
		in := randn(rng, n*d, 1)
		out, err := m.Run(map[string][]float32{"x": in})
		if err != nil {
			t.Fatal(err)
		}
		// The same chain, op by op, each result freshly allocated.
		cur := tensor.New(tensor.WithShape(n, d), tensor.WithBacking(in))
		gt, bt := tensor.New(tensor.WithShape(d), tensor.WithBacking(ones)), tensor.New(tensor.WithShape(d), tensor.WithBacking(zeros))
		for i := 0; i < layers; i++ {
			ln, err := (&LayerNormOp{Eps: 1e-5}).Do(cur, gt, bt)
			if err != nil {
				t.Fatal(err)
			}
			v, err := (&LinearOp{Residual: true}).Do(ln, tensor.New(tensor.WithShape(d, d), tensor.WithBacking(ws[i])), cur)
			if err != nil {
				t.Fatal(err)
			}
			cur = v.(*tensor.Dense)
			if i == 1 {
				if dd, ok := close32(out["mid"].Data, cur.Data().([]float32), 0); !ok {
					t.Errorf("run %d: tapped block 1 differs by %g", run, dd)
				}
			}
		}
		if dd, ok := close32(out["y"].Data, cur.Data().([]float32), 0); !ok {
			t.Errorf("run %d: output differs by %g", run, dd)
		}
	}
}

var benchOut []float32

// BenchmarkLinearFC times ViT-B/32's c_fc + QuickGELU at batch 32 ([1600,768] x [768,3072]).
func BenchmarkLinearFC(b *testing.B) { benchLinear(b, 1600, 768, 3072, QuickGELU) }

// BenchmarkLinearQKV times ViT-B/32's in_proj at batch 32 ([1600,768] x [768,2304]).
func BenchmarkLinearQKV(b *testing.B) { benchLinear(b, 1600, 768, 2304, Identity) }

// BenchmarkLinearProj times ViT-B/32's c_proj at batch 32 ([1600,3072] x [3072,768]).
func BenchmarkLinearProj(b *testing.B) { benchLinear(b, 1600, 3072, 768, Identity) }

func benchLinear(b *testing.B, n, in, out int, act Activation) {
	rng := rand.New(rand.NewPCG(1, 1))
	bld := NewBuilder()
	y, err := Linear("fc", bld.Input("x", n, in), param(bld, "w", randn(rng, out*in, 0.02), out, in),
		LinearOptions{Bias: param(bld, "b", randn(rng, out, 0.02), out), Act: act})
	if err != nil {
		b.Fatal(err)
	}
	benchGraph(b, bld, y, map[string][]float32{"x": randn(rng, n*in, 1)}, 2*float64(n*in*out))
}

// BenchmarkAttention times ViT-B/32's attention at batch 32 (B=32, T=50, H=12, D=768).
func BenchmarkAttention(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	bld := NewBuilder()
	y, err := Attention("attn", bld.Input("qkv", 32*50, 3*768), 32, 50, 12, false)
	if err != nil {
		b.Fatal(err)
	}
	benchGraph(b, bld, y, map[string][]float32{"qkv": randn(rng, 32*50*3*768, 1)}, 4*32*50*50*768)
}

// BenchmarkLayerNorm times a LayerNorm over ViT-B/32's tokens at batch 32 ([1600,768]).
func BenchmarkLayerNorm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	bld := NewBuilder()
	y, err := LayerNorm("ln", bld.Input("x", 1600, 768), param(bld, "g", randn(rng, 768, 1), 768), param(bld, "b", randn(rng, 768, 1), 768), 1e-5)
	if err != nil {
		b.Fatal(err)
	}
	benchGraph(b, bld, y, map[string][]float32{"x": randn(rng, 1600*768, 1)}, 0)
}

// benchGraph compiles bld with output y outside the timer and times Machine.Run,
// reporting GFLOP/s when flops is given.
func benchGraph(b *testing.B, bld *Builder, y *G.Node, in map[string][]float32, flops float64) {
	m := compileOutput(b, bld, "y", y)
	if _, err := m.Run(in); err != nil { // one-time work (activation buffers) outside the timer
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := m.Run(in)
		if err != nil {
			b.Fatal(err)
		}
		benchOut = out["y"].Data
	}
	if flops > 0 {
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
}

// TestSGEMMRate checks that the BLAS timing reports a rate for real shapes and none
// for no work.
func TestSGEMMRate(t *testing.T) {
	if r := SGEMMRate([][3]int{{64, 48, 32}, {10, 20, 30}}, 2); !(r > 0) || math.IsInf(r, 0) {
		t.Errorf("SGEMMRate = %g GFLOP/s", r)
	}
	if r := SGEMMRate(nil, 3); r != 0 {
		t.Errorf("SGEMMRate of nothing = %g", r)
	}
}
