package layers

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// TestLinear checks y = x @ W^T + b on iota+1 values by hand, and that the weight is
// shared with the checkpoint rather than copied.
func TestLinear(t *testing.T) {
	w := &npy.Float32{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}} // [Out=2, In=3]
	tensors := Tensors{"fc.weight": w, "fc.bias": {Shape: []int{2}, Data: []float32{10, 20}}}
	l, err := NewLinear(tensors, "fc", 3, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if &l.Weight.Data().([]float32)[0] != &w.Data[0] {
		t.Error("Linear copied its weight")
	}
	b := graph.NewBuilder()
	x := b.Input("x", 2, 3)
	y, err := l.Forward(b, x)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Output("y", y); err != nil {
		t.Fatal(err)
	}
	m, err := b.Compile()
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Run(map[string][]float32{"x": {1, 0, 0, 1, 1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1 + 10, 4 + 20, 6 + 10, 15 + 20}
	for i, v := range want {
		if out["y"].Data[i] != v {
			t.Fatalf("got %v want %v", out["y"].Data, want)
		}
	}
}

func TestConstructorErrors(t *testing.T) {
	good := Tensors{"fc.weight": {Shape: []int{2, 3}, Data: make([]float32, 6)}}
	for i, test := range []struct {
		run  func() error
		want string
	}{
		{func() error { _, err := NewLinear(good, "fc", 3, 2, true); return err }, "fc.bias: missing"},
		{func() error { _, err := NewLinear(good, "fc", 4, 2, false); return err }, "fc.weight: got shape [2 3], want [2 4]"},
		{func() error { _, err := NewMultiheadAttention(good, "attn", 6, 4, false); return err }, "width 6 is not divisible by heads 4"},
	} {
		err := test.run()
		if err == nil || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v want an error containing %q", i, err, test.want)
		}
	}
}

var benchOut []float32

// BenchmarkResidualBlockViTB32 times one ViT-B/32 block at batch 32 (T=50, D=768).
func BenchmarkResidualBlockViTB32(b *testing.B) {
	const bsz, seq, d = 32, 50, 768
	rng := rand.New(rand.NewPCG(1, 2))
	randT := func(shape ...int) *npy.Float32 {
		n := 1
		for _, s := range shape {
			n *= s
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = 0.02 * float32(rng.NormFloat64())
		}
		return &npy.Float32{Shape: shape, Data: x}
	}
	p := "blk"
	t := Tensors{p + ".ln_1.weight": randT(d), p + ".ln_1.bias": randT(d), p + ".ln_2.weight": randT(d), p + ".ln_2.bias": randT(d),
		p + ".attn.in_proj_weight": randT(3*d, d), p + ".attn.in_proj_bias": randT(3 * d),
		p + ".attn.out_proj.weight": randT(d, d), p + ".attn.out_proj.bias": randT(d),
		p + ".mlp.c_fc.weight": randT(4*d, d), p + ".mlp.c_fc.bias": randT(4 * d),
		p + ".mlp.c_proj.weight": randT(d, 4*d), p + ".mlp.c_proj.bias": randT(d)}
	blk, err := NewResidualAttentionBlock(t, p, d, 12, false, graph.QuickGELU, 1e-5)
	if err != nil {
		b.Fatal(err)
	}
	bld := graph.NewBuilder()
	y, err := blk.Forward(bld, bld.Input("x", bsz*seq, d), bsz, seq)
	if err != nil {
		b.Fatal(err)
	}
	if err := bld.Output("y", y); err != nil {
		b.Fatal(err)
	}
	m, err := bld.Compile()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	in := map[string][]float32{"x": randT(bsz*seq, d).Data}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := m.Run(in)
		if err != nil {
			b.Fatal(err)
		}
		benchOut = out["y"].Data
	}
	b.ReportMetric(float64(bsz*b.N)/b.Elapsed().Seconds(), "img/s/block")
}
