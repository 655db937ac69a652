package weights

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers"
)

// TestConvertEach loads every fixture layout with a converter that truncates every
// tensor to its upper 16 bits, and checks that it saw each returned tensor once,
// under its OpenAI key, with the values Load returns without it (Hugging Face's
// transposed and concatenated tensors assembled first), and that no converted
// tensor keeps float32 data.
func TestConvertEach(t *testing.T) {
	for _, layout := range []string{"clip-tiny-a/openai", "clip-tiny-a/hf", "clip-tiny-a/hf-bin", "clip-tiny-rn/openai",
		"clip-tiny-rn/open_clip", "openclip-tiny/open_clip"} {
		t.Run(layout, func(t *testing.T) {
			dir := testfix.Shared(t, filepath.Join("fixtures", layout))
			want, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			got, err := Load(dir, ConvertEach(func(layers.Config) (func(string, *Tensor) error, error) {
				return func(k string, t *Tensor) error {
					seen[k]++
					h := make([]uint16, len(t.Data))
					for i, v := range t.Data {
						h[i] = uint16(math.Float32bits(v) >> 16)
					}
					t.SetHalf(h, func() {})
					return nil
				}, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Tensors) != len(want.Tensors) || len(seen) != len(want.Tensors) {
				t.Fatalf("got %d tensors, converter saw %d keys, want %d", len(got.Tensors), len(seen), len(want.Tensors))
			}
			for k, w := range want.Tensors {
				g := got.Tensors[k]
				if seen[k] != 1 || g == nil || g.Data != nil || len(g.Half) != len(w.Data) {
					t.Errorf("%s: converted %d times (want 1), got %v", k, seen[k], g)
					continue
				}
				for i, v := range w.Data {
					if g.Half[i] != uint16(math.Float32bits(v)>>16) {
						t.Errorf("%s[%d]: got %#04x want the upper half of %g", k, i, g.Half[i], v)
						break
					}
				}
			}
			if err := Save(got, t.TempDir()); err == nil {
				t.Error("Save wrote a 16-bit checkpoint; want an error")
			}
		})
	}
}
