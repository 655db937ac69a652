package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/prompts"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

// fakeFetchServer is a tiny hub (one repo) plus a static file tree.
func fakeFetchServer(t *testing.T, files map[string][]byte) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var auth []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/api/models/org/clip/revision/main" {
			var sib []map[string]any
			for _, name := range []string{"config.json", "model.safetensors", "vocab.json", "merges.txt"} {
				b := files["/org/clip/resolve/main/"+name]
				sum := sha256.Sum256(b)
				s := map[string]any{"rfilename": name, "size": len(b)}
				if name == "model.safetensors" {
					s["lfs"] = map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(b)}
				}
				sib = append(sib, s)
			}
			json.NewEncoder(w).Encode(map[string]any{"id": "org/clip", "sha": "abc", "siblings": sib})
			return
		}
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(ts.Close)
	return ts, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), auth...) }
}

func TestFetchModelCommand(t *testing.T) {
	files := map[string][]byte{
		"/org/clip/resolve/main/config.json":       []byte(`{"projection_dim":512}`),
		"/org/clip/resolve/main/model.safetensors": append([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"), bytes.Repeat([]byte("w"), 4096)...),
		"/org/clip/resolve/main/vocab.json":        []byte(`{}`),
		"/org/clip/resolve/main/merges.txt":        []byte("#version: 0.2\n"),
	}
	ts, auth := fakeFetchServer(t, files)
	t.Setenv("HF_ENDPOINT", ts.URL)
	t.Setenv("HF_TOKEN", "tok")
	t.Setenv("GORGOCLIP_CACHE", t.TempDir())
	dir := filepath.Join(t.TempDir(), "weights")
	code, out, errOut := run("", "fetch", "model", "org/clip", "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.TrimSpace(out) != dir {
		t.Errorf("stdout %q, want the directory %q", out, dir)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "model.safetensors")); !bytes.Equal(b, files["/org/clip/resolve/main/model.safetensors"]) {
		t.Errorf("weights not downloaded")
	}
	if !strings.Contains(errOut, "fetching model.safetensors") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	for i, a := range auth() {
		if a != "Bearer tok" {
			t.Errorf("request %d: Authorization %q", i, a)
		}
	}
	// Default directory under GORGOCLIP_CACHE.
	code, out, errOut = run("", "fetch", "model", "--revision", "main", "org/clip")
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), filepath.Join("models", "org--clip")) {
		t.Errorf("default dir: exit %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestFetchDatasetAndTemplatesCommands(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range []string{"imagenette2-320/train/n01440764/a.JPEG", "imagenette2-320/val/n01440764/b.JPEG"} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
		tw.Write([]byte("x"))
	}
	tw.Close()
	zw.Close()
	ts, _ := fakeFetchServer(t, map[string][]byte{
		"/imagenette2-320.tgz": buf.Bytes(),
		"/prompts.md":          []byte("## CIFAR10\n\n```bash\nclasses = ['airplane']\ntemplates = ['a photo of a {}.']\n```\n"),
		"/imagenet.ipynb":      fakeImageNetNotebook,
	})
	cache := t.TempDir()
	t.Setenv("GORGOCLIP_CACHE", cache)
	dir := t.TempDir()
	code, out, errOut := run("", "fetch", "dataset", "imagenette-320", "--dir", dir, "--url", ts.URL+"/imagenette2-320.tgz")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := strings.TrimSpace(out); got != filepath.Join(dir, "imagenette2-320") {
		t.Errorf("stdout %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "imagenette2-320", "val", "n01440764", "b.JPEG")); err != nil {
		t.Errorf("dataset not extracted: %v", err)
	}

	// prompts.md and the JSON extracted from the ImageNet notebook, one path a line.
	code, out, errOut = run("", "fetch", "templates", "--dir", dir, "--url", ts.URL+"/prompts.md", "--notebook-url", ts.URL+"/imagenet.ipynb")
	if want := filepath.Join(dir, "prompts.md") + "\n" + filepath.Join(dir, "imagenet_templates.json") + "\n"; code != 0 || out != want {
		t.Fatalf("templates: exit %d stdout %q stderr %q, want stdout %q", code, out, errOut, want)
	}
	if s, err := prompts.ReadJSON(filepath.Join(dir, "imagenet_templates.json")); err != nil ||
		!slices.Equal(s.ClassNames(), []string{"tench", "goldfish"}) || !slices.Equal(s.Templates, []string{"a bad photo of a {}.", "itap of my {}."}) {
		t.Errorf("extracted JSON: %q %q, %v", s.ClassNames(), s.Templates, err)
	}
	code, out, errOut = run("", "fetch", "templates", "--dir", t.TempDir(), "--url", ts.URL+"/prompts.md", "--notebook-url", "")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "prompts.md\n") {
		t.Errorf("--notebook-url \"\": exit %d stdout %q stderr %q, want prompts.md alone", code, out, errOut)
	}

	// OpenAI's vocabulary into the cache, where tokenize then finds it.
	vocab, err := os.ReadFile(testfix.Shared(t, "clip/"+tokenizer.OpenAIVocabFile))
	if err != nil {
		t.Fatal(err)
	}
	vs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(vocab) }))
	defer vs.Close()
	t.Setenv(tokenizer.VocabEnv, "")
	if code, _, errOut := run(`{"text":"a photo"}`+"\n", "tokenize"); code == 0 || !strings.Contains(errOut, "gorgoclip fetch vocab") {
		t.Errorf("tokenize before fetch vocab: exit %d, stderr %q", code, errOut)
	}
	code, out, errOut = run("", "fetch", "vocab", "--url", vs.URL+"/bpe.gz")
	if want := filepath.Join(cache, "vocab", tokenizer.OpenAIVocabFile) + "\n"; code != 0 || out != want {
		t.Fatalf("vocab: exit %d stdout %q stderr %q, want stdout %q", code, out, errOut, want)
	}
	if code, out, errOut := run(`{"text":"a photo"}`+"\n", "tokenize"); code != 0 || !strings.Contains(out, `"ids": [49406, 320, 1125, 49407]`) {
		t.Errorf("tokenize after fetch vocab: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// imagenet80 needs the cached JSON, which a fetch without --dir writes.
	_, err = experiments.ParsePromptSet("imagenet80")
	if err == nil || !strings.Contains(err.Error(), "run gorgoclip fetch templates") || !strings.Contains(err.Error(), filepath.Join(cache, "templates", "imagenet_templates.json")) {
		t.Errorf("imagenet80 before fetching: got %v", err)
	}
	code, out, errOut = run("", "fetch", "templates", "--url", ts.URL+"/prompts.md", "--notebook-url", ts.URL+"/imagenet.ipynb")
	if want := filepath.Join(cache, "templates", "imagenet_templates.json") + "\n"; code != 0 || !strings.HasSuffix(out, want) {
		t.Fatalf("templates to the cache: exit %d stdout %q stderr %q", code, out, errOut)
	}
	set, err := experiments.ParsePromptSet("imagenet80")
	if err != nil || set.Name != "ImageNet ensemble (2 templates)" || !slices.Equal(set.Templates, []string{"a bad photo of a {}.", "itap of my {}."}) {
		t.Errorf("imagenet80: got %+v, %v", set, err)
	}
}

// fakeImageNetNotebook has the cell layout of OpenAI's Prompt_Engineering_for_ImageNet.ipynb.
var fakeImageNetNotebook = []byte(`{"nbformat": 4, "nbformat_minor": 0, "metadata": {}, "cells": [
 {"cell_type": "markdown", "metadata": {}, "source": ["# Preparing ImageNet labels and prompts\n"]},
 {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["imagenet_classes = [\"tench\", \"goldfish\"]"]},
 {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["imagenet_templates = [\n", "    'a bad photo of a {}.',\n", "    'itap of my {}.',\n", "]\n", "\n", "print(len(imagenet_templates))"]}
]}`)

func TestFetchUsage(t *testing.T) {
	for i, test := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fetch", "--help"}, 0, "gorgoclip fetch dataset imagenette"},
		{[]string{"fetch", "model", "--help"}, 0, "--revision"},
		{[]string{"fetch", "dataset", "-h"}, 0, "--keep-archive"},
		{[]string{"fetch", "templates", "--help"}, 0, "prompts.md"},
		{[]string{"fetch", "templates", "--help"}, 0, "--notebook-url"},
		{[]string{"fetch", "--help"}, 0, "imagenet_templates.json"},
		{[]string{"fetch"}, 2, "want model, dataset, templates or vocab"},
		{[]string{"fetch", "weights"}, 2, `unknown kind "weights"`},
		{[]string{"fetch", "model"}, 2, "want exactly one REPO"},
		{[]string{"fetch", "model", "a/b", "c/d"}, 2, "want exactly one REPO"},
		{[]string{"fetch", "dataset", "cifar10"}, 2, `unknown dataset "cifar10"`},
		{[]string{"fetch", "templates", "extra"}, 2, "unexpected arguments"},
		{[]string{"fetch", "model", "--bogus", "a/b"}, 2, "bogus"},
	} {
		code, _, errOut := run("", test.args...)
		if code != test.code || !strings.Contains(errOut, test.want) {
			t.Errorf("test %d (%v): got exit %d stderr %q, want exit %d and %q", i, test.args, code, errOut, test.code, test.want)
		}
	}
}

