package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// TestOpen checks where Open looks for the vocabulary, in order, and that with none
// anywhere the error says how to get one.
func TestOpen(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("GORGOCLIP_CACHE", cache)
	t.Setenv(VocabEnv, "")
	if _, _, err := Open(""); err == nil || !strings.Contains(err.Error(), "gorgoclip fetch vocab") {
		t.Fatalf("nothing configured: got %v, want an error naming gorgoclip fetch vocab", err)
	}
	shared := testfix.Shared(t, "clip/"+OpenAIVocabFile)
	if _, src, err := Open(shared); err != nil || src != shared {
		t.Errorf("explicit: got %q, %v", src, err)
	}
	if _, src, err := Open("", t.TempDir(), filepath.Dir(shared)); err != nil || src != shared {
		t.Errorf("beside the weights: got %q, %v want %q", src, err, shared)
	}
	data, err := os.ReadFile(shared)
	if err != nil {
		t.Fatal(err)
	}
	inCache := filepath.Join(cache, "vocab", OpenAIVocabFile)
	if err := os.MkdirAll(filepath.Dir(inCache), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inCache, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if tok, src, err := Open(""); err != nil || src != inCache || tok.VocabSize() != 49408 {
		t.Errorf("the cache: got %q, %v want %q", src, err, inCache)
	}
	t.Setenv(VocabEnv, filepath.Dir(shared))
	if _, src, err := Open(""); err != nil || src != shared {
		t.Errorf("$%s: got %q, %v", VocabEnv, src, err)
	}
	t.Setenv(VocabEnv, "/nonexistent/vocab.gz")
	if _, _, err := Open(""); err == nil || !strings.Contains(err.Error(), "/nonexistent/vocab.gz") {
		t.Errorf("a missing $GORGOCLIP_VOCAB: got %v, want an error naming it", err)
	}
	if _, _, err := Open("/nonexistent/vocab.gz"); err == nil {
		t.Error("a missing explicit vocabulary was not refused")
	}
}
