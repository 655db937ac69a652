package download

import (
	"context"
	"path/filepath"

	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

// DefaultVocabURL is OpenAI's BPE vocabulary, clip/bpe_simple_vocab_16e6.txt.gz in
// github.com/openai/CLIP (MIT licence).
const DefaultVocabURL = "https://raw.githubusercontent.com/openai/CLIP/main/clip/" + tokenizer.OpenAIVocabFile

// FetchVocab downloads OpenAI's BPE vocabulary (opts.URL, default DefaultVocabURL)
// into dir, "" meaning the cache's (tokenizer.DefaultVocabDir), where the commands
// find it, and returns its path. Whatever the URL (a local mirror, say), the file
// must have OpenAI's digest (tokenizer.OpenAIVocabSHA256, unless opts.Expect names
// another) and load as a vocabulary.
func FetchVocab(ctx context.Context, dir string, opts SourceOptions) (string, error) {
	if dir == "" {
		var err error
		if dir, err = tokenizer.DefaultVocabDir(); err != nil {
			return "", err
		}
	}
	dest := filepath.Join(dir, tokenizer.OpenAIVocabFile)
	src := opts.URL
	if src == "" {
		src = DefaultVocabURL
	}
	want := opts.Expect
	if want.SHA256 == "" {
		want.SHA256 = tokenizer.OpenAIVocabSHA256
	}
	want.Check = func(path string) error {
		_, err := tokenizer.Load(path)
		return err
	}
	return fileOrHint(ctx, src, dest, want, opts.Options)
}
