package graph

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestBF16Round(t *testing.T) {
	for i, test := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80}, {-2, 0xc000}, {0, 0}, {float32(math.Copysign(0, -1)), 0x8000},
		{1 + 1.0/256, 0x3f80},                 // a tie: to even (down)
		{1 + 3.0/256, 0x3f82},                 // a tie: to even (up)
		{1 + 1.0/256 + 1.0/65536, 0x3f81},     // above the tie
		{math.MaxFloat32, 0x7f80},             // rounds up to infinity
		{float32(math.Inf(-1)), 0xff80},       // infinity stays
		{math.Float32frombits(0x00400000), 0}, // subnormal: zero, as the instructions give
		{math.Float32frombits(0x80000001), 0x8000},
	} {
		if got := bf16Round(test.in); got != test.want {
			t.Errorf("test %d: bf16Round(%g) = %#04x, want %#04x", i, test.in, got, test.want)
		}
	}
	if h := bf16Round(float32(math.NaN())); h&0x7f80 != 0x7f80 || h&0x7f == 0 || h&0x40 == 0 {
		t.Errorf("NaN rounds to %#04x, not a quiet NaN", h)
	}
	x := []float32{3.14159265, -1e-3, 65504}
	RoundBF16(x)
	for i, v := range x {
		if math.Float32bits(v)&0xffff != 0 {
			t.Errorf("RoundBF16 left low bits in value %d: %#08x", i, math.Float32bits(v))
		}
	}
	if x[0] != 3.140625 {
		t.Errorf("RoundBF16(pi) = %v, want 3.140625", x[0])
	}
}

func TestParsePrecision(t *testing.T) {
	for i, test := range []struct {
		in   string
		want Precision
		ok   bool
	}{{"fp32", FP32, true}, {"BF16", BF16, true}, {" bfloat16", BF16, true}, {"float32", FP32, true},
		{"fp16", FP16, true}, {"half", FP16, true}, {"TF32", TF32, true}, {"int8", FP32, false}, {"", FP32, false}} {
		got, err := ParsePrecision(test.in)
		if got != test.want || (err == nil) != test.ok {
			t.Errorf("test %d: ParsePrecision(%q) = %v, %v; want %v, ok %v", i, test.in, got, err, test.want, test.ok)
		}
		if err != nil && !strings.Contains(err.Error(), test.in) {
			t.Errorf("test %d: error %q does not name %q", i, err, test.in)
		}
	}
	for _, p := range []Precision{FP32, BF16, FP16, TF32} {
		if q, err := ParsePrecision(p.String()); q != p || err != nil {
			t.Errorf("ParsePrecision(%v.String()) = %v, %v", p, q, err)
		}
	}
}

func TestFP16Round(t *testing.T) {
	for i, test := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65519, 0x7bff}, {65520, 0x7c00},
		{1 + 1.0/2048, 0x3c00},                                                     // a tie: to even
		{1 + 3.0/2048, 0x3c02},                                                     // a tie: to even (up)
		{1.0 / (1 << 24), 0x0001}, {1.0 / (1 << 25), 0}, {1.5 / (1 << 24), 0x0002}, // subnormals, ties to even
		{float32(math.Copysign(1.0/(1<<14), -1)), 0x8400}, // the smallest normal
		{float32(math.Inf(1)), 0x7c00},
	} {
		if got := fp16Round(test.in); got != test.want {
			t.Errorf("test %d: fp16Round(%g) = %#04x, want %#04x", i, test.in, got, test.want)
		}
		if back := fp16Float(test.want); test.want&0x7c00 != 0x7c00 && test.want&0x7c00 != 0 && math.Abs(float64(back-test.in)) > math.Abs(float64(test.in))/1024 {
			t.Errorf("test %d: fp16Float(%#04x) = %g, far from %g", i, test.want, back, test.in)
		}
	}
	if h := fp16Round(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN rounds to %#04x, not a NaN", h)
	}
	// Every binary16 survives the round trip through float32.
	for h := range 1 << 16 {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaNs
		}
		if got := fp16Round(fp16Float(uint16(h))); got != uint16(h) {
			t.Fatalf("fp16Round(fp16Float(%#04x)) = %#04x", h, got)
		}
	}
}

