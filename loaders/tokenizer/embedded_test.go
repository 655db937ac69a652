package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// TestEmbeddedVocab checks that the built-in vocabulary is OpenAI's file, byte for
// byte, and tokenizes every fixture case as OpenAI's tokenizer did.
func TestEmbeddedVocab(t *testing.T) {
	sum := sha256.Sum256(openAIVocab)
	if got := hex.EncodeToString(sum[:]); got != EmbeddedVocabSHA256 {
		t.Fatalf("embedded vocabulary has SHA-256 %s, want %s", got, EmbeddedVocabSHA256)
	}
	shared, err := os.ReadFile(testfix.Shared(t, "clip/"+OpenAIVocabFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, openAIVocab) {
		t.Error("embedded vocabulary differs from the fixtures' copy of OpenAI's file")
	}
	tok, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := Embedded(); again != tok {
		t.Error("Embedded parsed the vocabulary twice")
	}
	if tok.VocabSize() != 49408 || tok.EndID() != 49407 {
		t.Errorf("vocabulary size %d, end id %d", tok.VocabSize(), tok.EndID())
	}
	for i, c := range readCases(t) {
		if got := tok.Encode(c.Text); !reflect.DeepEqual(got, c.IDs) {
			t.Fatalf("case %d %q: got %v want %v", i, c.Text, got, c.IDs)
		}
	}
}

func TestOpen(t *testing.T) {
	t.Setenv("GORGOCLIP_CACHE", t.TempDir())
	t.Setenv(VocabEnv, "")
	tok, src, err := Open("")
	if err != nil || src != EmbeddedSource || tok == nil {
		t.Fatalf("nothing configured: got %q, %v want the built-in vocabulary", src, err)
	}
	shared := testfix.Shared(t, "clip/"+OpenAIVocabFile)
	if _, src, err := Open(shared); err != nil || src != shared {
		t.Errorf("explicit: got %q, %v", src, err)
	}
	if _, src, err := Open("", t.TempDir(), filepath.Dir(shared)); err != nil || src != shared {
		t.Errorf("beside the weights: got %q, %v want %q", src, err, shared)
	}
	t.Setenv(VocabEnv, filepath.Dir(shared))
	if _, src, err := Open(""); err != nil || src != shared {
		t.Errorf("$%s: got %q, %v", VocabEnv, src, err)
	}
	t.Setenv(VocabEnv, "/nonexistent/vocab.gz")
	if _, _, err := Open(""); err == nil {
		t.Error("a missing $GORGOCLIP_VOCAB fell back to the built-in vocabulary")
	}
	if _, _, err := Open("/nonexistent/vocab.gz"); err == nil {
		t.Error("a missing explicit vocabulary fell back to the built-in one")
	}
}
