package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/hang"
)

// TestBPEMatchesRescan compares bpeHeap with OpenAI's rescanning loop (bpeRescan)
// on random words: runs of one letter (where pairs overlap), few-letter alphabets,
// and mixed bytes, up to 4 kB.
func TestBPEMatchesRescan(t *testing.T) {
	tok := loadCLIP(t)
	r := rand.New(rand.NewPCG(7, 7))
	alphabets := []string{"a", "ab", "abc", "ing", "the qu", "0123456789", "éàü", "\xff\x00abc"}
	for i := 0; i < 3000; i++ {
		alpha := alphabets[i%len(alphabets)]
		n := 1 + r.IntN(40)
		if i%100 == 0 {
			n = 4096
		}
		var b strings.Builder
		for b.Len() < n {
			b.WriteByte(alpha[r.IntN(len(alpha))])
		}
		w := b.String()
		if got, want := tok.bpeHeap(w), tok.bpeRescan(w); !slices.Equal(got, want) {
			t.Fatalf("word %q: got %v want %v", w[:min(len(w), 60)], got[:min(len(got), 20)], want[:min(len(want), 20)])
		}
	}
}

// TestBPELongWord: one 1 MB word of random letters took 77 s, OpenAI's rescanning
// loop being quadratic in the word's length (10 s for 64 kB here); the heap takes
// about 2 s. The deadline guards against quadratic time.
func TestBPELongWord(t *testing.T) {
	tok := loadCLIP(t)
	word := randomLetters(1 << 20)
	var ids []int
	hang.Within(t, 30*time.Second, "a 1 MB word", func() error { ids = tok.Encode(word); return nil })
	if len(ids) < 2+len(word)/16 || ids[0] != tok.StartID() || ids[len(ids)-1] != tok.EndID() {
		t.Fatalf("%d ids for a %d-byte word", len(ids), len(word))
	}
}

// randomLetters returns n random lowercase letters: a word with thousands of
// distinct merges, the worst case of the rescanning loop.
func randomLetters(n int) string {
	r := rand.New(rand.NewPCG(3, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
}

// BenchmarkBPE1MBWord times one 1 MB word of random letters through BPE, for
// comparison with BenchmarkTokenize10kPromptsCold in the same run.
func BenchmarkBPE1MBWord(b *testing.B) {
	tok := loadCLIP(b)
	word := randomLetters(1 << 20)
	for i := 0; i < b.N; i++ {
		benchSink = tok.bpe(word)
	}
}