// rounded returns a copy of x rounded to bfloat16.
func rounded(x []float32) []float32 {
	y := append([]float32(nil), x...)
	RoundBF16(y)
	return y
}

// halfOf returns x in bfloat16.
func halfOf(x []float32) []uint16 {
	h := make([]uint16, len(x))
	toBF16(h, x)
	return h
}

// TestMatmulBF16 checks each GEMM spec, with x in float32 (rounded a block at a time)
// and in bfloat16, on oneDNN where the build has it and on the fallback, against a
// float64 reference on the bfloat16-rounded operands.
func TestMatmulBF16(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(2)
	rng := rand.New(rand.NewPCG(11, 12))
	const m, k, n, ldd = 37, 24, 20, 23
	x, w, bias, scale := randn(rng, m*k, 1), randn(rng, n*k, 0.3), randn(rng, n, 1), randn(rng, n, 1)
	res, prior := randn(rng, m*n, 1), randn(rng, m*ldd, 1)
	specs := []mmSpec{
		{}, {Bias: true, Act: QuickGELU}, {Bias: true, Act: GELU, DstHalf: true},
		{Bias: true, Scale: true, Res: resF32}, {Res: resBF16, Act: ReLU}, {InOut: true, Bias: true},
		{Accumulate: true, LDD: ldd}, {Accumulate: true, LDD: ldd, DstHalf: true},
	}
	for _, s := range specs {
		s.XHalf = true
		specs = append(specs, s)
	}
	for i, test := range specs {
		test.N, test.K = n, k
		if test.LDD == 0 {
			test.LDD = n
		}
		// The reference: float64 sums of the rounded operands, then the epilogue.
		xr, wr := rounded(x), rounded(w)
		var want []float32
		wh := halfOf(w)
		if test.InOut { // the same values stored [K, N]
			wt := make([]float32, k*n)
			for j := range n {
				for l := range k {
					wt[l*n+j] = wr[j*k+l]
				}
			}
			want, wh = refMatMul(xr, wt, m, k, n, false), halfOf(wt)
		} else {
			want = refMatMul(xr, wr, m, k, n, true)
		}
		resIn := res
		if test.Res == resBF16 {
			resIn = rounded(res)
		}
		for r := range m {
			for j := range n {
				v := float64(want[r*n+j])
				if test.Accumulate {
					p := prior[r*ldd+j]
					if test.DstHalf {
						p = bf16Float(bf16Round(p))
					}
					v += float64(p)
				}
				if test.Bias {
					v += float64(bias[j])
				}
				if test.Scale {
					v *= float64(scale[j])
				}
				if test.Res != noRes {
					v += float64(resIn[r*n+j])
				}
				want[r*n+j] = float32(act64(test.Act, v))
			}
		}
		for _, slow := range []bool{false, true} {
			if !slow && newMMKernel == nil {
				continue
			}
			p := newFusedGEMM(test)
			p.slow = p.slow || slow
			xa := act{F: x}
			if test.XHalf {
				xa = act{H: halfOf(x)}
			}
			var ra act
			switch test.Res {
			case resF32:
				ra = act{F: res}
			case resBF16:
				ra = act{H: halfOf(res)}
			}
			dst := act{F: append([]float32(nil), prior...)}
			if test.DstHalf {
				dst = act{H: halfOf(prior)}
			}
			var bs, sc []float32
			if test.Bias {
				bs = bias
			}
			if test.Scale {
				sc = scale
			}
			if err := p.run(m, xa, wh, bs, sc, ra, dst); err != nil {
				t.Fatalf("test %d (%v) slow=%v: %v", i, test, slow, err)
			}
			p.free()
			var gotBuf []float32
			got := dst.widen(&gotBuf)
			tol := 1e-4 // float32 sums of K products, another order
			if test.DstHalf {
				tol = 0.02 // one bfloat16 rounding of values up to ~3
			}
			var maxd float64
			for r := range m {
				for j := range n {
					maxd = max(maxd, math.Abs(float64(got[r*test.LDD+j]-want[r*n+j])))
				}
				for j := n; j < test.LDD; j++ { // the gap between rows is left alone
					if g, p := got[r*test.LDD+j], prior[r*ldd+j]; test.DstHalf && g != bf16Float(bf16Round(p)) || !test.DstHalf && g != p {
						t.Fatalf("test %d (%v) slow=%v: dst[%d,%d] beyond the row was overwritten", i, test, slow, r, j)
					}
				}
			}
			if maxd > tol {
				t.Errorf("test %d (%v) slow=%v: max diff %g > %g", i, test, slow, maxd, tol)
			}
		}
	}
}

