package cli

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// TestEmbedOtherTowers runs embed on the ResNet and open_clip fixtures, in each
// layout: features against the goldens, and --pooled giving the tower's own
// pre-projection width (a ResNet's attention pool is 32x its stem width).
func TestEmbedOtherTowers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fixture models")
	}
	tmp := t.TempDir()
	for i, test := range []struct {
		model, layout string
		pooled        []int
	}{
		{"clip-tiny-rn", "openai", []int{3, 512}},
		{"clip-tiny-rn", "open_clip", []int{3, 512}},
		{"openclip-tiny", "open_clip", []int{3, 96}},
	} {
		dir := testfix.Shared(t, "fixtures/"+test.model)
		out := filepath.Join(tmp, "out.npy")
		for _, pooled := range []bool{false, true} {
			args := []string{"embed", "--weights", filepath.Join(dir, test.layout), "--pixels", filepath.Join(dir, "golden/pixels.npy"), "-o", out}
			if pooled {
				args = append(args, "--pooled")
			}
			if code, _, stderr := run("", args...); code != 0 {
				t.Fatalf("test %d (%s/%s, pooled %v): exit %d: %s", i, test.model, test.layout, pooled, code, stderr)
			}
			got, err := npy.ReadFloat32(out)
			if err != nil {
				t.Fatal(err)
			}
			if pooled {
				if !slices.Equal(got.Shape, test.pooled) {
					t.Errorf("test %d (%s/%s): pooled shape %v want %v", i, test.model, test.layout, got.Shape, test.pooled)
				}
				continue
			}
			want, err := npy.ReadFloat32(filepath.Join(dir, "golden/image_features.npy"))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Shape, want.Shape) || embedMaxDiff(got.Data, want.Data) > 1e-4 {
				t.Errorf("test %d (%s/%s): features %v differ from the golden %v by %g", i, test.model, test.layout,
					got.Shape, want.Shape, embedMaxDiff(got.Data, want.Data))
			}
		}
	}
}
