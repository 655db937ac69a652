package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/page"
)

// TestNotebook runs the notebook in-process on the fixtures (a smaller subset than
// its defaults) and checks that the page was written with its figures.
func TestNotebook(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the notebook end to end")
	}
	dir := t.TempDir()
	var stdout strings.Builder
	o := options{
		weights:    testfix.Shared(t, "fixtures/clip-tiny-a/openai"),
		vocab:      testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz"),
		data:       "fashion-mnist:" + testfix.FashionMNIST(t),
		page:       dir,
		trainLimit: 300, testLimit: 200, shots: []int{1, 4}, seeds: 2, out: filepath.Join(dir, "out"),
		stdout: &stdout, stderr: io.Discard,
	}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	figs, err := page.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != 1 {
		t.Errorf("unexpected figures: got %q want %d", figs, 1)
	}
	if !strings.Contains(stdout.String(), "== ") {
		t.Errorf("nothing printed to stdout")
	}
}
