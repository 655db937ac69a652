package download

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
)

// DefaultEndpoint is the Hugging Face hub used when HF_ENDPOINT is unset.
const DefaultEndpoint = "https://huggingface.co"

// HubOptions configures FetchModel. The zero value fetches "main" from $HF_ENDPOINT
// (else DefaultEndpoint) with $HF_TOKEN into ModelDir.
type HubOptions struct {
	Options
	// Endpoint is the hub's base URL; "" means $HF_ENDPOINT, else DefaultEndpoint.
	Endpoint string
	// Token is sent as "Authorization: Bearer TOKEN" to the endpoint (never to the CDN
	// the hub redirects to: net/http drops it on cross-host redirects); "" means
	// $HF_TOKEN, else $HUGGING_FACE_HUB_TOKEN, else no header.
	Token string
	// Revision is a branch, tag or commit; "" means "main".
	Revision string
	// Dir is where the files go; "" means ModelDir(repo, Revision).
	Dir string
}

func (o *HubOptions) endpoint() string {
	e := o.Endpoint
	if e == "" {
		e = os.Getenv("HF_ENDPOINT")
	}
	if e == "" {
		e = DefaultEndpoint
	}
	return strings.TrimRight(e, "/")
}

func (o *HubOptions) token() string {
	for _, t := range []string{o.Token, os.Getenv("HF_TOKEN"), os.Getenv("HUGGING_FACE_HUB_TOKEN")} {
		if t = strings.TrimSpace(t); t != "" {
			return t
		}
	}
	return ""
}

func (o *HubOptions) revision() string {
	if o.Revision == "" {
		return "main"
	}
	return o.Revision
}

// HubFile is one file of a hub repository as the API lists it.
type HubFile struct {
	// Name is the path in the repository (the API's "rfilename").
	Name string `json:"rfilename"`
	// Size is the file size in bytes; 0 when the listing did not include it.
	Size int64 `json:"size"`
	// LFS is set for files stored with Git LFS (weights); its SHA256 is the content's.
	LFS *HubLFS `json:"lfs"`
}

// HubLFS is the Git LFS record of a hub file.
type HubLFS struct {
	// SHA256 is the hex digest of the content (model info API).
	SHA256 string `json:"sha256"`
	// Oid is the same digest as the tree API names it.
	Oid string `json:"oid"`
	// Size is the content length in bytes.
	Size int64 `json:"size"`
}

// Expect returns what the listing says about the file's size and digest.
func (f HubFile) Expect() Expect {
	e := Expect{Size: f.Size}
	if f.LFS != nil {
		if f.LFS.Size > 0 {
			e.Size = f.LFS.Size
		}
		e.SHA256 = strings.TrimPrefix(f.LFS.SHA256, "sha256:")
		if e.SHA256 == "" {
			e.SHA256 = strings.TrimPrefix(f.LFS.Oid, "sha256:")
		}
	}
	return e
}

// HubModel is the part of GET /api/models/{repo}/revision/{rev}?blobs=true that
// FetchModel uses.
type HubModel struct {
	// ID is the repository name.
	ID string `json:"id"`
	// SHA is the commit the revision resolved to.
	SHA string `json:"sha"`
	// Siblings are the repository's files.
	Siblings []HubFile `json:"siblings"`
}

var repoRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)

func checkRepo(repo string) error {
	if !repoRE.MatchString(repo) || strings.Contains(repo, "..") {
		return fmt.Errorf("loaders: download: %q is not a hub repository name (want OWNER/NAME, e.g. openai/clip-vit-base-patch32)", repo)
	}
	return nil
}

