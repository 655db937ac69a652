package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// gradIn is one input of an op under a gradient check.
type gradIn struct {
	shape []int
	data  []float32
	// fixed marks an input that is not differentiated (positions).
	fixed bool
}

// gradCase is one op configuration under a gradient check: its inputs, how to build
// it on input nodes, and a float64 reference of its forward pass.
type gradCase struct {
	name  string
	in    []gradIn
	build func(b *Builder, in []*G.Node) (*G.Node, error)
	ref   func(in [][]float64) []float64
}

// gradInputs are the inputs gradGraph's graph of c runs with: "in<i>" and "dy".
func gradInputs(c gradCase, dy []float32) map[string][]float32 {
	inputs := map[string][]float32{"dy": dy}
	for i, in := range c.in {
		inputs[fmt.Sprintf("in%d", i)] = in.data
	}
	return inputs
}

// gradGraph builds c on b with a backward pass seeded by the input "dy": outputs "y"
// and "d<i>", the gradient of each input i not fixed, whose indices it returns.
func gradGraph(b *Builder, c gradCase) ([]int, error) {
	nodes := make([]*G.Node, len(c.in))
	var wrt []*G.Node
	var wrtIdx []int
	for i, in := range c.in {
		nodes[i] = b.Input(fmt.Sprintf("in%d", i), in.shape...)
		if !in.fixed {
			wrt, wrtIdx = append(wrt, nodes[i]), append(wrtIdx, i)
		}
	}
	y, err := c.build(b, nodes)
	if err != nil {
		return nil, err
	}
	grads, err := b.Backward([]*G.Node{y}, []*G.Node{b.Input("dy", y.Shape()...)}, wrt)
	if err != nil {
		return nil, err
	}
	for i, g := range grads {
		if err := b.Output(fmt.Sprintf("d%d", wrtIdx[i]), g); err != nil {
			return nil, err
		}
	}
	return wrtIdx, b.Output("y", y)
}

// gradSeed is the dy of case c: random, of the size of c's output.
func gradSeed(c gradCase) []float32 {
	rng := rand.New(rand.NewPCG(11, uint64(len(c.name))))
	in64 := make([][]float64, len(c.in))
	for i, in := range c.in {
		in64[i] = to64(in.data)
	}
	return randn(rng, len(c.ref(in64)), 1)
}

