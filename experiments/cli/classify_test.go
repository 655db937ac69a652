package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/images"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// TestClassifyMatchesGoldenLogits classifies the fixture's five images against the
// first ten golden prompts as labels (--prompts bare: the label is the prompt) and
// compares the probabilities with the softmax of OpenAI's logits_per_image over
// those ten columns.
func TestClassifyMatchesGoldenLogits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fixture model")
	}
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a")
	imgs := testfix.Shared(t, "fixtures/preprocess/images")
	var prompts []string
	b, err := os.ReadFile(filepath.Join(tiny, "golden/prompts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &prompts); err != nil {
		t.Fatal(err)
	}
	labels := prompts[:10] // one line each; the others are empty or hold a newline
	labelsPath := filepath.Join(t.TempDir(), "labels.txt")
	if err := os.WriteFile(labelsPath, []byte(strings.Join(labels, "\n")+"\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logits, err := npy.ReadFloat32(filepath.Join(tiny, "golden/logits_per_image.npy"))
	if err != nil {
		t.Fatal(err)
	}
	// golden/pixels.npy holds these images in this order.
	files := []string{"dog.jpg", "video-001.png", "video-005.gray.png", "fashion-mnist-t10k-00000-label9.png", "fashion-mnist-t10k-00001-label2.png"}
	args := []string{"classify", "--weights", filepath.Join(tiny, "openai"), "--labels", labelsPath, "--prompts", "bare", "--top", "10", "--json"}
	for _, f := range files {
		args = append(args, filepath.Join(imgs, f))
	}
	code, out, errOut := run("", args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(files) {
		t.Fatalf("got %d lines want %d:\n%s", len(lines), len(files), out)
	}
	cols := logits.Shape[1]
	for i, line := range lines {
		var p Prediction
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		want := make([]float64, len(labels))
		for c := range want {
			want[c] = float64(logits.Data[i*cols+c])
		}
		softmax(want)
		// The PNGs preprocess bit for bit, and so does dog.jpg with libjpeg-turbo (the
		// libjpeg tag); Go's JPEG decoder lands up to 0.1 away from PIL (fixtures README).
		tol := 1e-4
		if strings.HasSuffix(files[i], ".jpg") && !strings.HasPrefix(images.JPEGDecoder, "libjpeg-turbo") {
			tol = 1e-3
		}
		if p.Image != filepath.Join(imgs, files[i]) || len(p.Labels) != 10 || len(p.Probs) != 10 {
			t.Fatalf("line %d: %+v", i+1, p)
		}
		var sum, worst float64
		for k, l := range p.Labels {
			c := slices.Index(labels, l)
			if c < 0 {
				t.Fatalf("line %d: unknown label %q", i+1, l)
			}
			worst = math.Max(worst, math.Abs(p.Probs[k]-want[c]))
			sum += p.Probs[k]
			if k > 0 && p.Probs[k] > p.Probs[k-1] {
				t.Errorf("line %d: labels not ordered by probability: %v", i+1, p.Probs)
			}
		}
		if best := slices.Index(want, slices.Max(want)); p.Labels[0] != labels[best] {
			t.Errorf("%s: top label %q, OpenAI's logits give %q", files[i], p.Labels[0], labels[best])
		}
		t.Logf("%s: max |prob - softmax(golden logits)| = %.2g", files[i], worst)
		if worst > tol || math.Abs(sum-1) > 1e-9 {
			t.Errorf("%s: probabilities off by %g (sum %v), want within %g", files[i], worst, sum, tol)
		}
	}

	// The default output: the top labels with percentages, per image.
	code, out, errOut = run("", "classify", "--weights", filepath.Join(tiny, "openai"), "--labels", labelsPath, "--top", "2", filepath.Join(imgs, files[1]))
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.HasPrefix(out, filepath.Join(imgs, files[1])+"\n  ") || !strings.Contains(out, "%  a photo of a ") {
		t.Errorf("text output: exit %d %q (stderr %q)", code, out, errOut)
	}
}

func TestClassifyErrors(t *testing.T) {
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	img := filepath.Join(testfix.Shared(t, "fixtures/preprocess/images"), "video-001.png")
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, dup, one := write("good.txt", "cat\ndog\n"), write("dup.txt", "cat\n\ndog\n cat \n"), write("one.txt", "cat\n")
	for i, test := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--labels", good, img}, 2, "--weights DIR is required"},
		{[]string{"--weights", tiny, img}, 2, "--labels FILE is required"},
		{[]string{"--weights", tiny, "--labels", good}, 2, "give the images"},
		{[]string{"--weights", tiny, "--labels", good, "--top", "0", img}, 2, "--top 0"},
		{[]string{"--weights", tiny, "--labels", dup, img}, 1, dup + `:4: label "cat" is already on line 1`},
		{[]string{"--weights", tiny, "--labels", one, img}, 1, "needs at least 2"},
		{[]string{"--weights", tiny, "--labels", good, "--prompts", "nonsense", img}, 1, "nonsense"},
		{[]string{"--weights", tiny, "--labels", good, filepath.Join(dir, "missing.png")}, 1, "missing.png"},
	} {
		code, _, errOut := run("", append([]string{"classify"}, test.args...)...)
		if code != test.code || !strings.Contains(errOut, test.want) {
			t.Errorf("test %d: got exit %d %q want exit %d and %q", i, code, errOut, test.code, test.want)
		}
	}
}