// ModelInfo asks the hub which files repo has at opts.Revision, with sizes and LFS
// digests (GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true).
func ModelInfo(ctx context.Context, repo string, opts HubOptions) (*HubModel, error) {
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	u := fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", opts.endpoint(), repo, url.PathEscape(opts.revision()))
	timeout, err := opts.timeout()
	if err != nil {
		return nil, err
	}
	ctx, wd := watch(ctx, timeout)
	defer wd.done()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("loaders: download: %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	if t := opts.token(); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := opts.client().Do(req)
	err = cause(req.Context(), err)
	if err != nil {
		if isOffline(err) {
			return nil, &OfflineError{URL: u, Err: err}
		}
		return nil, fmt.Errorf("loaders: download: %s: %w", u, err)
	}
	defer resp.Body.Close()
	wd.gotAnswer()
	if resp.StatusCode != http.StatusOK {
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = " (private or gated repository? set HF_TOKEN)"
		case http.StatusNotFound:
			hint = " (no such repository or revision)"
		}
		return nil, fmt.Errorf("loaders: download: %s: hub answered %s%s", u, resp.Status, hint)
	}
	var m HubModel
	if err := json.NewDecoder(io.TeeReader(io.LimitReader(resp.Body, 64<<20), wd)).Decode(&m); err != nil {
		return nil, fmt.Errorf("loaders: download: %s: decoding the hub's answer: %w", u, cause(ctx, err))
	}
	return &m, nil
}

// hubLayout is one checkpoint format a hub repository may hold: the config file
// that identifies it, its weight files in order of preference (safetensors loads
// without executing pickle), and optional files fetched when present.
type hubLayout struct {
	name     string
	config   string
	weights  []string
	optional []string
}

// hubLayouts are the formats FetchModel fetches, first match wins: open_clip's comes
// first, since repositories published for both timm and open_clip
// (timm/resnet50_clip.openai) also hold a config.json and model.safetensors of timm's
// own format, which is not CLIP's.
var hubLayouts = []hubLayout{
	{name: "open_clip", config: "open_clip_config.json",
		weights: []string{"open_clip_model.safetensors", "open_clip_pytorch_model.bin"}, optional: []string{"vocab.json", "merges.txt"}},
	{name: "transformers", config: "config.json",
		weights: []string{"model.safetensors", "pytorch_model.bin"}, optional: []string{"vocab.json", "merges.txt"}},
}

// weightFiles are every layout's weight files (for messages and offline checks).
var weightFiles = func() []string {
	var w []string
	for _, l := range hubLayouts {
		w = append(w, l.weights...)
	}
	return w
}()

// PlanModel picks the files FetchModel downloads from a listing: the config and the
// preferred weights of the first layout the repository holds (open_clip's
// open_clip_config.json with open_clip_model.safetensors over
// open_clip_pytorch_model.bin; else transformers' config.json with
// model.safetensors over pytorch_model.bin), and the BPE tokenizer files (vocab.json,
// merges.txt) when present.
func PlanModel(m *HubModel) ([]HubFile, error) {
	byName := map[string]HubFile{}
	for _, f := range m.Siblings {
		byName[f.Name] = f
	}
	var seen []string
	for _, l := range hubLayouts {
		cfg, ok := byName[l.config]
		if !ok {
			continue
		}
		seen = append(seen, l.config)
		for _, w := range l.weights {
			if f, ok := byName[w]; ok {
				plan := []HubFile{cfg, f}
				for _, t := range l.optional {
					if f, ok := byName[t]; ok {
						plan = append(plan, f)
					}
				}
				return plan, nil
			}
		}
	}
	if len(seen) == 0 {
		var cfgs []string
		for _, l := range hubLayouts {
			cfgs = append(cfgs, l.config)
		}
		return nil, fmt.Errorf("loaders: download: %s has no %s: not an open_clip or transformers CLIP repository", m.ID, strings.Join(cfgs, " or "))
	}
	hint := ""
	if _, ok := byName["model.safetensors.index.json"]; ok {
		hint = " (sharded checkpoints are not supported)"
	}
	return nil, fmt.Errorf("loaders: download: %s has %s but none of %s%s", m.ID, strings.Join(seen, " and "), strings.Join(weightFiles, ", "), hint)
}