// checkGradients builds c with a backward pass seeded by a random dy, runs it, and
// checks the output against the float64 reference and every gradient against
// central finite differences of sum(dy * ref(in)) in float64, within tol of the
// largest gradient of each input.
func checkGradients(t *testing.T, c gradCase, tol float64) {
	t.Helper()
	b := NewBuilder()
	dy := gradSeed(c)
	inputs := gradInputs(c, dy)
	wrtIdx, err := gradGraph(b, c)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	m, err := b.Compile()
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer m.Close()
	out, err := m.Run(inputs)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	in64 := make([][]float64, len(c.in))
	for i, in := range c.in {
		in64[i] = to64(in.data)
	}
	want := c.ref(in64)
	if d, s := maxAbsDiff(out["y"].Data, want); d > 1e-4*max(1, s) {
		t.Errorf("%s: forward differs from the float64 reference by %.3g (largest value %.3g)", c.name, d, s)
	}
	loss := func() float64 {
		var l float64
		for j, v := range c.ref(in64) {
			l += float64(dy[j]) * v
		}
		return l
	}
	const h = 1e-5
	for _, i := range wrtIdx {
		got := out[fmt.Sprintf("d%d", i)].Data
		fd := make([]float64, len(in64[i]))
		for e := range fd {
			v := in64[i][e]
			in64[i][e] = v + h
			lp := loss()
			in64[i][e] = v - h
			lm := loss()
			in64[i][e] = v
			fd[e] = (lp - lm) / (2 * h)
		}
		d, s := maxAbsDiff(got, fd)
		if d > tol*max(s, 1e-3) || len(got) != len(fd) {
			t.Errorf("%s: gradient of input %d %v: max |analytic - finite difference| %.3g, largest %.3g", c.name, i, c.in[i].shape, d, s)
		} else {
			t.Logf("%s: input %d %v: max diff %.2g of %.2g", c.name, i, c.in[i].shape, d, s)
		}
	}
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// maxAbsDiff returns the largest |got-want| and the largest |want|.
func maxAbsDiff(got []float32, want []float64) (d, scale float64) {
	if len(got) != len(want) {
		return math.Inf(1), 0
	}
	for i, w := range want {
		d = math.Max(d, math.Abs(float64(got[i])-w))
		scale = math.Max(scale, math.Abs(w))
	}
	return d, scale
}

// act64 is a in float64.
func act64(a Activation, v float64) float64 {
	switch a {
	case QuickGELU:
		return v / (1 + math.Exp(-1.702*v))
	case GELU:
		return 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
	case ReLU:
		return math.Max(v, 0)
	}
	return v
}

// linear64 is LinearOp in float64: act((x @ W^T + bias) * scale + res), W [out,in]
// or [in,out] with inOut; nil operands are absent.
func linear64(x, w, bias, scale, res []float64, nin, nout int, inOut bool, act Activation) []float64 {
	n := len(x) / nin
	y := make([]float64, n*nout)
	for r := range n {
		for j := range nout {
			var s float64
			for k := range nin {
				wk := w[j*nin+k]
				if inOut {
					wk = w[k*nout+j]
				}
				s += x[r*nin+k] * wk
			}
			if bias != nil {
				s += bias[j]
			}
			if scale != nil {
				s *= scale[j]
			}
			if res != nil {
				s += res[r*nout+j]
			}
			y[r*nout+j] = act64(act, s)
		}
	}
	return y
}

// layerNorm64 is LayerNormOp in float64.
func layerNorm64(x, g, bias []float64, d int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x); r += d {
		var m, v float64
		for _, e := range x[r : r+d] {
			m += e
		}
		m /= float64(d)
		for _, e := range x[r : r+d] {
			v += (e - m) * (e - m)
		}
		inv := 1 / math.Sqrt(v/float64(d)+eps)
		for j, e := range x[r : r+d] {
			y[r+j] = (e-m)*inv*g[j] + bias[j]
		}
	}
	return y
}

