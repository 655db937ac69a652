package download

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gorgoclip/gorgoclip/loaders/prompts"
)

// DefaultTemplatesURL is OpenAI's list of class names and prompt templates for the 26
// datasets of the CLIP paper's Table 9 (data/prompts.md in github.com/openai/CLIP).
const DefaultTemplatesURL = "https://raw.githubusercontent.com/openai/CLIP/main/data/prompts.md"

// FetchTemplates downloads OpenAI's per-dataset prompt templates (opts.URL, default
// DefaultTemplatesURL) to dest, "" meaning TemplatesPath(), and returns the path. A
// download that does not parse as prompts.md (an HTML page, say) is not kept; an
// existing file that parses is kept, one that does not is fetched again.
func FetchTemplates(ctx context.Context, dest string, opts SourceOptions) (string, error) {
	if dest == "" {
		var err error
		if dest, err = TemplatesPath(); err != nil {
			return "", err
		}
	}
	src := opts.URL
	if src == "" {
		src = DefaultTemplatesURL
	}
	want := opts.Expect
	want.Check = checkPrompts
	return fileOrHint(ctx, src, dest, want, opts.Options)
}

// fileOrHint fetches one file with File and returns dest; offline, the error says to
// download src by hand and save it as dest.
func fileOrHint(ctx context.Context, src, dest string, want Expect, opts Options) (string, error) {
	if err := File(ctx, src, dest, want, opts); err != nil {
		var off *OfflineError
		if errors.As(err, &off) {
			off.Hint = fmt.Sprintf("download %s elsewhere and save it as %s, then rerun", src, dest)
		}
		return "", err
	}
	return dest, nil
}

// DefaultImageNetNotebookURL is OpenAI's notebook Prompt_Engineering_for_ImageNet.ipynb,
// whose code cells hold the 1000 cleaned ImageNet class names and the 80 templates of
// the CLIP paper's ImageNet ensemble (prompts.md has no ImageNet section).
const DefaultImageNetNotebookURL = "https://raw.githubusercontent.com/openai/CLIP/main/notebooks/Prompt_Engineering_for_ImageNet.ipynb"

// File names in the templates directory (the folder of TemplatesPath).
const (
	// ImageNetNotebookName is the downloaded notebook, kept so that reruns need no network.
	ImageNetNotebookName = "Prompt_Engineering_for_ImageNet.ipynb"
	// ImageNetTemplatesName is the JSON extracted from it: {"templates": [...], "classes": [...]}.
	ImageNetTemplatesName = "imagenet_templates.json"
)

// ImageNetTemplatesPath returns CacheDir()/templates/imagenet_templates.json, where
// FetchImageNetTemplates saves the ImageNet ensemble by default.
func ImageNetTemplatesPath() (string, error) {
	p, err := TemplatesPath()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(p), ImageNetTemplatesName), nil
}

// FetchImageNetTemplates downloads OpenAI's ImageNet notebook (opts.URL, default
// DefaultImageNetNotebookURL) to dir/ImageNetNotebookName, dir "" meaning the folder
// of TemplatesPath(), extracts its imagenet_templates and imagenet_classes lists, and
// writes them atomically to dir/ImageNetTemplatesName, whose path it returns. An
// existing extraction that reads back is kept, so that no notebook and no network
// are needed once it is there (delete it to extract again); an existing complete
// notebook is kept and extracted again.
// A downloaded notebook whose lists do not parse is fetched again.
func FetchImageNetTemplates(ctx context.Context, dir string, opts SourceOptions) (string, error) {
	if dir == "" {
		p, err := TemplatesPath()
		if err != nil {
			return "", err
		}
		dir = filepath.Dir(p)
	}
	src := opts.URL
	if src == "" {
		src = DefaultImageNetNotebookURL
	}
	nb := filepath.Join(dir, ImageNetNotebookName)
	out := filepath.Join(dir, ImageNetTemplatesName)
	if s, err := prompts.ReadJSON(out); err == nil && len(s.Templates) > 0 && len(s.Classes) > 0 {
		note(opts.Progress, "%s: already extracted (%d templates, %d classes)", out, len(s.Templates), len(s.Classes))
		return out, nil
	}
	want := opts.Expect
	want.Check = checkNotebook
	if err := File(ctx, src, nb, want, opts.Options); err != nil {
		var off *OfflineError
		if errors.As(err, &off) {
			off.Hint = fmt.Sprintf("download %s elsewhere and save it as %s, then rerun (it is extracted to %s)", src, nb, out)
		}
		return "", err
	}
	s, err := prompts.ReadImageNetNotebook(nb)
	if err != nil {
		return "", fmt.Errorf("loaders: download: %w", err)
	}
	if err := prompts.WriteJSON(out, s); err != nil {
		return "", err
	}
	return out, nil
}
