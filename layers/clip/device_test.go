package clip

import (
	"errors"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
)

func TestWithDevice(t *testing.T) {
	m := randomModel(t, "ViT-B/32", WithDevice("cpu"))
	if m.Device() != "cpu" {
		t.Errorf("Device() = %q", m.Device())
	}
	cfgErr := func(name string) error {
		t.Helper()
		ck, err := RandomCheckpoint(m.Config(), 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(ck, WithDevice(name))
		return err
	}
	if err := cfgErr("abacus"); err == nil {
		t.Error("WithDevice(abacus) accepted")
	}
	if !graph.CUDA {
		if err := cfgErr("cuda"); !errors.Is(err, graph.ErrNoCUDA) {
			t.Errorf("WithDevice(cuda) without CUDA: %v, want ErrNoCUDA", err)
		}
	}
}