// TestMatmulBF16Blocks checks a GEMM of a float32 x long enough to be rounded in
// blocks of xBlock rows (a block, a remainder, two parts) against the fallback.
func TestMatmulBF16Blocks(t *testing.T) {
	if newMMKernel == nil {
		t.Skip("no oneDNN in this build: the fallback is all there is")
	}
	defer SetThreads(Threads())
	SetThreads(2)
	rng := rand.New(rand.NewPCG(19, 20))
	const m, k, n = 2*xBlock + 77, 40, 24
	x, w, bias, res := randn(rng, m*k, 1), halfOf(randn(rng, n*k, 0.3)), randn(rng, n, 1), randn(rng, m*n, 1)
	spec := mmSpec{N: n, K: k, LDD: n, Bias: true, Res: resF32, Act: QuickGELU}
	var outs [2][]float32
	for i, slow := range []bool{false, true} {
		p := newFusedGEMM(spec)
		p.slow = slow
		outs[i] = make([]float32, m*n)
		if err := p.run(m, act{F: x}, w, bias, nil, act{F: res}, act{F: outs[i]}); err != nil {
			t.Fatal(err)
		}
		p.free()
	}
	if d, ok := close32(outs[0], outs[1], 1e-4); !ok {
		t.Errorf("blocked oneDNN GEMM differs from the fallback by %g", d)
	}
}

// bf16Block builds a pre-LN MLP block, x + c_proj(gelu(c_fc(ln(x)))), in precision p,
// optionally tapping the LayerNorm's output, and returns the block output node and the
// ops of interest.
func bf16Block(t *testing.T, p Precision, tapLN bool, ln, fc, proj []float32, d, f, n int) (*Builder, *G.Node, *LayerNormOp, *LinearOp, *LinearOp) {
	t.Helper()
	b := NewBuilder()
	b.SetPrecision(p)
	weight := func(name string, data []float32, shape ...int) *G.Node {
		w := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float32(nil), data...)))
		if p == BF16 {
			if _, err := ToBF16(w); err != nil {
				t.Fatal(err)
			}
		}
		return b.Param(name, w)
	}
	x := b.Input("x", n, d)
	h, err := LayerNorm("ln", x, param(b, "g", ln[:d], d), param(b, "b", ln[d:], d), 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if tapLN {
		if err := b.Output("ln", h); err != nil {
			t.Fatal(err)
		}
	}
	u, err := Linear("fc", h, weight("fc.w", fc, f, d), LinearOptions{Act: GELU})
	if err != nil {
		t.Fatal(err)
	}
	y, err := Linear("proj", u, weight("proj.w", proj, d, f), LinearOptions{Residual: x})
	if err != nil {
		t.Fatal(err)
	}
	return b, y, h.Op().(*LayerNormOp), u.Op().(*LinearOp), y.Op().(*LinearOp)
}