// TestLinearLayerNormGradients checks the backward pass of every LinearOp epilogue and
// of LayerNorm against finite differences of float64 references.
// linearGradCases are the gradient checks of every LinearOp variant and of LayerNorm.
func linearGradCases() []gradCase {
	rng := rand.New(rand.NewPCG(21, 22))
	var cases []gradCase
	const n, nin, nout = 4, 5, 3
	for _, test := range []struct {
		bias, scale, res, inOut, wide bool
		act                           Activation
	}{
		{}, {bias: true}, {bias: true, act: QuickGELU}, {bias: true, act: GELU}, {bias: true, act: ReLU, res: true},
		{bias: true, scale: true, res: true}, {bias: true, scale: true, res: true, act: QuickGELU}, {inOut: true},
		{inOut: true, bias: true, act: ReLU}, {bias: true, scale: true, act: GELU, wide: true},
	} {
		n, nout := n, nout
		if test.wide { // columns and rows beyond one block of the device's column sums
			n, nout = 21, 40
		}
		ws := []int{nout, nin}
		if test.inOut {
			ws = []int{nin, nout}
		}
		in := []gradIn{{shape: []int{n, nin}, data: randn(rng, n*nin, 1)}, {shape: ws, data: randn(rng, nin*nout, 0.7)}}
		var optional []bool
		for _, on := range []bool{test.bias, test.scale} {
			optional = append(optional, on)
			if on {
				in = append(in, gradIn{shape: []int{nout}, data: randn(rng, nout, 1)})
			}
		}
		if test.res {
			in = append(in, gradIn{shape: []int{n, nout}, data: randn(rng, n*nout, 1)})
		}
		c := gradCase{name: fmt.Sprintf("Linear%+v", test), in: in,
			build: func(b *Builder, x []*G.Node) (*G.Node, error) {
				opt := LinearOptions{Act: test.act, InOut: test.inOut}
				i := 2
				if test.bias {
					opt.Bias, i = x[i], i+1
				}
				if test.scale {
					opt.Scale, i = x[i], i+1
				}
				if test.res {
					opt.Residual = x[i]
				}
				return Linear("fc", x[0], x[1], opt)
			},
			ref: func(x [][]float64) []float64 {
				var bias, scale, res []float64
				i := 2
				if test.bias {
					bias, i = x[i], i+1
				}
				if test.scale {
					scale, i = x[i], i+1
				}
				if test.res {
					res = x[i]
				}
				return linear64(x[0], x[1], bias, scale, res, nin, nout, test.inOut, test.act)
			}}
		cases = append(cases, c)
	}
	const d, nw, dw = 6, 19, 300 // dw: rows longer than a block of the device's kernels
	return append(cases, gradCase{name: "LayerNorm{wide}",
		in:    []gradIn{{shape: []int{nw, dw}, data: randn(rng, nw*dw, 2)}, {shape: []int{dw}, data: randn(rng, dw, 1)}, {shape: []int{dw}, data: randn(rng, dw, 1)}},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) { return LayerNorm("ln", x[0], x[1], x[2], 1e-5) },
		ref:   func(x [][]float64) []float64 { return layerNorm64(x[0], x[1], x[2], dw, 1e-5) },
	}, gradCase{name: "LayerNorm",
		in:    []gradIn{{shape: []int{n, d}, data: randn(rng, n*d, 2)}, {shape: []int{d}, data: randn(rng, d, 1)}, {shape: []int{d}, data: randn(rng, d, 1)}},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) { return LayerNorm("ln", x[0], x[1], x[2], 1e-5) },
		ref:   func(x [][]float64) []float64 { return layerNorm64(x[0], x[1], x[2], d, 1e-5) },
	}, gradCase{name: "ResidualBlock", // x is read twice: its gradient is a sum
		in: []gradIn{{shape: []int{n, d}, data: randn(rng, n*d, 1)}, {shape: []int{d}, data: randn(rng, d, 1)},
			{shape: []int{d}, data: randn(rng, d, 1)}, {shape: []int{d, d}, data: randn(rng, d*d, 0.5)}},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) {
			h, err := LayerNorm("ln", x[0], x[1], x[2], 1e-5)
			if err != nil {
				return nil, err
			}
			return Linear("fc", h, x[3], LinearOptions{Act: QuickGELU, Residual: x[0]})
		},
		ref: func(x [][]float64) []float64 {
			return linear64(layerNorm64(x[0], x[1], x[2], d, 1e-5), x[3], nil, nil, x[0], d, d, false, QuickGELU)
		}})
}

// TestLinearLayerNormGradients checks LinearOp's and LayerNorm's backward passes, and
// the sum of the gradients of a node read twice, against finite differences.
func TestLinearLayerNormGradients(t *testing.T) {
	for _, c := range linearGradCases() {
		checkGradients(t, c, 1e-4)
	}
}

// softmax64 replaces row[:n] by its softmax and zeroes row[n:].
func softmax64(row []float64, n int) {
	mx := math.Inf(-1)
	for _, v := range row[:n] {
		mx = math.Max(mx, v)
	}
	var s float64
	for j := range row[:n] {
		row[j] = math.Exp(row[j] - mx)
		s += row[j]
	}
	for j := range row[:n] {
		row[j] /= s
	}
	clear(row[n:])
}

