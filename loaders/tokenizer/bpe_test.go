package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/hang"
)

// bpeRescan is OpenAI's simple_tokenizer.bpe as written: find the lowest-ranked
// pair, merge each occurrence left to right, rescan. Quadratic, and the reference
// the heap version must match.
func (t *Tokenizer) bpeRescan(w string) []int32 {
	syms := make([]int32, len(w))
	for i := 0; i < len(w); i++ {
		syms[i] = t.byteSym[w[i]]
	}
	syms[len(w)-1] = t.byteEnd[w[len(w)-1]]
	for len(syms) > 1 {
		best := merge{rank: -1}
		var first, second int32
		for i := 0; i+1 < len(syms); i++ {
			m, ok := t.merges[pairKey(syms[i], syms[i+1])]
			if ok && (best.rank < 0 || m.rank < best.rank) {
				best, first, second = m, syms[i], syms[i+1]
			}
		}
		if best.rank < 0 {
			break
		}
		var out []int32
		for i := 0; i < len(syms); {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				out = append(out, best.id)
				i += 2
			} else {
				out = append(out, syms[i])
				i++
			}
		}
		syms = out
	}
	return syms
}

// TestBPEMatchesRescan compares the heap BPE with OpenAI's rescanning loop on
// random words: runs of one letter (where pairs overlap), few-letter alphabets,
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
		if got, want := tok.bpe(w), tok.bpeRescan(w); !slices.Equal(got, want) {
			t.Fatalf("word %q: got %v want %v", w[:min(len(w), 60)], got[:min(len(got), 20)], want[:min(len(want), 20)])
		}
	}
}

// TestBPELongWord: one 1 MB word took 77 s, OpenAI's rescanning loop being quadratic
// in the word's length; the heap version takes about a second. The deadline guards
// against a return to quadratic time, with a margin of 30 times.
func TestBPELongWord(t *testing.T) {
	tok := loadCLIP(t)
	word := strings.Repeat("abcdefghij", 100_000)
	var ids []int
	hang.Within(t, 30*time.Second, "a 1 MB word", func() error { ids = tok.Encode(word); return nil })
	if len(ids) < 2+len(word)/16 || ids[0] != tok.StartID() || ids[len(ids)-1] != tok.EndID() {
		t.Fatalf("%d ids for a %d-byte word", len(ids), len(word))
	}
}

// BenchmarkBPE1MBWord times one 1 MB word through BPE, for comparison with
// BenchmarkTokenize10kPromptsCold in the same run.
func BenchmarkBPE1MBWord(b *testing.B) {
	tok := loadCLIP(b)
	word := strings.Repeat("abcdefghij", 100_000)
	for i := 0; i < b.N; i++ {
		benchSink = tok.bpe(word)
	}
}