// TestBF16Graph checks a BF16 graph: the plan keeps the LayerNorm and c_fc results in
// bfloat16 (not the residual output, nor a tapped result), the arena shrinks, and the
// result matches the float32 graph within bfloat16's precision.
func TestBF16Graph(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const n, d, f = 24, 32, 128
	ln, fc, proj := append(randn(rng, d, 0.2), randn(rng, d, 0.1)...), randn(rng, f*d, 0.2), randn(rng, d*f, 0.1)
	for i := range d {
		ln[i]++
	}
	x := randn(rng, n*d, 1)

	b, y, _, _, _ := bf16Block(t, FP32, false, ln, fc, proj, d, f, n)
	ref := compileOutput(t, b, "y", y)
	want, err := ref.Run(map[string][]float32{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	for _, tapLN := range []bool{false, true} {
		b, y, lnOp, fcOp, projOp := bf16Block(t, BF16, tapLN, ln, fc, proj, d, f, n)
		m := compileOutput(t, b, "y", y)
		if lnOp.half == tapLN || !fcOp.half || projOp.half {
			t.Errorf("tap=%v: planned bfloat16 results: ln %v, c_fc %v, c_proj %v; want %v, true, false", tapLN, lnOp.half, fcOp.half, projOp.half, !tapLN)
		}
		if !tapLN && m.ArenaBytes() >= ref.ArenaBytes() {
			t.Errorf("bf16 arena %d bytes, fp32 %d", m.ArenaBytes(), ref.ArenaBytes())
		}
		for run := range 2 {
			got, err := m.Run(map[string][]float32{"x": x})
			if err != nil {
				t.Fatal(err)
			}
			// Rounding the LayerNorm output, the weights and c_fc's output to bfloat16
			// moves results by a few parts in a thousand of their scale (~1).
			if d, ok := close32(got["y"].Data, want["y"].Data, 0.03); !ok {
				t.Errorf("tap=%v run %d: bf16 block differs from fp32 by %g", tapLN, run, d)
			}
			if tapLN {
				if d, ok := close32(got["ln"].Data, rounded(got["ln"].Data), 0); ok {
					t.Errorf("tapped LayerNorm output came out rounded to bfloat16 (diff %g)", d)
				}
			}
		}
	}
}

// TestBF16Compile checks that a graph refuses weights in the other precision, and a
// graph whose weights ConvertWeights changed under it.
func TestBF16Compile(t *testing.T) {
	w := func(half bool) *tensor.Dense {
		v := tensor.New(tensor.WithShape(3, 4), tensor.WithBacking(make([]float32, 12)))
		if half {
			ToBF16(v)
		}
		return v
	}
	for i, test := range []struct {
		prec Precision
		half bool
		want string
	}{{BF16, false, "convert the model's weights"}, {FP32, true, "SetPrecision(BF16)"}} {
		b := NewBuilder()
		b.SetPrecision(test.prec)
		y, err := Linear("fc", b.Input("x", 2, 4), b.Param("fc.weight", w(test.half)), LinearOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Output("y", y); err != nil {
			t.Fatal(err)
		}
		_, err = b.Compile()
		if err == nil || !strings.Contains(err.Error(), "fc.weight") || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: Compile error %v, want one naming fc.weight and saying %q", i, err, test.want)
		}
	}
	for _, p := range []Precision{FP16, TF32} {
		b := NewBuilder()
		b.SetPrecision(p)
		y, _ := Linear("fc", b.Input("x", 2, 4), b.Param("fc.weight", w(p == FP16)), LinearOptions{})
		b.Output("y", y)
		if _, err := b.Compile(); err == nil || !strings.Contains(err.Error(), "CUDA device only") {
			t.Errorf("%v on the CPU: Compile error %v", p, err)
		}
	}
	b := NewBuilder()
	b.SetPrecision(BF16)
	wt := w(false)
	y, _ := Linear("fc", b.Input("x", 2, 4), b.Param("fc.weight", wt), LinearOptions{})
	b.Output("y", y)
	saved, err := b.ConvertWeights()
	if err != nil || saved != 24 || wt.Dtype() != BFloat16 {
		t.Fatalf("ConvertWeights: saved %d, %v, dtype %v; want 24 bytes, bfloat16", saved, err, wt.Dtype())
	}
	if _, err := b.Compile(); err == nil || !strings.Contains(err.Error(), "build it again") {
		t.Errorf("compiling the converted builder: %v", err)
	}
}

// TestBF16Ops checks the bfloat16 paths of attention, LayerNorm, Conv2d and the patch
// embedding, run outside a machine, against their float32 paths on the same rounded
// operands.
func TestBF16Ops(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	dense := func(data []float32, shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	}
	half := func(data []float32, shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(halfOf(data)))
	}
	widen := func(v G.Value) []float32 {
		var buf []float32
		a, err := activation(v)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), a.widen(&buf)...)
	}
	run := func(op G.Op, in ...G.Value) []float32 {
		v, err := op.Do(in...)
		if err != nil {
			t.Fatalf("%v: %v", op, err)
		}
		return widen(v)
	}

	const bsz, seq, heads, d = 3, 7, 2, 16
	qkv := randn(rng, bsz*seq*3*d, 1)
	want := run(&AttentionOp{Batch: bsz, Seq: seq, Heads: heads, Causal: true}, dense(rounded(qkv), bsz*seq, 3*d))
	a := &AttentionOp{Batch: bsz, Seq: seq, Heads: heads, Causal: true}
	a.half = true
	if dd, ok := close32(run(a, half(qkv, bsz*seq, 3*d)), rounded(want), 0.01); !ok {
		t.Errorf("attention: bfloat16 path differs by %g", dd)
	}

	x, g, bb := randn(rng, 10*d, 2), randn(rng, d, 1), randn(rng, d, 1)
	want = run(&LayerNormOp{Eps: 1e-5}, dense(x, 10, d), dense(g, d), dense(bb, d))
	l := &LayerNormOp{Eps: 1e-5}
	l.half = true
	if got := run(l, dense(x, 10, d), dense(g, d), dense(bb, d)); !slices.Equal(got, rounded(want)) {
		t.Errorf("LayerNorm: the bfloat16 result is not the float32 one rounded")
	}

	const h, wd, cin, cout, kk = 6, 5, 4, 8, 3
	img, wc, bc := randn(rng, 2*h*wd*cin, 1), randn(rng, cout*kk*kk*cin, 0.3), randn(rng, cout, 1)
	conv := func() *Conv2dOp {
		return &Conv2dOp{Batch: 2, Height: h, Width: wd, In: cin, Kernel: kk, Stride: 2, Pad: 1, Act: ReLU}
	}
	want = run(conv(), dense(rounded(img), 2*h*wd, cin), dense(rounded(wc), cout, kk*kk*cin), dense(bc, cout))
	for _, in := range []G.Value{dense(img, 2*h*wd, cin), half(img, 2*h*wd, cin)} {
		if dd, ok := close32(run(conv(), in, half(wc, cout, kk*kk*cin), dense(bc, cout)), want, 1e-4); !ok {
			t.Errorf("Conv2d (input %v): bfloat16 path differs by %g", in.Dtype(), dd)
		}
	}

	const r, p, dp = 8, 4, 6
	pp := 3 * p * p
	px, wp, cls, pos := randn(rng, 2*3*r*r, 1), randn(rng, dp*pp, 0.2), randn(rng, dp, 1), randn(rng, 5*dp, 1)
	want = run(&PatchEmbedOp{Batch: 2, Resolution: r, Patch: p}, dense(rounded(px), 2, 3*r*r), dense(rounded(wp), dp, pp), dense(cls, dp), dense(pos, 5, dp))
	got := run(&PatchEmbedOp{Batch: 2, Resolution: r, Patch: p}, dense(px, 2, 3*r*r), half(wp, dp, pp), dense(cls, dp), dense(pos, 5, dp))
	if dd, ok := close32(got, want, 1e-4); !ok {
		t.Errorf("PatchEmbed: bfloat16 path differs by %g", dd)
	}
}