// attention64 is AttentionOp in float64; with probs it returns the weights [B,H,T,T]
// instead of the output.
func attention64(qkv []float64, b, t, h int, causal, probs bool) []float64 {
	d := len(qkv) / (b * t) / 3
	k := d / h
	out := make([]float64, b*t*d)
	ps := make([]float64, b*h*t*t)
	for bi := range b {
		for hi := range h {
			for i := range t {
				p := ps[((bi*h+hi)*t+i)*t:][:t]
				n := t
				if causal {
					n = i + 1
				}
				for j := range n {
					var s float64
					for c := range k {
						s += qkv[(bi*t+i)*3*d+hi*k+c] * qkv[(bi*t+j)*3*d+d+hi*k+c]
					}
					p[j] = s / math.Sqrt(float64(k))
				}
				softmax64(p, n)
				for j := range n {
					for c := range k {
						out[(bi*t+i)*d+hi*k+c] += p[j] * qkv[(bi*t+j)*3*d+2*d+hi*k+c]
					}
				}
			}
		}
	}
	if probs {
		return ps
	}
	return out
}

// conv2d64 is Conv2dOp in float64 (weight rows in (ky, kx, c) order).
func conv2d64(o ConvOptions, x, w, bias []float64) []float64 {
	ho, wo := ConvOutput(o.Height, o.Kernel, o.Stride, o.Pad), ConvOutput(o.Width, o.Kernel, o.Stride, o.Pad)
	cout := len(bias)
	y := make([]float64, o.Batch*ho*wo*cout)
	for b := range o.Batch {
		for oy := range ho {
			for ox := range wo {
				for co := range cout {
					s := bias[co]
					for ky := range o.Kernel {
						for kx := range o.Kernel {
							iy, ix := oy*o.Stride-o.Pad+ky, ox*o.Stride-o.Pad+kx
							if iy < 0 || iy >= o.Height || ix < 0 || ix >= o.Width {
								continue
							}
							for c := range o.In {
								xv := x[((b*o.Height+iy)*o.Width+ix)*o.In+c]
								if o.ChannelsFirst {
									xv = x[((b*o.In+c)*o.Height+iy)*o.Width+ix]
								}
								s += xv * w[co*o.Kernel*o.Kernel*o.In+(ky*o.Kernel+kx)*o.In+c]
							}
						}
					}
					y[((b*ho+oy)*wo+ox)*cout+co] = act64(o.Act, s)
				}
			}
		}
	}
	return y
}

