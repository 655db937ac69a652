package tokenizer

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// prompts10k returns 10,000 prompts "a photo of a {label}." cycling over the 1000
// ImageNet class names of OpenAI's notebook.
func prompts10k(b *testing.B) []string {
	b.Helper()
	raw, err := os.ReadFile(testfix.Shared(b, "fixtures/tokenizer/imagenet_templates.json"))
	if err != nil {
		b.Fatal(err)
	}
	var f struct {
		Classes []string `json:"classes"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		b.Fatal(err)
	}
	if len(f.Classes) != 1000 {
		b.Fatalf("imagenet_templates.json: %d classes, want 1000", len(f.Classes))
	}
	out := make([]string, 10000)
	for i := range out {
		out[i] = "a photo of a " + f.Classes[i%len(f.Classes)] + "."
	}
	return out
}

var benchSink []int32

func benchmarkTokenize(b *testing.B, cold bool) {
	tok := loadCLIP(b)
	prompts := prompts10k(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if cold {
			tok.mu.Lock()
			tok.cache = map[string][]int32{}
			tok.mu.Unlock()
		}
		ids, err := tok.Tokenize(prompts, DefaultContextLength, true)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = ids
	}
}

// BenchmarkTokenize10kPrompts times clip.tokenize of 10,000 prompts with the word
// cache warm, as in a zero-shot run over many templates.
func BenchmarkTokenize10kPrompts(b *testing.B) { benchmarkTokenize(b, false) }

// BenchmarkTokenize10kPromptsCold empties the word cache first, so every distinct
// word goes through BPE.
func BenchmarkTokenize10kPromptsCold(b *testing.B) { benchmarkTokenize(b, true) }

var loadSink *Tokenizer

// BenchmarkLoad times reading OpenAI's gzip merges file.
func BenchmarkLoad(b *testing.B) {
	path := testfix.Shared(b, "clip/"+OpenAIVocabFile)
	for i := 0; i < b.N; i++ {
		tok, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		loadSink = tok
	}
}
