package download

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/regfile"
)

// SourceRecordName is the file FetchModel writes beside the files it fetched: the
// repository, revision, commit and the hub's listing of each file (size, SHA-256).
const SourceRecordName = ".gorgoclip-source.json"

// sourceRecord is what SourceRecordName holds.
type sourceRecord struct {
	Repo     string    `json:"repo"`
	Revision string    `json:"revision"`
	SHA      string    `json:"sha"`
	Files    []HubFile `json:"files"`
}

// checkCachedModel checks, without network, that dir holds repo at revision: with
// the source record FetchModel wrote, every file it lists, at the listed size and
// digest; without one (files copied by hand), config.json, the weights and the
// tokenizer files, and a config that agrees with what the repository's name says
// (patch size, resolution, width). Errors name the file and the mismatch.
func checkCachedModel(dir, repo, revision string) error {
	b, err := os.ReadFile(filepath.Join(dir, SourceRecordName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return checkHandCopied(dir, repo)
	case err != nil:
		return fmt.Errorf("loaders: download: %w", err)
	}
	var rec sourceRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("loaders: download: %s: %w (delete it and fetch again)", filepath.Join(dir, SourceRecordName), err)
	}
	if !strings.EqualFold(rec.Repo, repo) || rec.Revision != revision {
		return fmt.Errorf("loaders: download: %s holds %s at %s, not %s at %s: give another --dir or delete it", dir, rec.Repo, rec.Revision, repo, revision)
	}
	for _, f := range rec.Files {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		ok, err := f.Expect().Matches(path)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("loaders: download: %s is missing or not the file %s lists (%s): fetch it again with network", path, repo, describeExpect(f.Expect()))
		}
	}
	return nil
}

func describeExpect(e Expect) string {
	s := fmt.Sprintf("%d bytes", e.Size)
	if e.SHA256 != "" {
		s += ", sha256 " + e.SHA256
	}
	return s
}

// checkHandCopied checks a model directory without a source record: a layout's
// config and weights (transformers' also with its tokenizer files), and a config
// whose vision tower agrees with what the repository's name says.
func checkHandCopied(dir, repo string) error {
	l := layoutIn(dir)
	if l == nil {
		return fmt.Errorf("loaders: download: %s lacks the files of %s: open_clip_config.json and open_clip_model.safetensors, "+
			"or config.json, model.safetensors or pytorch_model.bin, vocab.json and merges.txt", dir, repo)
	}
	if l.name == "transformers" {
		var missing []string
		for _, name := range l.optional { // the tokenizer: HF's CLIPProcessor needs them
			if !regular(filepath.Join(dir, name)) {
				missing = append(missing, name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("loaders: download: %s lacks %s of %s", dir, strings.Join(missing, ", "), repo)
		}
	}
	path := filepath.Join(dir, l.config)
	b, err := regfile.ReadFile(path, 4<<20)
	if err != nil {
		return fmt.Errorf("loaders: download: %w", err)
	}
	// The vision tower's size, where each layout writes it.
	var cfg struct {
		Vision struct {
			PatchSize  int `json:"patch_size"`
			ImageSize  int `json:"image_size"`
			HiddenSize int `json:"hidden_size"`
		} `json:"vision_config"`
		Model struct {
			Vision struct {
				PatchSize *int `json:"patch_size"`
				ImageSize int  `json:"image_size"`
				Width     int  `json:"width"`
			} `json:"vision_cfg"`
		} `json:"model_cfg"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("loaders: download: %s: %w", path, err)
	}
	prefix, got := "vision_config.", [3]int{cfg.Vision.PatchSize, cfg.Vision.ImageSize, cfg.Vision.HiddenSize}
	if l.name == "open_clip" {
		v := cfg.Model.Vision
		prefix, got = "model_cfg.vision_cfg.", [3]int{0, v.ImageSize, v.Width}
		if v.PatchSize != nil {
			got[0] = *v.PatchSize
		}
	}
	want := repoShape(repo)
	for i, f := range []struct {
		name string
		want int
	}{{"patch_size", want.patch}, {"image_size", want.size}, {l.widthField(), want.width}} {
		if f.want != 0 && got[i] != f.want {
			return fmt.Errorf("loaders: download: %s has %s%s %d, but %s has %d: these are not %s's weights", path, prefix, f.name, got[i], repo, f.want, repo)
		}
	}
	return nil
}

// widthField names the vision tower's width in the layout's config.
func (l *hubLayout) widthField() string {
	if l.name == "open_clip" {
		return "width"
	}
	return "hidden_size"
}

// vitShape is what a CLIP repository's name says of its vision tower; 0 is unknown.
type vitShape struct{ patch, size, width int }

var (
	// "clip-vit-base-patch32", "clip-vit-large-patch14-336", "CLIP-ViT-B-32-laion2B".
	patchRE = regexp.MustCompile(`(?i)(?:patch|vit-[a-z]+-)(\d+)(?:-(\d{3})(?:\b|$))?`)
	widthRE = regexp.MustCompile(`(?i)vit-(base|large|huge|b|l|h)\b`)
	widths  = map[string]int{"base": 768, "b": 768, "large": 1024, "l": 1024, "huge": 1280, "h": 1280}
)

// repoShape reads a ViT CLIP repository's name: its patch size, its resolution
// (the suffix after the patch size; 224 for OpenAI's repositories without one) and
// its width (base 768, large 1024, huge 1280).
func repoShape(repo string) vitShape {
	var s vitShape
	if m := patchRE.FindStringSubmatch(repo); m != nil {
		s.patch, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			s.size, _ = strconv.Atoi(m[2])
		} else if strings.HasPrefix(strings.ToLower(repo), "openai/clip-vit-") {
			s.size = 224
		}
	}
	if m := widthRE.FindStringSubmatch(repo); m != nil {
		s.width = widths[strings.ToLower(m[1])]
	}
	return s
}