// TestOpGradients checks the backward pass of every other fused op against finite
// differences of float64 references.
// opGradCases are the gradient checks of the other fused ops.
func opGradCases() []gradCase {
	rng := rand.New(rand.NewPCG(31, 32))
	in := func(scale float32, shape ...int) gradIn {
		n := 1
		for _, s := range shape {
			n *= s
		}
		return gradIn{shape: shape, data: randn(rng, n, scale)}
	}
	const bsz, seq, heads, d = 2, 4, 2, 6
	var cases []gradCase
	for _, causal := range []bool{false, true} {
		cases = append(cases, gradCase{name: fmt.Sprintf("Attention{causal=%v}", causal),
			in: []gradIn{in(1, bsz*seq, 3*d)},
			build: func(b *Builder, x []*G.Node) (*G.Node, error) {
				return Attention("attn", x[0], bsz, seq, heads, causal)
			},
			ref: func(x [][]float64) []float64 { return attention64(x[0], bsz, seq, heads, causal, false) }})
	}
	const r, p, w = 4, 2, 5
	g2, pp := (r/p)*(r/p), 3*p*p
	cases = append(cases, gradCase{name: "PatchEmbed",
		in: []gradIn{in(1, bsz, 3*r*r), in(0.5, w, pp), in(1, w), in(1, g2+1, w)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) {
			return PatchEmbed("embed", x[0], x[1], x[2], x[3], bsz, r, p)
		},
		ref: func(x [][]float64) []float64 {
			px, wt, cls, pos := x[0], x[1], x[2], x[3]
			y := make([]float64, bsz*(g2+1)*w)
			for b := range bsz {
				for tok := range g2 + 1 {
					for j := range w {
						v := pos[tok*w+j]
						if tok == 0 {
							v += cls[j]
						} else {
							gy, gx := (tok-1)/(r/p), (tok-1)%(r/p)
							for c := range 3 {
								for py := range p {
									for pxx := range p {
										v += px[b*3*r*r+(c*r+gy*p+py)*r+gx*p+pxx] * wt[j*pp+(c*p+py)*p+pxx]
									}
								}
							}
						}
						y[(b*(g2+1)+tok)*w+j] = v
					}
				}
			}
			return y
		}})
	const tmax = 6
	cases = append(cases, gradCase{name: "AddPositional",
		in:    []gradIn{in(1, bsz*seq, d), in(1, tmax, d)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) { return AddPositional("pos", x[0], x[1], seq) },
		ref: func(x [][]float64) []float64 {
			y := append([]float64(nil), x[0]...)
			for i := range y {
				y[i] += x[1][i%(seq*d)]
			}
			return y
		}})
	eot := gradIn{shape: []int{bsz}, data: []float32{2, 3}, fixed: true}
	selectRef := func(idx func(b int, x [][]float64) int) func(x [][]float64) []float64 {
		return func(x [][]float64) []float64 {
			var y []float64
			for b := range bsz {
				i := idx(b, x)
				y = append(y, x[0][(b*seq+i)*d:(b*seq+i+1)*d]...)
			}
			return y
		}
	}
	cases = append(cases, gradCase{name: "SelectRow",
		in:    []gradIn{in(1, bsz*seq, d)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) { return SelectRow("cls", x[0], seq, 1) },
		ref:   selectRef(func(int, [][]float64) int { return 1 })},
		gradCase{name: "SelectRows",
			in:    []gradIn{in(1, bsz*seq, d), eot},
			build: func(b *Builder, x []*G.Node) (*G.Node, error) { return SelectRows("eot", x[0], x[1], seq) },
			ref:   selectRef(func(b int, x [][]float64) int { return int(x[1][b]) })})
	for _, o := range []ConvOptions{
		{Batch: 2, Height: 5, Width: 4, In: 3, Kernel: 3, Stride: 1, Pad: 1, Act: ReLU},
		{Batch: 1, Height: 6, Width: 6, In: 3, Kernel: 3, Stride: 2, Pad: 1, ChannelsFirst: true, Act: ReLU},
		{Batch: 2, Height: 3, Width: 3, In: 2, Kernel: 1, Stride: 2, Act: QuickGELU},
		{Batch: 1, Height: 4, Width: 3, In: 2, Kernel: 3, Stride: 1, Pad: 1},
	} {
		const cout = 3
		xs := []int{o.Batch * o.Height * o.Width, o.In}
		if o.ChannelsFirst {
			xs = []int{o.Batch, o.In * o.Height * o.Width}
		}
		kkc := o.Kernel * o.Kernel * o.In
		cases = append(cases, gradCase{name: fmt.Sprintf("Conv2d%+v", o),
			in: []gradIn{in(1, xs...), in(0.5, cout, kkc), in(0.5, cout)},
			build: func(b *Builder, x []*G.Node) (*G.Node, error) {
				return Conv2d("conv", x[0], x[1], x[2], o)
			},
			ref: func(x [][]float64) []float64 { return conv2d64(o, x[0], x[1], x[2]) }})
	}
	const ph, pw, pc = 5, 4, 3 // the fifth row of the 2x2 pool is dropped (floor mode)
	cases = append(cases, gradCase{name: "AvgPool",
		in:    []gradIn{in(1, bsz*ph*pw, pc)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) { return AvgPool("pool", x[0], bsz, ph, pw, 2) },
		ref: func(x [][]float64) []float64 {
			y := make([]float64, bsz*(ph/2)*(pw/2)*pc)
			for b := range bsz {
				for yy := range ph / 2 * 2 {
					for xx := range pw / 2 * 2 {
						for c := range pc {
							y[((b*(ph/2)+yy/2)*(pw/2)+xx/2)*pc+c] += x[0][((b*ph+yy)*pw+xx)*pc+c] / 4
						}
					}
				}
			}
			return y
		}})
	const sp = 4
	cases = append(cases, gradCase{name: "PoolTokens",
		in:    []gradIn{in(1, bsz*sp, pc), in(1, sp+1, pc)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) { return PoolTokens("tok", x[0], x[1], bsz, sp) },
		ref: func(x [][]float64) []float64 {
			y := make([]float64, bsz*(sp+1)*pc)
			for b := range bsz {
				for r := range sp {
					for c := range pc {
						v := x[0][(b*sp+r)*pc+c]
						y[(b*(sp+1)+r+1)*pc+c] = v + x[1][(r+1)*pc+c]
						y[b*(sp+1)*pc+c] += v / sp
					}
				}
				for c := range pc {
					y[b*(sp+1)*pc+c] += x[1][c]
				}
			}
			return y
		}})
	cases = append(cases, gradCase{name: "QueryAttention",
		in: []gradIn{in(1, bsz, d), in(1, bsz*seq, 2*d)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) {
			return QueryAttention("qa", x[0], x[1], bsz, seq, heads)
		},
		ref: func(x [][]float64) []float64 {
			// The query attends as row 0 of a self-attention over [q; keys] would not:
			// written out directly.
			k := d / heads
			y := make([]float64, bsz*d)
			for b := range bsz {
				for h := range heads {
					s := make([]float64, seq)
					for j := range seq {
						for c := range k {
							s[j] += x[0][b*d+h*k+c] * x[1][(b*seq+j)*2*d+h*k+c]
						}
						s[j] /= math.Sqrt(float64(k))
					}
					softmax64(s, seq)
					for j := range seq {
						for c := range k {
							y[b*d+h*k+c] += s[j] * x[1][(b*seq+j)*2*d+d+h*k+c]
						}
					}
				}
			}
			return y
		}})
	cases = append(cases, gradCase{name: "ChannelsFirst",
		in:    []gradIn{in(1, bsz*sp, pc)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) { return ChannelsFirst("nchw", x[0], []int{2, 2, pc}) },
		ref: func(x [][]float64) []float64 {
			y := make([]float64, len(x[0]))
			for b := range bsz {
				for r := range sp {
					for c := range pc {
						y[b*sp*pc+c*sp+r] = x[0][(b*sp+r)*pc+c]
					}
				}
			}
			return y
		}})
	return cases
}

