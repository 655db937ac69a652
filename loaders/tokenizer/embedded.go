package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"os"
	"sync"
)

// openAIVocab is OpenAI's clip/bpe_simple_vocab_16e6.txt.gz as its pip package ships
// it (MIT licence, Copyright (c) 2021 OpenAI: see LICENSE-openai-clip beside it).
//
//go:embed bpe_simple_vocab_16e6.txt.gz
var openAIVocab []byte

// EmbeddedVocabSHA256 is the SHA-256 of the vocabulary built into the binary, the
// digest of OpenAI's bpe_simple_vocab_16e6.txt.gz.
const EmbeddedVocabSHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

// EmbeddedSource is what Open reports as the source of the built-in vocabulary.
const EmbeddedSource = "built-in " + OpenAIVocabFile

var embedded struct {
	once sync.Once
	tok  *Tokenizer
	err  error
}

// Embedded returns the tokenizer of OpenAI's vocabulary built into the binary, so
// that CLIP's prompts tokenize with nothing downloaded. It is parsed once and shared
// (a Tokenizer is safe for concurrent use).
func Embedded() (*Tokenizer, error) {
	embedded.once.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(openAIVocab))
		if err != nil {
			embedded.err = fmt.Errorf("tokenizer: %s: %w", EmbeddedSource, err)
			return
		}
		merges, err := parseMerges(bufio.NewReaderSize(zr, 1<<16), clipMerges)
		if err == nil {
			embedded.tok, err = build(merges, nil)
		}
		if err != nil {
			embedded.err = fmt.Errorf("tokenizer: %s: %w", EmbeddedSource, err)
		}
	})
	return embedded.tok, embedded.err
}

// Open returns the tokenizer the commands use and where its vocabulary came from:
// explicit (a file, or a directory holding one) when not empty; else the first of
// dirs that holds a vocabulary (FindVocab: beside the weights); else $GORGOCLIP_VOCAB;
// else the cache's vocab/ directory (DefaultVocabDir); else the built-in vocabulary
// (Embedded), reported as EmbeddedSource.
func Open(explicit string, dirs ...string) (*Tokenizer, string, error) {
	path := explicit
	if path == "" {
		for _, d := range dirs {
			if p, err := FindVocab(d); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" && os.Getenv(VocabEnv) == "" {
		if dir, err := DefaultVocabDir(); err == nil {
			path, _ = FindVocab(dir)
		}
		if path == "" {
			tok, err := Embedded()
			return tok, EmbeddedSource, err
		}
	}
	p, err := Locate(path)
	if err != nil {
		return nil, "", err
	}
	tok, err := Load(p)
	return tok, p, err
}