// TestBF16FastConversions checks the AVX512-BF16 conversions against the Go ones on
// special values and random bit patterns, at every tail length.
func TestBF16FastConversions(t *testing.T) {
	if toBF16Fast == nil {
		t.Skip("no AVX512-BF16 conversions in this build or on this CPU (build with -tags dnnl)")
	}
	rng := rand.New(rand.NewPCG(17, 18))
	src := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.Float32frombits(0x7f800001), math.Float32frombits(0xffc00001),
		math.Float32frombits(0x00000001), math.Float32frombits(0x807fffff), math.MaxFloat32,
		1 + 1.0/256, 1 + 3.0/256, math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000)}
	for len(src) < 4096 {
		src = append(src, math.Float32frombits(rng.Uint32()))
	}
	for _, n := range []int{256, 257, 271, 272, 287, 288, 300, len(src)} {
		got, want := make([]uint16, n), make([]uint16, n)
		toBF16Fast(got, src[:n])
		for i, v := range src[:n] {
			want[i] = bf16Round(v)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("n=%d: %#08x rounds to %#04x, want %#04x", n, math.Float32bits(src[i]), got[i], want[i])
			}
		}
		wide := make([]float32, n)
		fromBF16Fast(wide, got)
		for i, h := range got {
			if math.Float32bits(wide[i]) != uint32(h)<<16 {
				t.Fatalf("n=%d: %#04x widens to %#08x", n, h, math.Float32bits(wide[i]))
			}
		}
	}
}

