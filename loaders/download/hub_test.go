package download

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub serves /api/models/{repo}/revision/{rev} and /{repo}/resolve/{rev}/{file}.
type fakeHub struct {
	repo   string
	files  map[string][]byte
	lfs    map[string]bool // files listed with an lfs block
	badSHA map[string]bool // files whose listed sha256 is wrong

	mu    sync.Mutex
	paths []string
	auth  []string
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.paths = append(h.paths, r.URL.Path)
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.mu.Unlock()
	if r.URL.Path == "/api/models/"+h.repo+"/revision/main" {
		if r.URL.Query().Get("blobs") != "true" {
			http.Error(w, "want blobs", 400)
			return
		}
		var sib []map[string]any
		for name, b := range h.files {
			s := map[string]any{"rfilename": name, "size": len(b)}
			if h.lfs[name] {
				sum := sha(b)
				if h.badSHA[name] {
					sum = sha([]byte("tampered"))
				}
				s["lfs"] = map[string]any{"sha256": sum, "size": len(b), "pointerSize": 134}
			}
			sib = append(sib, s)
		}
		sib = append(sib, map[string]any{"rfilename": "README.md", "size": 3})
		json.NewEncoder(w).Encode(map[string]any{"id": h.repo, "sha": "0123abcd", "siblings": sib})
		return
	}
	if name, ok := strings.CutPrefix(r.URL.Path, "/"+h.repo+"/resolve/main/"); ok {
		if b, ok := h.files[name]; ok {
			w.Header().Set("ETag", `"`+sha(b)[:16]+`"`)
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(b)))
			return
		}
	}
	http.NotFound(w, r)
}

func (h *fakeHub) requested() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.paths...)
}

func newHub() *fakeHub {
	return &fakeHub{
		repo: "openai/clip-tiny",
		files: map[string][]byte{
			"config.json":       []byte(`{"model_type":"clip"}`),
			"model.safetensors": append([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"), testData(70_000)...),
			"pytorch_model.bin": append([]byte("PK\x03\x04"), testData(80_000)...),
			"vocab.json":        []byte(`{"a":0}`),
			"merges.txt":        []byte("#version: 0.2\na b\n"),
		},
		lfs: map[string]bool{"model.safetensors": true, "pytorch_model.bin": true},
	}
}

func TestFetchModel(t *testing.T) {
	hub := newHub()
	ts := httptest.NewServer(hub)
	defer ts.Close()
	t.Setenv("HF_ENDPOINT", ts.URL+"/")
	t.Setenv("HF_TOKEN", "hf_secret")
	t.Setenv(CacheEnv, t.TempDir())
	dir, err := FetchModel(context.Background(), hub.repo, HubOptions{Options: fastOpts()})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ModelDir(hub.repo, "main")
	if dir != want || !strings.HasSuffix(dir, filepath.Join("models", "openai--clip-tiny")) {
		t.Errorf("dir: got %s want %s", dir, want)
	}
	for _, name := range []string{"config.json", "model.safetensors", "vocab.json", "merges.txt"} {
		checkFile(t, filepath.Join(dir, name), hub.files[name])
	}
	if _, err := os.Stat(filepath.Join(dir, "pytorch_model.bin")); err == nil {
		t.Errorf("pytorch_model.bin fetched although model.safetensors exists")
	}
	for _, p := range hub.requested() {
		if strings.HasSuffix(p, "pytorch_model.bin") || strings.HasSuffix(p, "README.md") {
			t.Errorf("unneeded request %s", p)
		}
	}
	for i, a := range hub.auth {
		if a != "Bearer hf_secret" {
			t.Errorf("request %d (%s): Authorization %q, want the HF_TOKEN bearer", i, hub.paths[i], a)
		}
	}
	var src map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, ".gorgoclip-source.json"))
	if json.Unmarshal(b, &src) != nil || src["sha"] != "0123abcd" {
		t.Errorf("source record: %s", b)
	}

	// Second run: only the listing is fetched; complete files are skipped.
	n := len(hub.requested())
	if _, err := FetchModel(context.Background(), hub.repo, HubOptions{Options: fastOpts()}); err != nil {
		t.Fatal(err)
	}
	if got := hub.requested()[n:]; len(got) != 1 || !strings.HasPrefix(got[0], "/api/models/") {
		t.Errorf("second fetch requested %v, want only the listing", got)
	}
}

