package main

import (
	"io"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/notebooks/internal/fixture"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/page"
)

// TestNotebook runs the notebook in-process on the fixtures (a smaller subset than
// its defaults) and checks that the page was written with its figures.
func TestNotebook(t *testing.T) {
	weights, vocab, data := fixture.ForTest(t)
	dir := t.TempDir()
	var stdout strings.Builder
	o := options{weights: weights, vocab: vocab, data: data, page: dir, stdout: &stdout, stderr: io.Discard,
		limit: 200}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	page.Check(t, dir, stdout.String(), 2)
}
