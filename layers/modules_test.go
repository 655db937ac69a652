package layers

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
)

// TestLinear checks y = x @ W^T + b on iota+1 values by hand, and that the weight is
// shared with the checkpoint rather than copied.
func TestLinear(t *testing.T) {
	w := &Tensor{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}} // [Out=2, In=3]
	ws := Bind(Tensors{"fc.weight": w, "fc.bias": {Shape: []int{2}, Data: []float32{10, 20}}})
	l := NewLinear(ws, "fc", 3, 2, Normal(1))
	if err := ws.Err(); err != nil {
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
	if !slices.Equal(out["y"].Data, want) {
		t.Fatalf("got %v want %v", out["y"].Data, want)
	}
}

// TestBindErrors checks that one Bind error names every missing, mis-shaped and
// unexpected key, and that After functions run only when everything was found.
func TestBindErrors(t *testing.T) {
	good := Tensors{"fc.weight": {Shape: []int{2, 3}, Data: make([]float32, 6)}, "stray": {Shape: []int{1}, Data: []float32{0}}}
	ran := false
	ws := Bind(good)
	NewLinear(ws, "fc", 4, 2, Normal(1))
	ws.After(func() error { ran = true; return nil })
	err := ws.Err()
	for i, want := range []string{"fc.bias: missing", "fc.weight: got shape [2 3], want [2 4]", "stray: unexpected"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("test %d: got %v want an error containing %q", i, err, want)
		}
	}
	if ran {
		t.Error("After ran although weights were missing")
	}
	if _, err := NewMultiheadAttention(Declare(), "attn", 6, 4, false, 1, 1); err == nil || !strings.Contains(err.Error(), "width 6 is not divisible by heads 4") {
		t.Errorf("got %v want a heads error", err)
	}
}

// TestDeclareTouchesNothing checks that declaring lists keys, shapes and inits and
// returns no tensors, and that a buffer is expected but not required.
func TestDeclareTouchesNothing(t *testing.T) {
	w := Declare()
	c := NewConvBN(w, "conv", "bn", 3, 8, 3, 2, true)
	if c.Weight != nil || c.Bias != nil {
		t.Fatal("declaring produced tensors")
	}
	var keys []string
	for _, p := range w.Params() {
		keys = append(keys, p.Key)
	}
	want := []string{"conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}
	if !slices.Equal(keys, want) {
		t.Errorf("got keys %v want %v", keys, want)
	}
	if p := w.Params()[1]; p.Init != Const(0) {
		t.Errorf("zero-gamma BatchNorm weight init %+v, want Const(0)", p.Init)
	}
	if !w.Expects("bn.num_batches_tracked") || w.Expects("bn.other") {
		t.Error("Expects: buffer or unknown key misjudged")
	}
}

// TestConvBNFold checks the folded weight and bias of a 1x1 convolution against
// gamma*(W x - mean)/sqrt(var+eps) + beta worked by hand, and the (ky,kx,c) permutation
// of a 3x3 kernel.
func TestConvBNFold(t *testing.T) {
	ts := Tensors{
		"c.weight": {Shape: []int{1, 2, 1, 1}, Data: []float32{2, 3}},
		"b.weight": {Shape: []int{1}, Data: []float32{4}}, "b.bias": {Shape: []int{1}, Data: []float32{1}},
		"b.running_mean": {Shape: []int{1}, Data: []float32{0.5}}, "b.running_var": {Shape: []int{1}, Data: []float32{4 - batchNormEps}},
		"b.num_batches_tracked": {Shape: []int{}, Data: []float32{7}},
	}
	w := Bind(ts)
	c := NewConvBN(w, "c", "b", 2, 1, 1, 1, false)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	// s = 4/sqrt(4) = 2: W' = [4 6], b' = 1 - 0.5*2 = 0.
	if got := floats(c.Weight); !close32(got, []float32{4, 6}) || !close32(floats(c.Bias), []float32{0}) {
		t.Errorf("got W' %v b' %v want [4 6] [0]", got, floats(c.Bias))
	}
	k := make([]float32, 2*9) // [Cout=1, Cin=2, 3, 3], value = 100*c + 10*ky + kx
	for ci := range 2 {
		for ky := range 3 {
			for kx := range 3 {
				k[(ci*3+ky)*3+kx] = float32(100*ci + 10*ky + kx)
			}
		}
	}
	ts["c.weight"] = &Tensor{Shape: []int{1, 2, 3, 3}, Data: k}
	ts["b.weight"].Data[0], ts["b.running_mean"].Data[0], ts["b.running_var"].Data[0] = 1, 0, 1-batchNormEps
	w = Bind(ts)
	c = NewConvBN(w, "c", "b", 2, 1, 3, 1, false)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 100, 1, 101, 2, 102, 10, 110, 11, 111, 12, 112, 20, 120, 21, 121, 22, 122}
	if got := floats(c.Weight); !close32(got, want) {
		t.Errorf("permuted kernel %v want %v", got, want)
	}
}

func close32(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return x-y < 1e-5 && y-x < 1e-5 })
}

var benchOut []float32

// BenchmarkResidualBlockViTB32 times one ViT-B/32 block at batch 32 (T=50, D=768).
func BenchmarkResidualBlockViTB32(b *testing.B) {
	const bsz, seq, d = 32, 50, 768
	rng := rand.New(rand.NewPCG(1, 2))
	decl := Declare()
	cfg := TransformerConfig{Width: d, Layers: 12, Heads: 12, MLPWidth: 4 * d, Activation: graph.QuickGELU, Eps: 1e-5}
	if _, err := NewResidualAttentionBlock(decl, "blk", cfg); err != nil {
		b.Fatal(err)
	}
	t := Tensors{}
	for _, p := range decl.Params() {
		data := make([]float32, p.Size())
		p.Init.Fill(data, rng)
		t[p.Key] = &Tensor{Shape: p.Shape, Data: data}
	}
	w := Bind(t)
	blk, err := NewResidualAttentionBlock(w, "blk", cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Err(); err != nil {
		b.Fatal(err)
	}
	bld := graph.NewBuilder()
	y, _, err := blk.Forward(bld, bld.Input("x", bsz*seq, d), bsz, seq)
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
	in := make([]float32, bsz*seq*d)
	Normal(1).Fill(in, rng)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := m.Run(map[string][]float32{"x": in})
		if err != nil {
			b.Fatal(err)
		}
		benchOut = out["y"].Data
	}
	b.ReportMetric(float64(bsz*b.N)/b.Elapsed().Seconds(), "img/s/block")
}