// TestOpGradients checks the other fused ops' backward passes against finite
// differences.
func TestOpGradients(t *testing.T) {
	cases := opGradCases()
	for _, c := range cases {
		checkGradients(t, c, 1e-4)
	}
	// Chunks of 7 output pixels end inside images (of 20 and 9 pixels).
	defer func(n int) { convGradChunkFloats = n }(convGradChunkFloats)
	convGradChunkFloats = 7 * 27
	for _, c := range cases {
		if strings.HasPrefix(c.name, "Conv2d") {
			checkGradients(t, c, 1e-4)
		}
	}
}

// TestAttentionProbs checks the attention map op against the float64 softmax weights.
func TestAttentionProbs(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	const bsz, seq, heads, d = 2, 5, 3, 12
	qkv := randn(rng, bsz*seq*3*d, 1)
	for _, causal := range []bool{false, true} {
		b := NewBuilder()
		attn, err := Attention("attn", b.Input("qkv", bsz*seq, 3*d), bsz, seq, heads, causal)
		if err != nil {
			t.Fatal(err)
		}
		probs, err := AttentionProbs("probs", attn)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Output("attn", attn); err != nil {
			t.Fatal(err)
		}
		got := runOne(t, b, probs, map[string][]float32{"qkv": qkv})
		want := attention64(to64(qkv), bsz, seq, heads, causal, true)
		if dd, _ := maxAbsDiff(got, want); dd > 1e-6 {
			t.Errorf("causal=%v: attention weights differ by %.3g", causal, dd)
		}
	}
	b := NewBuilder()
	x := b.Input("x", 2, 3)
	if _, err := AttentionProbs("probs", x); err == nil {
		t.Error("AttentionProbs of an input was accepted")
	}
}

