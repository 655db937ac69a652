//go:build gorgoclip_cuda

package graph

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// precisionBlock builds a pre-LN transformer block with a patch embedding in front
// (tokens = PatchEmbed(px); y = x + proj(gelu(fc(attn(ln(x)))))) in precision p, its
// GEMM weights converted to p's format, and returns the outputs' names.
func precisionBlock(b *Builder, p Precision, ws map[string]*tensor.Dense, bsz, res, patch, width, heads int) error {
	b.SetPrecision(p)
	conv := map[Precision]func(*tensor.Dense) (int, error){BF16: ToBF16, FP16: ToFP16}[p]
	param := func(name string, gemm bool) *G.Node {
		w := ws[name].Clone().(*tensor.Dense)
		if gemm && conv != nil {
			if _, err := conv(w); err != nil {
				panic(err)
			}
		}
		return b.Param(name, w)
	}
	g := res / patch
	seq := g*g + 1
	x, err := PatchEmbed("pe", b.Input("px", bsz, 3*res*res), param("conv", true), param("cls", false), param("pos", false), bsz, res, patch)
	if err != nil {
		return err
	}
	h, err := LayerNorm("ln", x, param("g", false), param("b", false), 1e-5)
	if err != nil {
		return err
	}
	qkv, err := Linear("qkv", h, param("qkvW", true), LinearOptions{Bias: param("qkvB", false)})
	if err != nil {
		return err
	}
	a, err := Attention("attn", qkv, bsz, seq, heads, false)
	if err != nil {
		return err
	}
	u, err := Linear("fc", a, param("w1", true), LinearOptions{Bias: param("b1", false), Act: GELU})
	if err != nil {
		return err
	}
	y, err := Linear("proj", u, param("w2", true), LinearOptions{Residual: x})
	if err != nil {
		return err
	}
	if err := b.Output("tokens", x); err != nil {
		return err
	}
	return b.Output("y", y)
}

// TestCUDAPrecisions runs the block on the GPU in BF16, FP16 and TF32 against the CPU:
// BF16 against the CPU's BF16 graph (which also keeps q, k and v in bfloat16, the GPU
// float32: the tolerance covers that rounding), FP16 and TF32 against FP32 within
// their rounding of the GEMM inputs (2^-11 and 2^-11 relative, over sums of 48 to 192
// products). 16-bit weights upload half the bytes.
func TestCUDAPrecisions(t *testing.T) {
	dev := cudaOrSkip(t)
	r := rand.New(rand.NewPCG(7, 8))
	const bsz, res, patch, width, heads = 2, 16, 8, 48, 4
	scaled := func(s float32, shape ...int) *tensor.Dense {
		w := randT(r, shape...)
		for i, v := range w.Data().([]float32) {
			w.Data().([]float32)[i] = s * v
		}
		return w
	}
	ws := map[string]*tensor.Dense{
		"conv": scaled(0.1, width, 3*patch*patch), "cls": randT(r, width), "pos": randT(r, (res/patch)*(res/patch)+1, width),
		"g": randT(r, width), "b": randT(r, width), "qkvW": scaled(0.15, 3*width, width), "qkvB": randT(r, 3*width),
		"w1": scaled(0.15, 4*width, width), "b1": randT(r, 4*width), "w2": scaled(0.07, width, 4*width),
	}
	px := randData(r, bsz*3*res*res)
	run := func(d Device, p Precision) (map[string]Output, Copies) {
		b := NewBuilderOn(d)
		if err := precisionBlock(b, p, ws, bsz, res, patch, width, heads); err != nil {
			t.Fatal(err)
		}
		before := CopyStats()
		m, err := b.Compile()
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		defer m.Close()
		c := CopyStats().Sub(before)
		var out map[string]Output
		for range 2 {
			if out, err = m.Run(map[string][]float32{"px": px}); err != nil {
				t.Fatalf("%v: %v", p, err)
			}
		}
		return out, c
	}
	fp32, c32 := run(dev, FP32)
	for _, test := range []struct {
		p   Precision
		ref map[string]Output
		tol float64 // relative to the largest value
	}{{BF16, nil, 0.02}, {FP16, fp32, 0.005}, {TF32, fp32, 0.005}} {
		ref := test.ref
		if ref == nil {
			ref, _ = run(nil, test.p)
		}
		got, c := run(dev, test.p)
		for _, name := range []string{"tokens", "y"} {
			var d, scale float64
			for i, v := range ref[name].Data {
				d = math.Max(d, math.Abs(float64(got[name].Data[i]-v)))
				scale = math.Max(scale, math.Abs(float64(v)))
				if math.IsNaN(float64(got[name].Data[i])) {
					d = math.Inf(1)
				}
			}
			t.Logf("%v %s: max |gpu-ref| %.3g of max |ref| %.3g", test.p, name, d, scale)
			if d > test.tol*scale {
				t.Errorf("%v %s: GPU differs from the reference by %.3g (> %g of %.3g)", test.p, name, d, test.tol, scale)
			}
		}
		if want := c32.WeightBytes; test.p.half() && c.WeightBytes >= want || !test.p.half() && c.WeightBytes != want {
			t.Errorf("%v: uploaded %d weight bytes (fp32: %d)", test.p, c.WeightBytes, want)
		}
	}
	// The GEMMs did round: FP16 is not FP32.
	fp16, _ := run(dev, FP16)
	if d, _ := close32(fp16["y"].Data, fp32["y"].Data, 0); d == 0 {
		t.Error("the FP16 graph gave exactly the FP32 result")
	}
}
