//go:build gorgoclip_cuda

package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// cudaOrSkip opens GPU 0. (gorgonia.org/cu exits the process at start when there is no
// CUDA driver at all, so this test binary only runs on a GPU machine.)
func cudaOrSkip(t *testing.T) Device {
	t.Helper()
	d, err := OpenDevice("cuda")
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
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
// run checks that reused buffers give the same answer) and compares every output.
func both(t *testing.T, dev Device, inputs map[string][]float32, build func(b *Builder) error) {
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
