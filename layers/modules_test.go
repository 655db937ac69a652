package layers

import (
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