func TestFetchOfflineSaysWhatToDo(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	endpoint := ts.URL
	ts.Close()
	t.Setenv("HF_ENDPOINT", endpoint)
	cache := t.TempDir()
	t.Setenv("GORGOCLIP_CACHE", cache)
	code, _, errOut := run("", "fetch", "model", "openai/clip-vit-base-patch32")
	want := filepath.Join(cache, "models", "openai--clip-vit-base-patch32")
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "model.safetensors") {
		t.Errorf("offline: exit %d stderr %q, want instructions naming %s", code, errOut, want)
	}
}

// TestFetchTemplatesOffline reruns fetch templates with no network once prompts.md
// and imagenet_templates.json are there, as make experiment does: the notebook the
// JSON came from is not needed.
func TestFetchTemplatesOffline(t *testing.T) {
	ts, _ := fakeFetchServer(t, map[string][]byte{"/prompts.md": []byte("## CIFAR10\n\n```bash\nclasses = ['airplane']\ntemplates = ['a photo of a {}.']\n```\n"), "/imagenet.ipynb": fakeImageNetNotebook})
	dir := t.TempDir()
	args := []string{"fetch", "templates", "--dir", dir, "--url", ts.URL + "/prompts.md", "--notebook-url", ts.URL + "/imagenet.ipynb"}
	if code, _, errOut := run("", args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ts.Close()
	if err := os.Remove(filepath.Join(dir, "Prompt_Engineering_for_ImageNet.ipynb")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("", args...)
	if want := filepath.Join(dir, "prompts.md") + "\n" + filepath.Join(dir, "imagenet_templates.json") + "\n"; code != 0 || out != want {
		t.Errorf("offline: exit %d stdout %q stderr %q, want %q", code, out, errOut, want)
	}
}
