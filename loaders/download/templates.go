package download

import (
	"context"
	"errors"
	"fmt"
)

// DefaultTemplatesURL is OpenAI's list of class names and prompt templates for the 26
// datasets of the CLIP paper's Table 9 (data/prompts.md in github.com/openai/CLIP).
const DefaultTemplatesURL = "https://raw.githubusercontent.com/openai/CLIP/main/data/prompts.md"

// FetchTemplates downloads OpenAI's per-dataset prompt templates (opts.URL, default
// DefaultTemplatesURL) to dest, "" meaning TemplatesPath(), and returns the path. An
// existing complete file is kept.
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
	if err := File(ctx, src, dest, opts.Expect, opts.Options); err != nil {
		var off *OfflineError
		if errors.As(err, &off) {
			off.Hint = fmt.Sprintf("download %s elsewhere and save it as %s, then rerun", src, dest)
		}
		return "", err
	}
	return dest, nil
}