func TestFetchModelPrefersAndFallsBack(t *testing.T) {
	t.Parallel()
	hub := newHub()
	delete(hub.files, "model.safetensors")
	ts := httptest.NewServer(hub)
	defer ts.Close()
	dir := t.TempDir()
	got, err := FetchModel(context.Background(), hub.repo, HubOptions{Options: fastOpts(), Endpoint: ts.URL, Dir: dir, Token: "-"})
	if err != nil || got != dir {
		t.Fatalf("got %q, %v", got, err)
	}
	checkFile(t, filepath.Join(dir, "pytorch_model.bin"), hub.files["pytorch_model.bin"])
}

func TestFetchModelBadHubSHA(t *testing.T) {
	t.Parallel()
	hub := newHub()
	hub.badSHA = map[string]bool{"model.safetensors": true}
	ts := httptest.NewServer(hub)
	defer ts.Close()
	dir := t.TempDir()
	_, err := FetchModel(context.Background(), hub.repo, HubOptions{Options: fastOpts(), Endpoint: ts.URL, Dir: dir, Token: "-"})
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch for model.safetensors") {
		t.Fatalf("got %v, want a sha256 mismatch", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		t.Errorf("weights with a wrong digest were kept")
	}
}

func TestFetchModelErrors(t *testing.T) {
	t.Parallel()
	hub := newHub()
	ts := httptest.NewServer(hub)
	defer ts.Close()
	for i, test := range []struct{ repo, want string }{
		{"../../etc", "not a hub repository name"},
		{"a/b/c", "not a hub repository name"},
		{"openai/missing", "404"},
	} {
		_, err := FetchModel(context.Background(), test.repo, HubOptions{Options: fastOpts(), Endpoint: ts.URL, Dir: t.TempDir(), Token: "-"})
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.HasPrefix(err.Error(), "loaders: download:") {
			t.Errorf("test %d: got %v, want %q", i, err, test.want)
		}
	}
	hub2 := newHub()
	delete(hub2.files, "model.safetensors")
	delete(hub2.files, "pytorch_model.bin")
	ts2 := httptest.NewServer(hub2)
	defer ts2.Close()
	_, err := FetchModel(context.Background(), hub2.repo, HubOptions{Options: fastOpts(), Endpoint: ts2.URL, Dir: t.TempDir(), Token: "-"})
	if err == nil || !strings.Contains(err.Error(), "has config.json but none of open_clip_model.safetensors, open_clip_pytorch_model.bin, model.safetensors, pytorch_model.bin") {
		t.Errorf("no weights: got %v", err)
	}
}

func TestFetchModelOffline(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.NotFoundHandler())
	endpoint := ts.URL
	ts.Close()
	dir := filepath.Join(t.TempDir(), "m")
	_, err := FetchModel(context.Background(), "openai/clip-vit-base-patch32", HubOptions{Endpoint: endpoint, Dir: dir, Token: "-"})
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "model.safetensors") {
		t.Fatalf("got %v, want an offline error naming the files and %s", err, dir)
	}
	// Files copied by hand are checked against what the repository holds.
	os.MkdirAll(dir, 0o755)
	write := func(name, text string) { os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644) }
	write("config.json", "{}")
	write("model.safetensors", "x")
	fetch := func() (string, error) {
		return FetchModel(context.Background(), "openai/clip-vit-base-patch32", HubOptions{Endpoint: endpoint, Dir: dir, Token: "-"})
	}
	if _, err := fetch(); err == nil || !strings.Contains(err.Error(), "lacks vocab.json, merges.txt") {
		t.Errorf("offline without the tokenizer files: got %v", err)
	}
	write("vocab.json", "{}")
	write("merges.txt", "#version: 0.2\n")
	// The 64-px tiny fixture model is not ViT-B/32.
	write("config.json", `{"vision_config": {"patch_size": 16, "image_size": 64, "hidden_size": 128}}`)
	if _, err := fetch(); err == nil || !strings.Contains(err.Error(), "vision_config.patch_size 16, but openai/clip-vit-base-patch32 has 32") {
		t.Errorf("offline with another model's config: got %v", err)
	}
	write("config.json", `{"vision_config": {"patch_size": 32, "image_size": 224, "hidden_size": 768}}`)
	if got, err := fetch(); err != nil || got != dir {
		t.Errorf("offline with the files present: got %q, %v", got, err)
	}
}

