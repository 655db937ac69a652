package cli

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// embedMaxDiff returns the largest absolute difference of got and want[:len(got)].
func embedMaxDiff(got, want []float32) float64 {
	var d float64
	for i := range got {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
	}
	return d
}

func TestEmbedMatchesGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fixture model")
	}
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	tmp := t.TempDir()
	// The first ten golden prompts fit on one line each; the others hold a newline.
	prompts := filepath.Join(tmp, "prompts.txt")
	lines := []string{"a photo of a tench", "a photo of a English springer", "a photo of a cassette player",
		"a photo of a chain saw", "a photo of a church", "a photo of a French horn", "a photo of a garbage truck",
		"a photo of a gas pump", "a photo of a golf ball", "a photo of a parachute"}
	// Blank lines are skipped, as tokenize skips them; a CRLF ending is no part of a prompt.
	text := strings.Join(lines[:3], "\n") + "\n\n  \r\n" + strings.Join(lines[3:], "\r\n") + "\n"
	if err := os.WriteFile(prompts, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, test := range []struct {
		args   []string
		golden string
		rows   int
	}{
		{[]string{"--pixels", filepath.Join(tiny, "golden/pixels.npy")}, "image_features", 5},
		{[]string{"--tokens", filepath.Join(tiny, "golden/tokens.npy"), "--batch", "4"}, "text_features", 13},
		{[]string{"--texts", prompts, "--vocab", vocab}, "text_features", 10},
		{[]string{"--weights", filepath.Join(tiny, "hf"), "--pixels", filepath.Join(tiny, "golden/pixels.npy")}, "image_features", 5},
	} {
		out := filepath.Join(tmp, "out.npy")
		args := append([]string{"embed", "--weights", filepath.Join(tiny, "openai"), "-o", out}, test.args...)
		code, _, stderr := run("", args...)
		if code != 0 {
			t.Fatalf("test %d: exit %d: %s", i, code, stderr)
		}
		got, err := npy.ReadFloat32(out)
		if err != nil {
			t.Fatal(err)
		}
		want, err := npy.ReadFloat32(filepath.Join(tiny, "golden", test.golden+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Shape) != 2 || got.Shape[0] != test.rows || got.Shape[1] != want.Shape[1] {
			t.Fatalf("test %d: got shape %v want [%d,%d]", i, got.Shape, test.rows, want.Shape[1])
		}
		d := embedMaxDiff(got.Data, want.Data)
		t.Logf("test %d: %s max |diff| %.3g", i, test.golden, d)
		if d > 1e-4 {
			t.Errorf("test %d: %s differs from golden by %g", i, test.golden, d)
		}
	}
}

func TestEmbedImagesMatchPixels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fixture model")
	}
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	imgs := testfix.Shared(t, "fixtures/preprocess/images")
	tmp := t.TempDir()
	a, b, pix := filepath.Join(tmp, "a.npy"), filepath.Join(tmp, "b.npy"), filepath.Join(tmp, "pix.npy")
	files := []string{filepath.Join(imgs, "video-001.png"), filepath.Join(imgs, "video-005.gray.png")}
	if code, _, e := run("", append([]string{"embed", "--weights", tiny, "-o", a, "--images"}, files...)...); code != 0 {
		t.Fatalf("--images: exit %d: %s", code, e)
	}
	if code, _, e := run("", append([]string{"preprocess", "--size", "64", "-o", pix}, files...)...); code != 0 {
		t.Fatalf("preprocess: exit %d: %s", code, e)
	}
	if code, _, e := run("", "embed", "--weights", tiny, "--pixels", pix, "-o", b); code != 0 {
		t.Fatalf("--pixels: exit %d: %s", code, e)
	}
	ga, _ := npy.ReadFloat32(a)
	gb, _ := npy.ReadFloat32(b)
	if ga == nil || gb == nil || len(ga.Data) != 2*32 || embedMaxDiff(ga.Data, gb.Data) != 0 {
		t.Fatalf("--images and preprocess+--pixels disagree: %v vs %v", ga, gb)
	}
}

func TestEmbedErrors(t *testing.T) {
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.npy")
	if err := npy.WriteFloat32(bad, []int{2, 3, 32, 32}, make([]float32, 2*3*32*32)); err != nil {
		t.Fatal(err)
	}
	w := filepath.Join(tiny, "openai")
	// A 16 MB line (issue #20): the error names the file and line, not bufio's limit.
	huge, blank := filepath.Join(tmp, "huge.txt"), filepath.Join(tmp, "blank.txt")
	if err := os.WriteFile(huge, []byte("a photo\n"+strings.Repeat("x", 16<<20)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blank, []byte("\n \n\t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, test := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-o", "x.npy", "--pixels", bad}, 2, "--weights"},
		{[]string{"--weights", w, "--pixels", bad}, 2, "-o"},
		{[]string{"--weights", w, "-o", "x.npy"}, 2, "exactly one"},
		{[]string{"--weights", w, "-o", "x.npy", "--pixels", bad, "--tokens", bad}, 2, "exactly one"},
		{[]string{"--weights", w, "-o", filepath.Join(tmp, "o.npy"), "--pixels", bad}, 1, "[N,3,64,64]"},
		{[]string{"--weights", w, "-o", filepath.Join(tmp, "o.npy"), "--tokens", bad}, 1, "integer"},
		{[]string{"--weights", tmp, "-o", filepath.Join(tmp, "o.npy"), "--pixels", bad}, 1, "weights"},
		{[]string{"--weights", w, "-o", filepath.Join(tmp, "o.npy"), "--texts", huge}, 1, huge + ":2: line longer than 1 MiB"},
		{[]string{"--weights", w, "-o", filepath.Join(tmp, "o.npy"), "--texts", blank}, 1, blank + ": no prompts"},
	} {
		code, _, stderr := run("", append([]string{"embed"}, test.args...)...)
		if code != test.code || !strings.Contains(stderr, test.msg) {
			t.Errorf("test %d: got exit %d %q, want exit %d mentioning %q", i, code, stderr, test.code, test.msg)
		}
	}
}
