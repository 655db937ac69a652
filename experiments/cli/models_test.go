package cli

import (
	"bytes"
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

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// TestEmbedOtherTowers runs embed on the ResNet and open_clip fixtures, in each
// layout: features against the goldens, and --pooled giving the tower's own
// pre-projection width (a ResNet's attention pool is 32x its stem width).
func TestEmbedOtherTowers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the fixture models")
	}
	tmp := t.TempDir()
	for i, test := range []struct {
		model, layout string
		pooled        []int
	}{
		{"clip-tiny-rn", "openai", []int{3, 512}},
		{"clip-tiny-rn", "open_clip", []int{3, 512}},
		{"openclip-tiny", "open_clip", []int{3, 96}},
	} {
		dir := testfix.Shared(t, "fixtures/"+test.model)
		out := filepath.Join(tmp, "out.npy")
		for _, pooled := range []bool{false, true} {
			args := []string{"embed", "--weights", filepath.Join(dir, test.layout), "--pixels", filepath.Join(dir, "golden/pixels.npy"), "-o", out}
			if pooled {
				args = append(args, "--pooled")
			}
			if code, _, stderr := run("", args...); code != 0 {
				t.Fatalf("test %d (%s/%s, pooled %v): exit %d: %s", i, test.model, test.layout, pooled, code, stderr)
			}
			got, err := npy.ReadFloat32(out)
			if err != nil {
				t.Fatal(err)
			}
			if pooled {
				if !slices.Equal(got.Shape, test.pooled) {
					t.Errorf("test %d (%s/%s): pooled shape %v want %v", i, test.model, test.layout, got.Shape, test.pooled)
				}
				continue
			}
			want, err := npy.ReadFloat32(filepath.Join(dir, "golden/image_features.npy"))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Shape, want.Shape) || embedMaxDiff(got.Data, want.Data) > 1e-4 {
				t.Errorf("test %d (%s/%s): features %v differ from the golden %v by %g", i, test.model, test.layout,
					got.Shape, want.Shape, embedMaxDiff(got.Data, want.Data))
			}
		}
	}
}

// TestFetchOpenCLIPModel fetches an open_clip repository from a local hub that serves
// the ResNet fixture's open_clip files under timm/resnet50_clip.openai (as the real
// repository is laid out, with timm's own config.json and model.safetensors beside
// them), by model name, and embeds with what it fetched.
func TestFetchOpenCLIPModel(t *testing.T) {
	if testing.Short() {
		t.Skip("serves and runs the fixture model")
	}
	fix := testfix.Shared(t, "fixtures/clip-tiny-rn")
	const repo = "timm/resnet50_clip.openai"
	files := map[string][]byte{
		"config.json":       []byte(`{"architecture": "resnet50_clip", "num_classes": 1024}`), // timm's, not CLIP's
		"model.safetensors": []byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"),
	}
	for _, name := range []string{"open_clip_config.json", "open_clip_model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(fix, "open_clip", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	var requested []string
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requested = append(requested, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/api/models/"+repo+"/revision/main" {
			var sib []map[string]any
			for name, b := range files {
				sum := sha256.Sum256(b)
				sib = append(sib, map[string]any{"rfilename": name, "size": len(b),
					"lfs": map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(b)}})
			}
			json.NewEncoder(w).Encode(map[string]any{"id": repo, "sha": "abc", "siblings": sib})
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/"+repo+"/resolve/main/")
		if b, found := files[name]; ok && found {
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
			return
		}
		http.NotFound(w, r)
	}))
	defer ts.Close()
	t.Setenv("HF_ENDPOINT", ts.URL)
	t.Setenv("GORGOCLIP_CACHE", t.TempDir())
	dir := filepath.Join(t.TempDir(), "rn")
	code, out, errOut := run("", "fetch", "model", "RN50", "--dir", dir)
	if code != 0 || strings.TrimSpace(out) != dir || !strings.Contains(errOut, repo) {
		t.Fatalf("fetch: exit %d stdout %q stderr %q", code, out, errOut)
	}
	for _, p := range requested {
		if strings.HasSuffix(p, "/config.json") || strings.HasSuffix(p, "/model.safetensors") && !strings.Contains(p, "open_clip") {
			t.Errorf("fetched timm's %s", p)
		}
	}
	emb := filepath.Join(t.TempDir(), "f.npy")
	if code, _, errOut := run("", "embed", "--weights", dir, "--pixels", filepath.Join(fix, "golden/pixels.npy"), "-o", emb); code != 0 {
		t.Fatalf("embed: exit %d: %s", code, errOut)
	}
	got, err := npy.ReadFloat32(emb)
	if err != nil {
		t.Fatal(err)
	}
	want, err := npy.ReadFloat32(filepath.Join(fix, "golden/image_features.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if d := embedMaxDiff(got.Data, want.Data); !slices.Equal(got.Shape, want.Shape) || d > 1e-4 {
		t.Errorf("features %v differ from the golden %v by %g", got.Shape, want.Shape, d)
	}
}
