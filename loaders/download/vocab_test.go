package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

// TestFetchVocab serves OpenAI's vocabulary (the fixtures' copy) from a local server:
// it is saved where the commands look and loads; a file of another digest, or an
// HTML page, is refused and not kept.
func TestFetchVocab(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile(testfix.Shared(t, "clip/"+tokenizer.OpenAIVocabFile))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != tokenizer.OpenAIVocabSHA256 {
		t.Fatalf("the fixtures' vocabulary has another digest than tokenizer.OpenAIVocabSHA256")
	}
	ts := httptest.NewServer(&fileServer{data: body})
	defer ts.Close()
	dir := filepath.Join(t.TempDir(), "vocab")
	got, err := FetchVocab(context.Background(), dir, SourceOptions{Options: fastOpts(), URL: ts.URL + "/v.gz"})
	if want := filepath.Join(dir, tokenizer.OpenAIVocabFile); err != nil || got != want {
		t.Fatalf("got %q, %v want %q", got, err, want)
	}
	checkFile(t, got, body)
	if _, err := tokenizer.Load(got); err != nil {
		t.Fatal(err)
	}

	for name, bad := range map[string][]byte{
		"another digest": append(append([]byte(nil), body[:len(body)-1]...), body[len(body)-1]^1),
		"an HTML page":   []byte("<!DOCTYPE html><html><body>rate limited</body></html>"),
	} {
		bs := httptest.NewServer(&fileServer{data: bad})
		dir := filepath.Join(t.TempDir(), "vocab")
		_, err := FetchVocab(context.Background(), dir, SourceOptions{Options: fastOpts(), URL: bs.URL + "/v.gz"})
		bs.Close()
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := os.Stat(filepath.Join(dir, tokenizer.OpenAIVocabFile)); err == nil {
			t.Errorf("%s: kept", name)
		}
	}
	if !strings.HasSuffix(DefaultVocabURL, "/openai/CLIP/main/clip/bpe_simple_vocab_16e6.txt.gz") {
		t.Errorf("DefaultVocabURL %s", DefaultVocabURL)
	}
}