// TestFetchModelOfflineRecord checks a fetched directory against the hub's listing
// that FetchModel recorded, when the hub is unreachable.
func TestFetchModelOfflineRecord(t *testing.T) {
	t.Parallel()
	hub := newHub()
	ts := httptest.NewServer(hub)
	dir := t.TempDir()
	if _, err := FetchModel(context.Background(), hub.repo, HubOptions{Options: fastOpts(), Endpoint: ts.URL, Dir: dir, Token: "-"}); err != nil {
		t.Fatal(err)
	}
	endpoint := ts.URL
	ts.Close()
	offline := func(repo string) error {
		_, err := FetchModel(context.Background(), repo, HubOptions{Endpoint: endpoint, Dir: dir, Token: "-"})
		return err
	}
	if err := offline(hub.repo); err != nil {
		t.Errorf("offline after a fetch: %v", err)
	}
	if err := offline("openai/clip-vit-base-patch32"); err == nil || !strings.Contains(err.Error(), "holds openai/clip-tiny at main, not openai/clip-vit-base-patch32") {
		t.Errorf("another repository's directory: got %v", err)
	}
	weights := filepath.Join(dir, "model.safetensors")
	b, _ := os.ReadFile(weights)
	orig := slices.Clone(b)
	b[100] ^= 1
	os.WriteFile(weights, b, 0o644)
	if err := offline(hub.repo); err == nil || !strings.Contains(err.Error(), weights) || !strings.Contains(err.Error(), "sha256 ") {
		t.Errorf("altered weights: got %v", err)
	}
	os.Remove(filepath.Join(dir, "vocab.json"))
	os.WriteFile(weights, orig, 0o644)
	if err := offline(hub.repo); err == nil || !strings.Contains(err.Error(), "vocab.json is missing") {
		t.Errorf("missing vocab.json: got %v", err)
	}
}

func TestRepoShape(t *testing.T) {
	for i, test := range []struct {
		repo string
		want vitShape
	}{
		{"openai/clip-vit-base-patch32", vitShape{32, 224, 768}},
		{"openai/clip-vit-base-patch16", vitShape{16, 224, 768}},
		{"openai/clip-vit-large-patch14-336", vitShape{14, 336, 1024}},
		{"laion/CLIP-ViT-H-14-laion2B-s32B-b79K", vitShape{14, 0, 1280}},
		{"laion/CLIP-ViT-B-32-laion2B-s34B-b79K", vitShape{32, 0, 768}},
		{"org/clip", vitShape{}},
	} {
		if got := repoShape(test.repo); got != test.want {
			t.Errorf("test %d (%s): got %+v want %+v", i, test.repo, got, test.want)
		}
	}
}

func TestFetchImagenette(t *testing.T) {
	t.Parallel()
	archive := tgz(t,
		entry{name: "imagenette2-160/", typ: tar.TypeDir},
		entry{name: "imagenette2-160/train/n01440764/a.JPEG", typ: tar.TypeReg, body: "a"},
		entry{name: "imagenette2-160/val/n03888257/b.JPEG", typ: tar.TypeReg, body: "b"},
	)
	srv := &fileServer{data: archive}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := t.TempDir()
	opts := SourceOptions{Options: fastOpts(), URL: ts.URL + "/imagenette2-160.tgz", Expect: Expect{SHA256: sha(archive)}}
	dir, err := FetchImagenette(context.Background(), "imagenette-160", dest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(dest, "imagenette2-160") {
		t.Errorf("dir %s", dir)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "val", "n03888257", "b.JPEG")); err != nil || string(b) != "b" {
		t.Errorf("val image: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "imagenette2-160.tgz")); err == nil {
		t.Errorf("archive kept without KeepArchive")
	}
	if _, err := FetchImagenette(context.Background(), "imagenette-160", dest, opts); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("completed dataset fetched again: %d requests", n)
	}
	if _, err := FetchImagenette(context.Background(), "imagewoof", dest, opts); err == nil {
		t.Errorf("unknown variant accepted")
	}
	if u, _ := ImagenetteURL("imagenette-320"); u != "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz" {
		t.Errorf("ImagenetteURL: %s", u)
	}
}

