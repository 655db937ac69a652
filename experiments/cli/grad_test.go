package cli

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// checkGolden compares the .npy at got with golden within tol times the golden's
// largest value (relative) or tol (absolute, when rel is false).
func checkGolden(t *testing.T, got, golden string, tol float64, rel bool) {
	t.Helper()
	g, err := npy.ReadFloat32(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := npy.ReadFloat32(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !sameShape(g.Shape, w.Shape) {
		t.Fatalf("%s: shape %v, want %v", filepath.Base(got), g.Shape, w.Shape)
	}
	var largest float64
	for _, v := range w.Data {
		largest = math.Max(largest, math.Abs(float64(v)))
	}
	if rel {
		tol *= largest
	}
	d := embedMaxDiff(g.Data, w.Data)
	t.Logf("%s: max |diff| %.3g (largest %.3g)", filepath.Base(got), d, largest)
	if d > tol {
		t.Errorf("%s differs from the golden by %g > %g", filepath.Base(got), d, tol)
	}
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGradMatchesGolden(t *testing.T) {
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	gold := filepath.Join(tiny, "golden")
	out := t.TempDir()
	code, _, stderr := run("", "grad", "--weights", filepath.Join(tiny, "openai"), "--pixels", filepath.Join(gold, "pixels.npy"),
		"--tokens", filepath.Join(gold, "tokens.npy"), "--targets", filepath.Join(gold, "grad/targets.npy"), "-o", out, "--batch", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "loss") {
		t.Errorf("stderr does not report the loss: %s", stderr)
	}
	for _, f := range []string{"pixels_grad.npy", "token_embeddings_grad.npy"} {
		checkGolden(t, filepath.Join(out, f), filepath.Join(gold, "grad", f), 1e-4, true)
	}
}

func TestEmbedAttentionMatchesGolden(t *testing.T) {
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	gold := filepath.Join(tiny, "golden")
	tmp := t.TempDir()
	for _, c := range []struct{ flag, input, golden string }{
		{"--pixels", "pixels.npy", "vision_attention.npy"}, {"--tokens", "tokens.npy", "text_attention.npy"},
	} {
		att := filepath.Join(tmp, c.golden)
		code, _, stderr := run("", "embed", "--weights", filepath.Join(tiny, "openai"), c.flag, filepath.Join(gold, c.input),
			"-o", filepath.Join(tmp, "f.npy"), "--attention", att, "--batch", "4")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.flag, code, stderr)
		}
		checkGolden(t, att, filepath.Join(gold, "grad", c.golden), 1e-5, false)
	}
	rn := testfix.Shared(t, "fixtures/clip-tiny-rn")
	code, _, stderr := run("", "embed", "--weights", filepath.Join(rn, "openai"), "--pixels", filepath.Join(rn, "golden/pixels.npy"),
		"-o", filepath.Join(tmp, "f.npy"), "--attention", filepath.Join(tmp, "a.npy"))
	if code != 1 || !strings.Contains(stderr, "no attention blocks") {
		t.Errorf("--attention on a ResNet: exit %d %q, want exit 1 saying it has no attention blocks", code, stderr)
	}
}

func TestGradErrors(t *testing.T) {
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	gold := filepath.Join(tiny, "golden")
	tmp := t.TempDir()
	w := filepath.Join(tiny, "openai")
	px, tok := filepath.Join(gold, "pixels.npy"), filepath.Join(gold, "tokens.npy")
	short, far := filepath.Join(tmp, "short.npy"), filepath.Join(tmp, "far.npy")
	if err := npy.WriteInt64(short, []int{3}, []int64{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteInt64(far, []int{5}, []int64{0, 1, 2, 3, 13}); err != nil {
		t.Fatal(err)
	}
	o := filepath.Join(tmp, "out")
	for i, test := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--pixels", px, "--tokens", tok, "--targets", short, "-o", o}, 2, "--weights"},
		{[]string{"--weights", w, "--tokens", tok, "--targets", short, "-o", o}, 2, "--pixels"},
		{[]string{"--weights", w, "--pixels", px, "--tokens", tok, "--targets", short}, 2, "-o"},
		{[]string{"--weights", w, "--pixels", px, "--tokens", tok, "--targets", short, "-o", o}, 1, "want [5]"},
		{[]string{"--weights", w, "--pixels", px, "--tokens", tok, "--targets", far, "-o", o}, 1, "target 13 of image 4"},
		{[]string{"--weights", w, "--pixels", tok, "--tokens", tok, "--targets", far, "-o", o}, 1, "[N,3,64,64]"},
		{[]string{"--weights", w, "--pixels", px, "--tokens", px, "--targets", far, "-o", o}, 1, "integer"},
	} {
		code, _, stderr := run("", append([]string{"grad"}, test.args...)...)
		if code != test.code || !strings.Contains(stderr, test.msg) {
			t.Errorf("test %d: got exit %d %q, want exit %d mentioning %q", i, code, stderr, test.code, test.msg)
		}
	}
}
