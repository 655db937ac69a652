package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// TestMainJob runs scripts/experiment.sh — what make experiment runs — against a local
// mirror of its three sources: the Hugging Face hub (serving the tiny fixture CLIP as
// openai/clip-vit-base-patch32), fast.ai (a small Imagenette-shaped archive made here)
// and GitHub (prompts.md and an ImageNet notebook made from the fixtures). It checks
// the script fetches, extracts, runs zero-shot with its four prompt sets and the probes,
// and writes results.json, report.md and the figures.
func TestMainJob(t *testing.T) {
	bin := krBinary(t)
	hf := testfix.Shared(t, "fixtures/clip-tiny-a/hf")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	promptsMD := testfix.Shared(t, "clip/prompts.md")
	templates := testfix.Shared(t, "fixtures/tokenizer/imagenet_templates.json")

	files := map[string][]byte{}
	var siblings []map[string]any
	for _, name := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(hf, name))
		if err != nil {
			t.Fatal(err)
		}
		files["/openai/clip-vit-base-patch32/resolve/main/"+name] = b
		sum := sha256.Sum256(b)
		siblings = append(siblings, map[string]any{"rfilename": name, "size": len(b),
			"lfs": map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(b)}})
	}
	listing, _ := json.Marshal(map[string]any{"id": "openai/clip-vit-base-patch32", "sha": "0123", "siblings": siblings})
	files["/api/models/openai/clip-vit-base-patch32/revision/main"] = listing
	files["/imagenette2-160.tgz"] = mjImagenette(t, 8, 4)
	md, err := os.ReadFile(promptsMD)
	if err != nil {
		t.Fatal(err)
	}
	files["/prompts.md"] = md
	files["/nb.ipynb"] = mjNotebook(t, templates)
	if files["/bpe.gz"], err = os.ReadFile(vocab); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()

	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	work := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "experiment.sh"))
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GORGOCLIP="+bin, "HF_ENDPOINT="+srv.URL, "GORGOCLIP_CACHE="+filepath.Join(work, "cache"),
		"GORGOCLIP_VOCAB=", "VOCAB_URL="+srv.URL+"/bpe.gz", "IMAGENETTE_URL="+srv.URL+"/imagenette2-160.tgz", "TEMPLATES_URL="+srv.URL+"/prompts.md",
		"NOTEBOOK_URL="+srv.URL+"/nb.ipynb", "DATA="+filepath.Join(work, "data"), "RESULTS="+filepath.Join(work, "results"),
		"SEEDS=2", "SHOTS=1,2,4,8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("experiment.sh: %v\n%s", err, out)
	}
	var cmp results.Comparison
	if err := results.Load(filepath.Join(work, "results", "results.json"), &cmp); err != nil {
		t.Fatal(err)
	}
	if len(cmp.ZeroShot) != 4 || len(cmp.ClassNames) != 10 || cmp.ClassNames[0] != "tench" {
		t.Fatalf("results: %d zero-shot sets, classes %q", len(cmp.ZeroShot), cmp.ClassNames)
	}
	if !strings.Contains(cmp.ZeroShot[3].Prompts, "80 templates") {
		t.Errorf("fourth prompt set %q, want the 80-template ensemble", cmp.ZeroShot[3].Prompts)
	}
	if full := cmp.Probes[len(cmp.Probes)-1]; full.Shots != 0 || full.Metrics["lp_acc1"] < 0.5 {
		t.Errorf("full-data probe: %+v (the classes differ in colour: it should separate them)", full)
	}
	for _, f := range []string{"report.md", "accuracy_vs_shots.png", "similarity.png", "zeroshot_templates.png"} {
		if st, err := os.Stat(filepath.Join(work, "results", f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// mjImagenette builds imagenette2-160.tgz with train/ and val/ folders of the ten
// Imagenette WordNet ids, each class a different colour.
func mjImagenette(t *testing.T, train, val int) []byte {
	wnids := []string{"n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
		"n03394916", "n03417042", "n03425413", "n03445777", "n03888257"}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, split := range []struct {
		name string
		n    int
	}{{"train", train}, {"val", val}} {
		for c, w := range wnids {
			for i := 0; i < split.n; i++ {
				img := image.NewRGBA(image.Rect(0, 0, 120, 90))
				for p := 0; p < 120*90; p++ {
					img.Set(p%120, p/120, color.RGBA{uint8(c * 25), uint8(255 - c*20 + (p+i)%13), uint8((c * 70) % 256), 255})
				}
				var jb bytes.Buffer
				if err := jpeg.Encode(&jb, img, &jpeg.Options{Quality: 90}); err != nil {
					t.Fatal(err)
				}
				name := fmt.Sprintf("imagenette2-160/%s/%s/%s_%d.JPEG", split.name, w, w, i)
				if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(jb.Len())}); err != nil {
					t.Fatal(err)
				}
				tw.Write(jb.Bytes())
			}
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// mjNotebook wraps the fixture's ImageNet classes and templates in a notebook laid out
// as OpenAI's Prompt_Engineering_for_ImageNet.ipynb.
func mjNotebook(t *testing.T, path string) []byte {
	var lists struct{ Templates, Classes []string }
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &lists); err != nil {
		t.Fatal(err)
	}
	classes, _ := json.Marshal(lists.Classes)
	src := []string{"imagenet_templates = [\n"}
	for _, tpl := range lists.Templates {
		q, _ := json.Marshal(tpl)
		src = append(src, "    "+string(q)+",\n")
	}
	src = append(src, "]\n")
	nb, _ := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 0, "metadata": map[string]any{},
		"cells": []map[string]any{
			{"cell_type": "code", "metadata": map[string]any{}, "outputs": []any{}, "source": []string{"imagenet_classes = " + string(classes) + "\n"}},
			{"cell_type": "code", "metadata": map[string]any{}, "outputs": []any{}, "source": src},
		}})
	return nb
}
