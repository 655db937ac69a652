package download

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/loaders/prompts"
)

// notebookBody is a small notebook in the cell layout of OpenAI's
// Prompt_Engineering_for_ImageNet.ipynb, padded so that a dropped transfer can resume.
var notebookBody = []byte(`{
 "nbformat": 4, "nbformat_minor": 0,
 "metadata": {"kernelspec": {"name": "python3"}, "padding": "` + strings.Repeat("x", 4000) + `"},
 "cells": [
  {"cell_type": "markdown", "metadata": {}, "source": ["# Preparing ImageNet labels and prompts\n"]},
  {"cell_type": "code", "metadata": {}, "outputs": [],
   "source": ["imagenet_classes = [\"tench\", \"goldfish\", \"yellow lady's slipper\"]"]},
  {"cell_type": "code", "metadata": {}, "outputs": [],
   "source": ["imagenet_templates = [\n", "    'a bad photo of a {}.',\n", "    'itap of my {}.',\n", "]\n", "\n",
              "print(f\"{len(imagenet_classes)} classes, {len(imagenet_templates)} templates\")"]}
 ]
}
`)

func checkImageNetJSON(t *testing.T, path string) {
	t.Helper()
	s, err := prompts.ReadJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tench", "goldfish", "yellow lady's slipper"}; !slices.Equal(s.ClassNames(), want) {
		t.Errorf("classes %q want %q", s.ClassNames(), want)
	}
	if want := []string{"a bad photo of a {}.", "itap of my {}."}; !slices.Equal(s.Templates, want) {
		t.Errorf("templates %q want %q", s.Templates, want)
	}
}

func TestFetchImageNetTemplates(t *testing.T) {
	t.Parallel()
	srv := &fileServer{data: notebookBody, etag: `"nb1"`, dropAfter: 1000}
	ts := httptest.NewServer(srv)
	dir := filepath.Join(t.TempDir(), "templates")
	src := ts.URL + "/notebooks/Prompt_Engineering_for_ImageNet.ipynb"
	got, err := FetchImageNetTemplates(context.Background(), dir, SourceOptions{Options: fastOpts(), URL: src})
	if want := filepath.Join(dir, ImageNetTemplatesName); err != nil || got != want {
		t.Fatalf("got %q, %v want %q", got, err, want)
	}
	checkImageNetJSON(t, got)
	checkFile(t, filepath.Join(dir, ImageNetNotebookName), notebookBody)
	// The dropped first transfer was resumed, not restarted.
	reqs := srv.requests()
	if len(reqs) != 2 || reqs[1].Get("Range") != "bytes=1000-" {
		t.Errorf("got %d requests, last Range %q; want a resume from byte 1000", len(reqs), reqs[len(reqs)-1].Get("Range"))
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(matches) != 2 {
		t.Errorf("files left in %s: %q", dir, matches)
	}

	// A rerun without network uses the kept notebook and rewrites the JSON.
	ts.Close()
	os.Remove(got)
	if got, err = FetchImageNetTemplates(context.Background(), dir, SourceOptions{Options: fastOpts(), URL: src}); err != nil {
		t.Fatal(err)
	}
	checkImageNetJSON(t, got)

	// With the JSON extracted, the notebook is not needed: make experiment runs
	// offline with everything it needs.
	os.Remove(filepath.Join(dir, ImageNetNotebookName))
	n := len(srv.requests())
	if again, err := FetchImageNetTemplates(context.Background(), dir, SourceOptions{Options: fastOpts(), URL: src}); err != nil || again != got {
		t.Errorf("offline with the JSON and no notebook: got %q, %v", again, err)
	}
	if len(srv.requests()) != n {
		t.Error("the notebook was requested although the JSON was there")
	}

	if !strings.HasSuffix(DefaultImageNetNotebookURL, "/openai/CLIP/main/notebooks/Prompt_Engineering_for_ImageNet.ipynb") ||
		!strings.HasPrefix(DefaultImageNetNotebookURL, "https://raw.githubusercontent.com/") {
		t.Errorf("DefaultImageNetNotebookURL %s", DefaultImageNetNotebookURL)
	}
}

func TestFetchImageNetTemplatesDefaultDir(t *testing.T) {
	ts := httptest.NewServer(&fileServer{data: notebookBody})
	defer ts.Close()
	cache := t.TempDir()
	t.Setenv(CacheEnv, cache)
	got, err := FetchImageNetTemplates(context.Background(), "", SourceOptions{Options: fastOpts(), URL: ts.URL + "/nb.ipynb"})
	want, _ := ImageNetTemplatesPath()
	md, _ := TemplatesPath()
	if err != nil || got != want || want != filepath.Join(cache, "templates", "imagenet_templates.json") || filepath.Dir(md) != filepath.Dir(want) {
		t.Fatalf("got %q, %v; ImageNetTemplatesPath %q, TemplatesPath %q", got, err, want, md)
	}
	checkImageNetJSON(t, got)
}

func TestFetchImageNetTemplatesErrors(t *testing.T) {
	t.Parallel()
	// Offline: the error names the URL and where to put the notebook.
	ts := httptest.NewServer(&fileServer{data: notebookBody})
	u := ts.URL + "/nb.ipynb"
	ts.Close()
	dir := t.TempDir()
	_, err := FetchImageNetTemplates(context.Background(), dir, SourceOptions{Options: fastOpts(), URL: u})
	var off *OfflineError
	if !errors.As(err, &off) || !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), u) ||
		!strings.Contains(err.Error(), "save it as "+filepath.Join(dir, ImageNetNotebookName)) ||
		!strings.Contains(err.Error(), filepath.Join(dir, ImageNetTemplatesName)) {
		t.Errorf("offline: got %v", err)
	}

	// Not a notebook (an HTML error page saved by hand, say): no JSON is written.
	bad := httptest.NewServer(&fileServer{data: []byte("<html>rate limited</html>")})
	defer bad.Close()
	_, err = FetchImageNetTemplates(context.Background(), dir, SourceOptions{Options: fastOpts(), URL: bad.URL + "/nb.ipynb"})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ImageNetNotebookName)) || !strings.Contains(err.Error(), "an HTML page") {
		t.Errorf("bad notebook: got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ImageNetTemplatesName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("JSON written from a bad notebook")
	}

	// A 404 is not an offline error.
	missing := httptest.NewServer(&fileServer{status: 404})
	defer missing.Close()
	_, err = FetchImageNetTemplates(context.Background(), t.TempDir(), SourceOptions{Options: fastOpts(), URL: missing.URL + "/nb.ipynb"})
	if err == nil || errors.Is(err, ErrOffline) {
		t.Errorf("404: got %v", err)
	}
}
