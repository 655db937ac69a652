package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

func TestPreprocessMatchesGolden(t *testing.T) {
	dir := testfix.Shared(t, "fixtures/preprocess")
	png := filepath.Join(dir, "images", "video-001.png")
	for i, test := range []struct {
		args  []string
		shape []int
	}{
		{[]string{"--size", "64", "-o", "OUT", png}, []int{3, 64, 64}},
		{[]string{"--size=64", png, "-o", "OUT"}, []int{3, 64, 64}}, // flags after the image
		{[]string{"--size", "64", "--workers", "2", "-o", "OUT", png, png}, []int{2, 3, 64, 64}},
	} {
		out := filepath.Join(t.TempDir(), "pixels.npy")
		for j, a := range test.args {
			if a == "OUT" {
				test.args[j] = out
			}
		}
		code, _, errOut := run("", append([]string{"preprocess"}, test.args...)...)
		if code != 0 {
			t.Fatalf("test %d: exit %d: %s", i, code, errOut)
		}
		got, err := npy.ReadFloat32(out)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Shape, test.shape) {
			t.Fatalf("test %d: got shape %v want %v", i, got.Shape, test.shape)
		}
		golden, err := npy.ReadFloat32(filepath.Join(dir, "golden", "video-001.png.64.npy"))
		if err != nil {
			t.Fatal(err)
		}
		n := len(golden.Data)
		for k := 0; k < len(got.Data)/n; k++ {
			for j, v := range got.Data[k*n : (k+1)*n] {
				if v != golden.Data[j] {
					t.Fatalf("test %d: image %d value %d: got %v want %v", i, k, j, v, golden.Data[j])
				}
			}
		}
	}
}

func TestPreprocessErrors(t *testing.T) {
	tmp := t.TempDir()
	corrupt := filepath.Join(tmp, "corrupt.png")
	if err := os.WriteFile(corrupt, []byte("\x89PNG\r\n\x1a\nthis is not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out.npy")
	for i, test := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-o", out, corrupt}, 1, corrupt},
		{[]string{"-o", out, filepath.Join(tmp, "missing.jpg")}, 1, "missing.jpg"},
		{[]string{corrupt}, 2, "-o OUT.npy is required"},
		{[]string{"-o", out}, 2, "no IMAGE"},
		{[]string{"--size", "0", "-o", out, corrupt}, 2, "--size 0"},
		{[]string{"--size", "x", "-o", out, corrupt}, 2, "invalid value"},
	} {
		code, _, errOut := run("", append([]string{"preprocess"}, test.args...)...)
		if code != test.code || !strings.Contains(errOut, test.want) {
			t.Errorf("test %d: got exit %d stderr %q want exit %d containing %q", i, code, errOut, test.code, test.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind (stat: %v)", out, err)
	}
}