// FetchModel downloads a CLIP checkpoint from the Hugging Face hub and returns the
// directory holding it. It asks the hub which files exist (ModelInfo), picks them with
// PlanModel, and fetches each from {endpoint}/{repo}/resolve/{revision}/{file} with
// File, checking the hub's sizes and, for LFS files, SHA-256 digests. Files already
// complete are skipped. Offline, a directory that already holds config.json and
// weights is returned as is; otherwise the *OfflineError lists the files to copy.
func FetchModel(ctx context.Context, repo string, opts HubOptions) (string, error) {
	if err := checkRepo(repo); err != nil {
		return "", err
	}
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = ModelDir(repo, opts.Revision); err != nil {
			return "", err
		}
	}
	rev := opts.revision()
	resolve := func(name string) string {
		return fmt.Sprintf("%s/%s/resolve/%s/%s", opts.endpoint(), repo, url.PathEscape(rev), name)
	}
	m, err := ModelInfo(ctx, repo, opts)
	var off *OfflineError
	if errors.As(err, &off) {
		if haveModel(dir) {
			if err := checkCachedModel(dir, repo, rev); err != nil {
				return "", err
			}
			note(opts.Progress, "%s: hub unreachable; using the files already in %s (checked)", repo, dir)
			return dir, nil
		}
		off.Path = dir
		off.Hint = fmt.Sprintf("download open_clip_config.json and open_clip_model.safetensors (open_clip repositories), "+
			"or config.json, model.safetensors (or pytorch_model.bin), vocab.json and merges.txt (transformers ones) from %s into the directory %s, then rerun",
			resolve("FILE"), dir)
		return "", off
	}
	if err != nil {
		return "", err
	}
	plan, err := PlanModel(m)
	if err != nil {
		return "", err
	}
	dl := opts.Options
	dl.Header = dl.Header.Clone()
	if t := opts.token(); t != "" {
		if dl.Header == nil {
			dl.Header = http.Header{}
		}
		dl.Header.Set("Authorization", "Bearer "+t)
	}
	for _, f := range plan {
		dest := filepath.Join(dir, filepath.FromSlash(f.Name))
		want := f.Expect()
		want.Check = checkFor(f.Name)
		if ok, err := want.Matches(dest); err != nil {
			return "", err
		} else if ok && want.known() && (want.Check == nil || want.Check(dest) == nil) {
			note(opts.Progress, "%s: %s already complete", repo, f.Name)
			continue
		}
		note(opts.Progress, "%s: fetching %s (%s)", repo, f.Name, sizeText(want.Size))
		if err := File(ctx, resolve(f.Name), dest, want, dl); err != nil {
			if errors.As(err, &off) {
				off.Hint = fmt.Sprintf("download %s and save it as %s (and the other files of %s into %s), then rerun", off.URL, dest, repo, dir)
			}
			return "", err
		}
	}
	src, _ := json.MarshalIndent(map[string]any{
		"repo": repo, "revision": rev, "sha": m.SHA, "endpoint": opts.endpoint(),
		"files": plan,
	}, "", "  ")
	if err := atomicfile.WriteBytes(filepath.Join(dir, SourceRecordName), append(src, '\n')); err != nil {
		return "", fmt.Errorf("loaders: download: %w", err)
	}
	return dir, nil
}

// haveModel reports whether dir holds the config and weights of one layout.
func haveModel(dir string) bool { return layoutIn(dir) != nil }

// layoutIn returns the first layout whose config and one of whose weight files dir
// holds, or nil.
func layoutIn(dir string) *hubLayout {
	for i, l := range hubLayouts {
		if !regular(filepath.Join(dir, l.config)) {
			continue
		}
		for _, w := range l.weights {
			if regular(filepath.Join(dir, w)) {
				return &hubLayouts[i]
			}
		}
	}
	return nil
}

func regular(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func note(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

func sizeText(n int64) string {
	if n <= 0 {
		return "size unknown"
	}
	return mb(n)
}