func TestFetchImagenetteOffline(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.NotFoundHandler())
	u := ts.URL + "/imagenette2-320.tgz"
	ts.Close()
	dest := t.TempDir()
	_, err := FetchImagenette(context.Background(), "imagenette2-320", dest, SourceOptions{URL: u})
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), filepath.Join(dest, "imagenette2-320.tgz")) || !strings.Contains(err.Error(), u) {
		t.Fatalf("got %v", err)
	}
}

func TestFetchTemplates(t *testing.T) {
	t.Parallel()
	body := []byte("# Prompts\n\n## CIFAR10\n\n```bash\nclasses = [\n    'airplane',\n]\n\ntemplates = [\n    'a photo of a {}.',\n]\n```\n")
	ts := httptest.NewServer(&fileServer{data: body})
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "t", "prompts.md")
	got, err := FetchTemplates(context.Background(), dest, SourceOptions{Options: fastOpts(), URL: ts.URL + "/prompts.md"})
	if err != nil || got != dest {
		t.Fatalf("got %q, %v", got, err)
	}
	checkFile(t, dest, body)
	if !strings.HasSuffix(DefaultTemplatesURL, "/openai/CLIP/main/data/prompts.md") {
		t.Errorf("DefaultTemplatesURL %s", DefaultTemplatesURL)
	}
}

// TestPlanModelLayouts checks which files each kind of repository gets: open_clip's
// files win over the timm-format config.json and model.safetensors a repository
// published for both holds.
func TestPlanModelLayouts(t *testing.T) {
	t.Parallel()
	listing := func(names ...string) *HubModel {
		m := &HubModel{ID: "x/y"}
		for _, n := range names {
			m.Siblings = append(m.Siblings, HubFile{Name: n})
		}
		return m
	}
	for i, test := range []struct {
		files []string
		want  []string
	}{
		{[]string{"config.json", "model.safetensors", "open_clip_config.json", "open_clip_model.safetensors", "open_clip_pytorch_model.bin", "vocab.json", "merges.txt", "tokenizer.json"},
			[]string{"open_clip_config.json", "open_clip_model.safetensors", "vocab.json", "merges.txt"}},
		{[]string{"open_clip_config.json", "open_clip_pytorch_model.bin"}, []string{"open_clip_config.json", "open_clip_pytorch_model.bin"}},
		{[]string{"config.json", "pytorch_model.bin", "model.safetensors", "vocab.json"}, []string{"config.json", "model.safetensors", "vocab.json"}},
		{[]string{"open_clip_config.json", "config.json", "model.safetensors"}, []string{"config.json", "model.safetensors"}},
	} {
		plan, err := PlanModel(listing(test.files...))
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		var got []string
		for _, f := range plan {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, test.want) {
			t.Errorf("test %d: got %v want %v", i, got, test.want)
		}
	}
	if _, err := PlanModel(listing("README.md", "model.safetensors")); err == nil || !strings.Contains(err.Error(), "open_clip_config.json or config.json") {
		t.Errorf("no config: got %v", err)
	}
}

// TestResolveModel checks model names in both spellings, with and without tags.
func TestResolveModel(t *testing.T) {
	t.Parallel()
	for i, test := range []struct{ in, want, err string }{
		{"RN50", "timm/resnet50_clip.openai", ""},
		{"rn50x4", "timm/resnet50x4_clip.openai", ""},
		{"ViT-B/32", "openai/clip-vit-base-patch32", ""},
		{"ViT-B-32:openai", "openai/clip-vit-base-patch32", ""},
		{"ViT-L/14@336px", "openai/clip-vit-large-patch14-336", ""},
		{"ViT-B-32:laion2b_s34b_b79k", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", ""},
		{"ViT-H-14", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", ""},
		{"org/some-clip", "org/some-clip", ""},
		{"ViT-Q/99@x", "", "nor a model name gorgoclip knows"},
	} {
		got, err := ResolveModel(test.in)
		if test.err != "" {
			if err == nil || !strings.Contains(err.Error(), test.err) {
				t.Errorf("test %d: got %q, %v want an error containing %q", i, got, err, test.err)
			}
			continue
		}
		if err != nil || got != test.want {
			t.Errorf("test %d: got %q, %v want %q", i, got, err, test.want)
		}
	}
}
