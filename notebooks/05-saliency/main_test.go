package main

import (
	"io"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/fixture"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/page"
)

// TestNotebook runs the notebook in-process on the fixtures and checks that the page
// was written with its two figures.
func TestNotebook(t *testing.T) {
	weights, vocab, _ := fixture.ForTest(t)
	dir := t.TempDir()
	var stdout strings.Builder
	o := options{weights: weights, vocab: vocab, resnet: testfix.Shared(t, "fixtures/clip-tiny-rn/openai"),
		image: testfix.Shared(t, "fixtures/preprocess/images/dog.jpg"), labels: "dog,bicycle,car,tree",
		page: dir, stdout: &stdout, stderr: io.Discard}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	page.Check(t, dir, stdout.String(), 2)
}
