package graph

import (
	"errors"
	"testing"
)

func TestOpenDevice(t *testing.T) {
	for _, name := range []string{"", "cpu", "CPU", " cpu "} {
		d, err := OpenDevice(name)
		if err != nil || d != nil {
			t.Errorf("OpenDevice(%q) = %v, %v; want the CPU (nil, nil)", name, d, err)
		}
	}
	if DeviceName(nil) != "cpu" {
		t.Errorf("DeviceName(nil) = %q", DeviceName(nil))
	}
	for _, name := range []string{"tpu", "cuda:x", "cuda:-1"} {
		if _, err := OpenDevice(name); err == nil || errors.Is(err, ErrNoCUDA) {
			t.Errorf("OpenDevice(%q): %v, want a usage error", name, err)
		}
	}
	if CUDA {
		return
	}
	for _, name := range []string{"cuda", "cuda:1", "gpu"} {
		if _, err := OpenDevice(name); !errors.Is(err, ErrNoCUDA) {
			t.Errorf("OpenDevice(%q) = %v, want ErrNoCUDA", name, err)
		}
	}
	if ErrNoCUDA.Error() != "this gorgoclip was built without CUDA; build it with make cuda" {
		t.Errorf("ErrNoCUDA = %q", ErrNoCUDA)
	}
}

// TestCPUMachineCopiesNothing: the CPU path (NewBuilderOn(nil)) runs as before and
// makes no host-device copy.
func TestCPUMachineCopiesNothing(t *testing.T) {
	before := CopyStats()
	b := NewBuilderOn(nil)
	x := b.Input("x", 2, 3)
	g, gd := newF32(3)
	bias, _ := newF32(3)
	for i := range gd {
		gd[i] = 1
	}
	y, err := LayerNorm("ln", x, b.Param("g", g), b.Param("b", bias), 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	m := compileOutput(t, b, "y", y)
	out, err := m.Run(map[string][]float32{"x": {1, 2, 3, 4, 4, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if got := out["y"].Data; got[0] > -1.2 || got[0] < -1.3 || got[4] != 0 {
		t.Errorf("layer norm = %v", got)
	}
	if c := CopyStats().Sub(before); c != (Copies{}) {
		t.Errorf("CPU run copied %+v", c)
	}
}