// TestAttentionBF16Kernel checks the AVX512-BF16 attention against the Go kernel on
// the same bfloat16 q, k and v, for both result precisions, causal or not, several
// sequence lengths (a partial last block of 16 and more than four blocks) and head
// widths.
func TestAttentionBF16Kernel(t *testing.T) {
	if attentionBF16 == nil {
		t.Skip("no AVX512-BF16 attention in this build or on this CPU (build with -tags dnnl)")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for i, test := range []struct {
		bsz, seq, heads, k int
		causal             bool
	}{{3, 50, 2, 64, false}, {2, 11, 3, 64, true}, {2, 77, 2, 32, true}, {1, 17, 1, 128, false}, {1, 70, 2, 64, false}} {
		d := test.heads * test.k
		qkv := halfOf(randn(rng, test.bsz*test.seq*3*d, 1))
		wide := make([]float32, len(qkv))
		fromBF16(wide, qkv)
		want := make([]float32, test.bsz*test.seq*d)
		scale := float32(1 / math.Sqrt(float64(test.k)))
		attention(want, wide, test.seq, d, test.k, test.heads, test.causal, scale, 0, test.bsz*test.heads)
		for _, half := range []bool{false, true} {
			dst := act{F: make([]float32, len(want))}
			if half {
				dst = act{H: make([]uint16, len(want))}
			}
			attentionBF16(dst, qkv, test.seq, d, test.k, test.heads, test.causal, scale, 0, test.bsz*test.heads)
			var buf []float32
			tol := 1e-5
			if half {
				tol = 0.01 // one bfloat16 rounding of values below 2
			}
			if dd, ok := close32(dst.widen(&buf), want, tol); !ok {
				t.Errorf("test %d (%+v) bf16 result %v: differs from the Go kernel by %g", i, test, half, dd)
			}
		}
	}
}

// TestLayerNormBF16Kernel checks the AVX512 LayerNorm storing bfloat16 against the Go
// kernel's float32 result rounded, at widths with and without a partial last vector
// and with a large mean (where the two-pass statistics matter): at most one bfloat16
// step apart (the float32 arithmetic may fuse differently), nearly all identical.
func TestLayerNormBF16Kernel(t *testing.T) {
	if layerNormBF16 == nil {
		t.Skip("no AVX512 LayerNorm in this build or on this CPU (build with -tags dnnl)")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for _, d := range []int{8, 13, 16, 40, 512, 768, 1031} {
		const rows = 9
		x, gain, bias := randn(rng, rows*d, 2), randn(rng, d, 1), randn(rng, d, 0.5)
		for i := range d {
			x[3*d+i] += 1000 // a row far from zero
		}
		y := make([]float32, rows*d)
		layerNorm(y, x, gain, bias, d, 1e-5)
		got := make([]uint16, rows*d)
		layerNormBF16(got, x, gain, bias, d, 1e-5)
		differ := 0
		for i, v := range y {
			want := bf16Round(v)
			if got[i] == want {
				continue
			}
			differ++
			if diff := int(got[i]) - int(want); diff > 1 || diff < -1 || got[i]&0x8000 != want&0x8000 {
				t.Fatalf("d=%d value %d: %#04x, want %#04x (%g)", d, i, got[i], want, v)
			}
		}
		t.Logf("d=%d: %d of %d values one bfloat16 step off", d, differ, len(y))
		if differ > len(y)/100+1 {
			t.Errorf("d=%d: %d of %d values one bfloat16 step off", d, differ, len(y))
		}
	}
}
