package cli

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

func TestExplainWritesFigures(t *testing.T) {
	tiny := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	rn := testfix.Shared(t, "fixtures/clip-tiny-rn/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	imgs := testfix.Shared(t, "fixtures/preprocess/images")
	tmp := t.TempDir()
	labels := filepath.Join(tmp, "labels.txt")
	if err := os.WriteFile(labels, []byte("dog\nbicycle\ncar\ntree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{tiny, rn} {
		out := filepath.Join(tmp, filepath.Base(filepath.Dir(w)))
		code, stdout, stderr := run("", "explain", "--weights", w, "--labels", labels, "--vocab", vocab, "--top", "2",
			"--out", out, filepath.Join(imgs, "dog.jpg"), filepath.Join(imgs, "video-001.png"))
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", w, code, stderr)
		}
		if n := strings.Count(stdout, "%"); n != 4 {
			t.Errorf("%s: stdout names %d probabilities, want 2 labels for 2 images:\n%s", w, n, stdout)
		}
		for _, name := range []string{"dog", "video-001"} {
			f, err := os.Open(filepath.Join(out, name+".saliency.png"))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(f)
			f.Close()
			if err != nil || cfg.Width < 600 || cfg.Height < 400 {
				t.Errorf("%s.saliency.png: %dx%d, %v", name, cfg.Width, cfg.Height, err)
			}
			if st, err := os.Stat(filepath.Join(out, name+".saliency.svg")); err != nil || st.Size() == 0 {
				t.Errorf("%s.saliency.svg: %v", name, err)
			}
		}
	}
	dup := filepath.Join(tmp, "dup.txt") // labels read as classify reads them: blank lines skipped, duplicates refused
	if err := os.WriteFile(dup, []byte("dog\n\ncat\ndog\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(imgs, "dog.jpg")
	for i, test := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--labels", labels, img}, 2, "--weights"},
		{[]string{"--weights", tiny, img}, 2, "--labels"},
		{[]string{"--weights", tiny, "--labels", labels}, 2, "image"},
		{[]string{"--weights", tiny, "--labels", labels, "--top", "0", img}, 2, "--top"},
		{[]string{"--weights", tiny, "--labels", dup, "--vocab", vocab, img}, 1, `dup.txt:4: label "dog" is already on line 1`},
		{[]string{"--weights", tiny, "--labels", labels, "--vocab", vocab, "--out", tmp, filepath.Join(tmp, "nope.jpg")}, 1, "nope.jpg"},
	} {
		code, _, stderr := run("", append([]string{"explain"}, test.args...)...)
		if code != test.code || !strings.Contains(stderr, test.msg) {
			t.Errorf("test %d: got exit %d %q, want exit %d mentioning %q", i, code, stderr, test.code, test.msg)
		}
	}
}
