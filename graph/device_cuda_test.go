//go:build gorgoclip_cuda

package graph

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// cudaOrSkip opens GPU 0, skipping when the driver reports none. (gorgonia.org/cu
// exits the process at start when there is no CUDA driver at all, so this test binary
// only runs on a GPU machine or the emulator.) A GPU that fails to open (kernels that
// do not compile, a missing cuBLAS) fails the test: it must never pass for a skip.
func cudaOrSkip(t *testing.T) Device {
	t.Helper()
	d, err := OpenDevice("cuda")
	if errors.Is(err, ErrNoGPU) {
		t.Skipf("no CUDA device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Log(d.Name())
	return d
}

func randT(r *rand.Rand, shape ...int) *tensor.Dense {
	t, d := newF32(shape...)
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return t
}

func randData(r *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return d
}

// both builds the same graph on the CPU and on dev, runs it twice on each (the second
// run checks that reused buffers give the same answer), compares every output and
// returns the CPU's.
func both(t *testing.T, dev Device, inputs map[string][]float32, build func(b *Builder) error) map[string]Output {
	t.Helper()
	run := func(d Device) map[string]Output {
		b := NewBuilderOn(d)
		if err := build(b); err != nil {
			t.Fatal(err)
		}
		m, err := b.Compile()
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var out map[string]Output
		for range 2 {
			if out, err = m.Run(inputs); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	cpu, gpu := run(nil), run(dev)
	for name, c := range cpu {
		g := gpu[name]
		if len(g.Data) != len(c.Data) {
			t.Fatalf("%s: %d values on the GPU, %d on the CPU", name, len(g.Data), len(c.Data))
		}
		var d, scale float64
		for i := range c.Data {
			d = math.Max(d, math.Abs(float64(g.Data[i])-float64(c.Data[i])))
			scale = math.Max(scale, math.Abs(float64(c.Data[i])))
			if math.IsNaN(float64(g.Data[i])) {
				d = math.Inf(1)
			}
		}
		t.Logf("%s %v: max |gpu-cpu| %.3g (max |cpu| %.3g)", name, c.Shape, d, scale)
		if d > 1e-4*math.Max(1, scale) {
			t.Errorf("%s: GPU and CPU differ by %g", name, d)
		}
	}
	return cpu
}

func TestCUDAOps(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(1, 2))
	const bsz, seq, width, heads = 3, 7, 48, 4
	n := bsz * seq
	x := randData(r, n*width)
	w1, b1 := randT(r, 4*width, width), randT(r, 4*width)
	w2, b2 := randT(r, width, 4*width), randT(r, width)
	qkvW, qkvB := randT(r, 3*width, width), randT(r, 3*width)
	proj := randT(r, width, 16)
	gain, bias := randT(r, width), randT(r, width)
	pos := randT(r, 77, width)
	eot := []float32{6, 0, 3}
	for _, causal := range []bool{false, true} {
		both(t, dev, map[string][]float32{"x": x, "eot": eot}, func(b *Builder) error {
			in := b.Input("x", n, width)
			e := b.Input("eot", bsz)
			p, err := AddPositional("pos", in, b.Param("pos", pos), seq)
			if err != nil {
				return err
			}
			h, err := LayerNorm("ln", p, b.Param("g", gain), b.Param("b", bias), 1e-5)
			if err != nil {
				return err
			}
			qkv, err := Linear("qkv", h, b.Param("qkvW", qkvW), LinearOptions{Bias: b.Param("qkvB", qkvB)})
			if err != nil {
				return err
			}
			a, err := Attention("attn", qkv, bsz, seq, heads, causal)
			if err != nil {
				return err
			}
			m1, err := Linear("fc", a, b.Param("w1", w1), LinearOptions{Bias: b.Param("b1", b1), Act: QuickGELU})
			if err != nil {
				return err
			}
			m2, err := Linear("gelu", a, b.Param("w1", w1), LinearOptions{Act: GELU})
			if err != nil {
				return err
			}
			y, err := Linear("proj", m1, b.Param("w2", w2), LinearOptions{Bias: b.Param("b2", b2), Residual: p})
			if err != nil {
				return err
			}
			s0, err := SelectRow("cls", y, seq, 2)
			if err != nil {
				return err
			}
			s1, err := SelectRows("eotsel", y, e, seq)
			if err != nil {
				return err
			}
			f, err := Linear("feat", s1, b.Param("proj", proj), LinearOptions{InOut: true})
			if err != nil {
				return err
			}
			for name, o := range map[string]*G.Node{"attn": a, "gelu": m2, "y": y, "cls": s0, "feat": f} {
				if err := b.Output(name, o); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

func TestCUDAPatchEmbed(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(3, 4))
	const bsz, res, patch, width = 3, 32, 8, 40
	g := res / patch
	px := randData(r, bsz*3*res*res)
	conv, cls, pos := randT(r, width, 3*patch*patch), randT(r, width), randT(r, g*g+1, width)
	convT := randT(r, 3*patch*patch, width) // a transposed view as weight: uploaded materialised
	for _, view := range []bool{false, true} {
		both(t, dev, map[string][]float32{"px": px}, func(b *Builder) error {
			w := conv
			if view {
				w = convT.Clone().(*tensor.Dense)
				if err := w.T(); err != nil {
					return err
				}
			}
			in := b.Input("px", bsz, 3*res*res)
			x, err := PatchEmbed("pe", in, b.Param("conv", w), b.Param("cls", cls), b.Param("pos", pos), bsz, res, patch)
			if err != nil {
				return err
			}
			return b.Output("tokens", x)
		})
	}
}

// TestCUDACopies: after compiling, a run copies each input in once and each output
// out once; weights are uploaded at compile time, once per weight.
func TestCUDACopies(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(5, 6))
	w, gain, bias := randT(r, 32, 32), randT(r, 32), randT(r, 32)
	build := func() *Machine {
		b := NewBuilderOn(dev)
		x := b.Input("x", 4, 32)
		y, err := Linear("l", x, b.Param("w", w), LinearOptions{Act: QuickGELU})
		if err != nil {
			t.Fatal(err)
		}
		z, err := LayerNorm("ln", y, b.Param("g", gain), b.Param("b", bias), 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Output("y", y); err != nil {
			t.Fatal(err)
		}
		if err := b.Output("z", z); err != nil {
			t.Fatal(err)
		}
		m, err := b.Compile()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := CopyStats()
	m := build()
	defer m.Close()
	if c := CopyStats().Sub(before); c.Weights != 3 || c.HostToDevice != 0 || c.DeviceToHost != 0 {
		t.Errorf("compile: %+v, want 3 weight uploads and no other copy", c)
	}
	m2 := build() // a second machine over the same weights uploads nothing
	m2.Close()
	x := randData(r, 4*32)
	for run := range 3 {
		before = CopyStats()
		if _, err := m.Run(map[string][]float32{"x": x}); err != nil {
			t.Fatal(err)
		}
		if c := CopyStats().Sub(before); c != (Copies{HostToDevice: 1, DeviceToHost: 2, BytesIn: 4 * 4 * 32, BytesOut: 2 * 4 * 4 * 32}) {
			t.Errorf("run %d: %+v, want 1 copy in and 2 out", run, c)
		}
	}
}

// nearRef fails when the CPU op's result got differs from want, computed directly in
// float64 by the test, by more than 1e-4 of want's largest magnitude (at least 1).
// The GPU is compared with the CPU op; this keeps the CPU op honest on the same edge
// cases.
func nearRef(t *testing.T, name string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values on the CPU, %d in the reference", name, len(got), len(want))
	}
	var d, scale float64
	for i, w := range want {
		d = math.Max(d, math.Abs(float64(got[i])-w))
		scale = math.Max(scale, math.Abs(w))
		if math.IsNaN(float64(got[i])) {
			d = math.Inf(1)
		}
	}
	if d > 1e-4*math.Max(1, scale) {
		t.Errorf("%s: the CPU op differs from the direct computation by %g (scale %g)", name, d, scale)
	}
}

// withConvChunk runs f with the GPU's im2col chunk set to rows output pixels of
// kkc-wide receptive fields (0: the default).
func withConvChunk(rows, kkc int, f func()) {
	if rows > 0 {
		defer func(n int) { cudaConvChunkFloats = n }(cudaConvChunkFloats)
		cudaConvChunkFloats = rows * kkc
	}
	f()
}

// TestCUDAConv2d: stride, padding (none, K/2, overhanging the image), kernels of 1 to
// 5, odd and non-square sizes, both input layouts, fewer and more channels than a warp
// has lanes, and im2col chunks that end in a partial one.
func TestCUDAConv2d(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(7, 8))
	for i, c := range []struct {
		name                           string
		b, h, w, cin, cout, k, st, pad int
		channelsFirst                  bool
		act                            Activation
		chunk                          int // GPU chunk in output rows (0: default)
	}{
		{"3x3 s1 p1", 3, 6, 5, 5, 7, 3, 1, 1, false, ReLU, 0},
		{"3x3 s1 p1, chunks of 7 rows (last 6)", 3, 6, 5, 5, 7, 3, 1, 1, false, ReLU, 7},
		{"stem: NCHW 3x3 s2 p1, odd sizes", 2, 9, 7, 3, 8, 3, 2, 1, true, ReLU, 0},
		{"stem, chunks of 6 rows (last 4)", 2, 9, 7, 3, 8, 3, 2, 1, true, ReLU, 6},
		{"5x5 s3 p2", 2, 11, 8, 4, 6, 5, 3, 2, false, Identity, 0},
		{"2x2 s1 p1: output larger than input", 1, 4, 4, 3, 2, 2, 1, 1, false, QuickGELU, 0},
		{"1x1 s2", 2, 6, 6, 8, 4, 1, 2, 0, false, ReLU, 0},
		{"3x3 p0", 2, 5, 5, 2, 3, 3, 1, 0, true, Identity, 1},
		{"3x3 s2 p1, 40 channels: a warp's lanes wrap", 2, 5, 4, 40, 6, 3, 2, 1, false, ReLU, 4},
		{"NCHW 3x3 p1, 33 channels", 1, 4, 5, 33, 5, 3, 1, 1, true, Identity, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			kkc := c.k * c.k * c.cin
			ho, wo := ConvOutput(c.h, c.k, c.st, c.pad), ConvOutput(c.w, c.k, c.st, c.pad)
			x := randData(r, c.b*c.h*c.w*c.cin)
			w, bias := randT(r, c.cout, kkc), randT(r, c.cout)
			opt := ConvOptions{Batch: c.b, Height: c.h, Width: c.w, In: c.cin, Kernel: c.k, Stride: c.st, Pad: c.pad,
				ChannelsFirst: c.channelsFirst, Act: c.act}
			var cpu map[string]Output
			withConvChunk(c.chunk, kkc, func() {
				cpu = both(t, dev, map[string][]float32{"x": x}, func(b *Builder) error {
					shape := []int{c.b * c.h * c.w, c.cin}
					if c.channelsFirst {
						shape = []int{c.b, c.cin * c.h * c.w}
					}
					y, err := Conv2d("conv", b.Input("x", shape...), b.Param("w", w), b.Param("b", bias), opt)
					if err != nil {
						return err
					}
					return b.Output("y", y)
				})
			})
			// The direct convolution, from the definition.
			at := func(b, ci, iy, ix int) float64 {
				if c.channelsFirst {
					return float64(x[((b*c.cin+ci)*c.h+iy)*c.w+ix])
				}
				return float64(x[((b*c.h+iy)*c.w+ix)*c.cin+ci])
			}
			wd, bd := w.Data().([]float32), bias.Data().([]float32)
			want := make([]float64, 0, c.b*ho*wo*c.cout)
			row := make([]float32, c.cout)
			for b := range c.b {
				for oy := range ho {
					for ox := range wo {
						for co := range c.cout {
							s := float64(bd[co])
							for ky := range c.k {
								for kx := range c.k {
									iy, ix := oy*c.st-c.pad+ky, ox*c.st-c.pad+kx
									if iy < 0 || iy >= c.h || ix < 0 || ix >= c.w {
										continue
									}
									for ci := range c.cin {
										s += at(b, ci, iy, ix) * float64(wd[co*kkc+(ky*c.k+kx)*c.cin+ci])
									}
								}
							}
							row[co] = float32(s)
						}
						c.act.apply(row)
						for _, v := range row {
							want = append(want, float64(v))
						}
					}
				}
			}
			nearRef(t, fmt.Sprintf("case %d %s", i, c.name), cpu["y"].Data, want)
		})
	}
}

// TestCUDAAvgPool: even, odd (floor mode) and unit windows.
func TestCUDAAvgPool(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(9, 10))
	for i, c := range []struct{ b, h, w, ch, k int }{
		{3, 4, 6, 5, 2}, {2, 5, 7, 3, 2}, {2, 7, 7, 4, 3}, {1, 3, 3, 2, 1}, {2, 8, 8, 64, 2},
	} {
		x := randData(r, c.b*c.h*c.w*c.ch)
		cpu := both(t, dev, map[string][]float32{"x": x}, func(b *Builder) error {
			y, err := AvgPool("pool", b.Input("x", c.b*c.h*c.w, c.ch), c.b, c.h, c.w, c.k)
			if err != nil {
				return err
			}
			return b.Output("y", y)
		})
		ho, wo := c.h/c.k, c.w/c.k
		var want []float64
		for b := range c.b {
			for oy := range ho {
				for ox := range wo {
					for ch := range c.ch {
						var s float64
						for dy := range c.k {
							for dx := range c.k {
								s += float64(x[((b*c.h+oy*c.k+dy)*c.w+ox*c.k+dx)*c.ch+ch])
							}
						}
						want = append(want, s/float64(c.k*c.k))
					}
				}
			}
		}
		nearRef(t, fmt.Sprintf("test %d %+v", i, c), cpu["y"].Data, want)
	}
}

// TestCUDAPoolTokens: a single spatial token, a few, RN50's 49, and a mean that a
// float32 running sum gets wrong: each image's tokens cycle through +1e8, 1.5 and
// -1e8, so the true mean of each column is 0.5, and a float32 sum, which rounds
// 1e8 + 1.5 to 1e8, gives 0. The mean row is also an output of its own, so that it is
// compared at its own scale rather than the tokens' 1e8.
func TestCUDAPoolTokens(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(11, 12))
	for i, c := range []struct {
		b, s, ch   int
		cancelling bool
	}{
		{3, 1, 5, false}, {2, 4, 7, false}, {3, 49, 64, false}, {2, 48, 6, true},
	} {
		x, pos := randData(r, c.b*c.s*c.ch), randT(r, c.s+1, c.ch)
		if c.cancelling {
			for j := range x {
				x[j] = []float32{1e8, 1.5, -1e8}[(j/c.ch)%3]
			}
		}
		cpu := both(t, dev, map[string][]float32{"x": x}, func(b *Builder) error {
			tok, err := PoolTokens("tokens", b.Input("x", c.b*c.s, c.ch), b.Param("pos", pos), c.b, c.s)
			if err != nil {
				return err
			}
			mean, err := SelectRow("mean", tok, c.s+1, 0)
			if err != nil {
				return err
			}
			if err := b.Output("tokens", tok); err != nil {
				return err
			}
			return b.Output("mean", mean)
		})
		pd := pos.Data().([]float32)
		var want, wantMean []float64
		for b := range c.b {
			img := x[b*c.s*c.ch : (b+1)*c.s*c.ch]
			for ch := range c.ch {
				var s float64
				for r := range c.s {
					s += float64(img[r*c.ch+ch])
				}
				wantMean = append(wantMean, s/float64(c.s)+float64(pd[ch]))
			}
			want = append(want, wantMean[b*c.ch:]...)
			for j, v := range img {
				want = append(want, float64(v)+float64(pd[c.ch+j]))
			}
		}
		nearRef(t, fmt.Sprintf("test %d %+v tokens", i, c), cpu["tokens"].Data, want)
		nearRef(t, fmt.Sprintf("test %d %+v mean", i, c), cpu["mean"].Data, wantMean)
	}
}

// TestCUDAQueryAttention: RN50's 50 tokens and 64-wide heads, a single token, more
// tokens than a block has threads with heads narrower than a warp's multiple, and
// scores in the hundreds (the softmax must subtract the maximum).
func TestCUDAQueryAttention(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(13, 14))
	for i, c := range []struct {
		b, t, h, k int
		qscale     float32
	}{
		{3, 5, 2, 8, 1}, {2, 50, 4, 64, 1}, {2, 1, 3, 16, 1}, {2, 200, 2, 40, 1}, {2, 50, 4, 64, 100},
	} {
		d := c.h * c.k
		q, kv := randData(r, c.b*d), randData(r, c.b*c.t*2*d)
		for j := range q {
			q[j] *= c.qscale
		}
		cpu := both(t, dev, map[string][]float32{"q": q, "kv": kv}, func(b *Builder) error {
			y, err := QueryAttention("attn", b.Input("q", c.b, d), b.Input("kv", c.b*c.t, 2*d), c.b, c.t, c.h)
			if err != nil {
				return err
			}
			return b.Output("y", y)
		})
		want := make([]float64, c.b*d)
		p := make([]float64, c.t)
		for b := range c.b {
			for h := range c.h {
				mx := math.Inf(-1)
				for j := range c.t {
					var dot float64
					for e := range c.k {
						dot += float64(q[b*d+h*c.k+e]) * float64(kv[(b*c.t+j)*2*d+h*c.k+e])
					}
					p[j] = dot / math.Sqrt(float64(c.k))
					mx = math.Max(mx, p[j])
				}
				var sum float64
				for j := range p {
					p[j] = math.Exp(p[j] - mx)
					sum += p[j]
				}
				for j, pj := range p {
					for e := range c.k {
						want[b*d+h*c.k+e] += pj / sum * float64(kv[(b*c.t+j)*2*d+d+h*c.k+e])
					}
				}
			}
		}
		nearRef(t, fmt.Sprintf("test %d %+v", i, c), cpu["y"].Data, want)
	}
}

// TestCUDAChannelsFirst: one, a few and RN50's 49 spatial positions.
func TestCUDAChannelsFirst(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(15, 16))
	for i, c := range []struct{ b, h, w, ch int }{{3, 1, 1, 5}, {2, 2, 3, 5}, {2, 7, 7, 64}} {
		s := c.h * c.w
		x := randData(r, c.b*s*c.ch)
		cpu := both(t, dev, map[string][]float32{"x": x}, func(b *Builder) error {
			y, err := ChannelsFirst("nchw", b.Input("x", c.b*s, c.ch), []int{c.h, c.w, c.ch})
			if err != nil {
				return err
			}
			return b.Output("y", y)
		})
		want := make([]float64, len(x))
		for b := range c.b {
			for p := range s {
				for ch := range c.ch {
					want[(b*c.ch+ch)*s+p] = float64(x[(b*s+p)*c.ch+ch])
				}
			}
		}
		nearRef(t, fmt.Sprintf("test %d %+v", i, c), cpu["y"].Data, want)
	}
}

// TestCUDALinearReLU: the epilogue's ReLU (act 3), alone and after bias, scale and
// residual, as a bottleneck's conv3 and a layer-scaled block use it.
func TestCUDALinearReLU(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(17, 18))
	const n, in, out = 10, 24, 20
	x, res := randData(r, n*in), randData(r, n*out)
	w, bias, scale := randT(r, out, in), randT(r, out), randT(r, out)
	cpu := both(t, dev, map[string][]float32{"x": x, "res": res}, func(b *Builder) error {
		xi, ri := b.Input("x", n, in), b.Input("res", n, out)
		full, err := Linear("full", xi, b.Param("w", w), LinearOptions{Bias: b.Param("b", bias), Scale: b.Param("s", scale),
			Residual: ri, Act: ReLU})
		if err != nil {
			return err
		}
		plain, err := Linear("plain", xi, b.Param("w", w), LinearOptions{Act: ReLU})
		if err != nil {
			return err
		}
		if err := b.Output("full", full); err != nil {
			return err
		}
		return b.Output("plain", plain)
	})
	wd, bd, sd := w.Data().([]float32), bias.Data().([]float32), scale.Data().([]float32)
	var full, plain []float64
	for i := range n {
		for o := range out {
			var s float64
			for j := range in {
				s += float64(x[i*in+j]) * float64(wd[o*in+j])
			}
			plain = append(plain, math.Max(s, 0))
			full = append(full, math.Max((s+float64(bd[o]))*float64(sd[o])+float64(res[i*out+o]), 0))
		}
	}
	nearRef(t, "full", cpu["full"].Data, full)
	nearRef(t, "plain", cpu["plain"].Data, plain)
	var zeros int
	for _, v := range cpu["full"].Data {
		if v == 0 {
			zeros++
		}
	}
	if zeros == 0 || zeros == len(full) {
		t.Fatalf("%d of %d outputs clipped: the test does not exercise ReLU", zeros, len(full))
	}
}

// TestCUDARefusesBuiltinOps: a graph for the GPU holding a built-in gorgonia op (G.Mul,
// which would read device memory from the host) is refused at Compile, naming the
// node and the op; the same graph compiles and runs on the CPU.
func TestCUDARefusesBuiltinOps(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(19, 20))
	w := randT(r, 4, 3)
	build := func(d Device) (*Builder, *G.Node) {
		b := NewBuilderOn(d)
		y, err := G.Mul(b.Input("x", 2, 4), b.Param("w", w))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Output("y", y); err != nil {
			t.Fatal(err)
		}
		return b, y
	}
	b, y := build(dev)
	m, err := b.Compile()
	if err == nil {
		m.Close()
		t.Fatal("a graph with G.Mul compiled for the GPU")
	}
	t.Log(err)
	for _, want := range []string{y.Name(), y.Op().String(), dev.Name()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	b, _ = build(nil)
	m, err = b.Compile()
	if err != nil {
		t.Fatalf("the same graph on the CPU: %v", err)
	}
	defer m.Close()
	out, err := m.Run(map[string][]float32{"x": randData(r, 8)})
	if err != nil || len(out["y"].Data) != 6 {
		t.Fatalf("the same graph on the CPU: %v, %v", out, err)
	}
}
