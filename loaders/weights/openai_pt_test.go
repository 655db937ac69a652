package weights_test

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
)

// TestLoadOpenAIPt loads a TorchScript archive laid out as OpenAI's own .pt files
// (testdata/openai-tiny.pt, written by scripts/make_openai_pt.py: a traced CLIP in
// half precision, with the three jit constants build_model drops), infers its config
// from the shapes, and checks the model's features against PyTorch's.
func TestLoadOpenAIPt(t *testing.T) {
	ck, err := weights.Load(filepath.Join("testdata", "openai-tiny.pt"))
	if err != nil {
		t.Fatal(err)
	}
	c := ck.Config
	if ck.Format != weights.FormatOpenAIPt || c.Vision.Kind != "vit" || c.Vision.Width != 64 || c.Vision.PatchSize != 8 ||
		c.Vision.ImageResolution != 16 || c.Text.ContextLength != 8 || c.Text.VocabSize != 64 || c.EmbedDim != 16 {
		t.Fatalf("format %s, config %+v", ck.Format, c)
	}
	m, err := clip.New(ck)
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) *npy.Float32 {
		x, err := npy.ReadFloat32(filepath.Join("testdata", "openai-tiny-"+name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	pix := read("pixels")
	img, err := m.EncodeImages(pix.Data, pix.Shape[0])
	if err != nil {
		t.Fatal(err)
	}
	tok, err := npy.ReadInt64(filepath.Join("testdata", "openai-tiny-tokens.npy"))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, len(tok.Data))
	for i, v := range tok.Data {
		ids[i] = int32(v)
	}
	txt, err := m.EncodeTexts(ids, tok.Shape[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, test := range []struct {
		name string
		got  []float32
	}{{"image-features", img}, {"text-features", txt}} {
		want := read(test.name)
		if len(test.got) != len(want.Data) {
			t.Fatalf("%s: %d values, want %d", test.name, len(test.got), len(want.Data))
		}
		var d float64
		for i := range want.Data {
			d = max(d, math.Abs(float64(test.got[i]-want.Data[i])))
		}
		if d > 1e-4 {
			t.Errorf("%s: max |diff| %g against PyTorch", test.name, d)
		}
	}
	shapes, err := weights.ExpectedShapes(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ck.Tensors) != len(shapes) || slices.Contains(keysOf(ck.Tensors), "input_resolution") {
		t.Errorf("%d tensors (%v), want the %d weights the model declares", len(ck.Tensors), keysOf(ck.Tensors), len(shapes))
	}
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