// TestBackwardBuildsOnlyWhatIsAsked checks that differentiating a Linear with respect
// to its input builds no weight or bias gradient, and that Backward refuses what it
// cannot differentiate.
func TestBackwardBuildsOnlyWhatIsAsked(t *testing.T) {
	b := NewBuilder()
	x := b.Input("x", 3, 4)
	y, err := Linear("fc", x, b.Input("w", 2, 4), LinearOptions{Bias: b.Input("b", 2), Act: QuickGELU})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Backward([]*G.Node{y}, []*G.Node{b.Input("dy", 3, 2)}, []*G.Node{x}); err != nil {
		t.Fatal(err)
	}
	for _, n := range b.G.AllNodes() {
		switch n.Op().(type) {
		case *transMatMulOp, *colSumOp:
			t.Errorf("asking for dx built %s (%v)", n.Name(), n.Op())
		}
	}
	if _, err := b.Backward([]*G.Node{y}, []*G.Node{y}, []*G.Node{x}); err == nil {
		t.Error("a second Backward on one graph was accepted")
	}

	b = NewBuilder()
	x, pos := b.Input("x", 4, 3), b.Input("pos", 2)
	y, err = SelectRows("eot", x, pos, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Backward([]*G.Node{y}, []*G.Node{b.Input("dy", 2, 3)}, []*G.Node{pos}); err == nil {
		t.Error("a gradient with respect to integer positions was accepted")
	}
	b = NewBuilder()
	x = b.Input("x", 4, 3)
	other := b.Input("other", 4, 3)
	y, err = LayerNorm("ln", x, b.Input("g", 3), b.Input("b", 3), 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Backward([]*G.Node{y}, []*G.Node{b.Input("dy", 4, 3)}, []*G.Node{other}); err == nil {
		t.Error("a gradient with respect to an unused input was accepted")
	}
}

// TestHostSeed seeds a backward pass from a host function of the forward result, in
// one run: for y = x @ W^T and L = sum(y^2)/2, dL/dy = y and dL/dx = y W.
func TestHostSeed(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	const n, nin, nout = 3, 4, 2
	x, w := randn(rng, n*nin, 1), randn(rng, nout*nin, 1)
	b := NewBuilder()
	xn := b.Input("x", n, nin)
	y, err := Linear("fc", xn, param(b, "w", w, nout, nin), LinearOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var loss float64
	seed, err := Host("loss", func(out []float32, in [][]float32) error {
		loss = 0
		for i, v := range in[0] {
			out[i] = v
			loss += float64(v) * float64(v) / 2
		}
		return nil
	}, y.Shape(), y)
	if err != nil {
		t.Fatal(err)
	}
	g, err := b.Backward([]*G.Node{y}, []*G.Node{seed}, []*G.Node{xn})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Output("dx", g[0]); err != nil {
		t.Fatal(err)
	}
	m := compileOutput(t, b, "y", y)
	out, err := m.Run(map[string][]float32{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	yv := linear64(to64(x), to64(w), nil, nil, nil, nin, nout, false, Identity)
	var want float64
	dx := make([]float64, n*nin)
	for r := range n {
		for j := range nout {
			want += yv[r*nout+j] * yv[r*nout+j] / 2
			for k := range nin {
				dx[r*nin+k] += yv[r*nout+j] * float64(w[j*nin+k])
			}
		}
	}
	if d, _ := maxAbsDiff(out["dx"].Data, dx); d > 1e-5 || math.Abs(loss-want) > 1e-5 {
		t.Errorf("dx differs by %g; loss %g, want %g", d, loss, want)
	}
	b = NewBuilder()
	x1 := b.Input("x", 2, 2)
	h, err := Host("fails", func([]float32, [][]float32) error { return fmt.Errorf("no") }, []int{2, 2}, x1)
	if err != nil {
		t.Fatal(err)
	}
	m = compileOutput(t, b, "h", h)
	if _, err := m.Run(map[string][]float32{"x": make([]float32, 4)}); err == nil || !strings.Contains(err.Error(), "no") {
		t.Errorf("a failing host function gave %v", err)
	}
}
