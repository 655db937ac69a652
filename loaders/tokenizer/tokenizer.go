// Package tokenizer is CLIP's byte-level BPE tokenizer, a port of OpenAI's
// clip/simple_tokenizer.py and of clip.tokenize.
//
// Encoding follows OpenAI step by step: clean the text (see Normalize), split it
// into words with OpenAI's pattern
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// compiled case-insensitively by Python's regex module, map each word's UTF-8 bytes
// to printable characters (bytes_to_unicode), mark the last with "</w>", and merge
// pairs in the order of the merges file. Ids are those of OpenAI's vocabulary: the
// 256 byte characters, the same with "</w>", one per merge, then <|startoftext|>
// (49406) and <|endoftext|> (49407).
//
// One step is missing: OpenAI first runs ftfy.fix_text, which has no Go port. Text
// that ftfy would change is therefore tokenized as it stands: mojibake ("cafÃ©")
// stays garbled; curly quotes are kept rather than made straight, so "it’s" gives
// "it", "’", "s" where OpenAI gives "it", "'s"; text is not NFC-normalised, so a
// decomposed "e" + U+0301 is not "é"; ligatures ("ﬁ") and full-width forms ("Ａ")
// are not expanded; terminal escapes and control characters (C0 such as U+001C,
// C1, U+FEFF) are kept rather than removed. Text that ftfy leaves alone (clean
// ASCII, ordinary accented, CJK, Cyrillic or emoji text) is tokenized exactly.
//
// OpenAI's vocabulary (bpe_simple_vocab_16e6.txt.gz) is not shipped with the code:
// gorgoclip fetch vocab downloads it into the cache (DefaultVocabDir), checked
// against OpenAIVocabSHA256, and a fetched model brings its own beside the weights.
//
// The word pattern's case-insensitivity is reproduced too: "'ſ" (long s) is the
// contraction "'s", and U+0345 COMBINING GREEK YPOGEGRAMMENI matches no
// alternative (it is case-equivalent to a letter without being one), so it is
// dropped as Python's regex drops it.
package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// DefaultContextLength is CLIP's text context: 77 tokens, start and end included.
const DefaultContextLength = 77

// maxContextLength bounds context lengths so that a mistyped flag cannot ask for
// terabytes of padding; real CLIP models use 77.
const maxContextLength = 1 << 20

// Special tokens, as they appear in the vocabulary.
const (
	StartOfText = "<|startoftext|>"
	EndOfText   = "<|endoftext|>"
)

// maxCacheWords bounds the per-word BPE cache so that a long stream of distinct
// words (a large corpus through `gorgoclip tokenize`) cannot grow memory without
// limit; OpenAI's cache is unbounded, but prompts repeat few words.
const maxCacheWords = 1 << 18

// maxCachedWord bounds the words the cache keeps (in bytes): long words are rare,
// and a stream of distinct megabyte words would otherwise fill it with gigabytes.
const maxCachedWord = 256

// Tokenizer is a loaded BPE vocabulary; make one with Load (the zero value is not
// usable). It is safe for concurrent use: the per-word cache is locked.
type Tokenizer struct {
	decoder []string // id -> token as byte characters ("a</w>", "<|endoftext|>")
	byteSym [256]int32
	byteEnd [256]int32 // the byte's symbol with "</w>", used for a word's last byte
	merges  map[uint64]merge
	sot     int32
	eot     int32

	mu    sync.RWMutex
	cache map[string][]int32 // word (after cleaning) -> ids
}

// merge is one line of the merges file: its rank (lower merges first) and the id
// of the joined token.
type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// VocabSize is the number of ids (49408 for CLIP).
func (t *Tokenizer) VocabSize() int { return len(t.decoder) }

// StartID is the id of <|startoftext|> (49406 for CLIP).
func (t *Tokenizer) StartID() int { return int(t.sot) }

// EndID is the id of <|endoftext|> (49407 for CLIP). It is the largest id, which is
// why CLIP's text tower pools at the argmax of the token row.
func (t *Tokenizer) EndID() int { return int(t.eot) }

// Encode returns text's ids between <|startoftext|> and <|endoftext|>, neither
// padded nor truncated.
func (t *Tokenizer) Encode(text string) []int {
	ids := t.encode(text)
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

// encode is Encode with int32 ids.
func (t *Tokenizer) encode(text string) []int32 {
	ids := []int32{t.sot}
	splitWords(Normalize(text), func(w string) {
		ids = append(ids, t.word(w)...)
	})
	return append(ids, t.eot)
}

// Tokenize is clip.tokenize: it returns a row-major [len(texts), contextLength]
// int32 matrix of ids, zero padded. A text longer than contextLength is an error
// naming it, unless truncate is set: then it is cut to contextLength tokens and
// the last becomes <|endoftext|>.
func (t *Tokenizer) Tokenize(texts []string, contextLength int, truncate bool) ([]int32, error) {
	if contextLength < 1 || contextLength > maxContextLength {
		return nil, fmt.Errorf("tokenizer: context length %d, want 1..%d", contextLength, maxContextLength)
	}
	out := make([]int32, len(texts)*contextLength)
	for i, text := range texts {
		ids, err := t.Fit(t.encode(text), contextLength, truncate)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: text %d %q: %w", i, clip(text, 60), err)
		}
		copy(out[i*contextLength:], ids)
	}
	return out, nil
}

// Fit applies clip.tokenize's length rule to a row of ids that ends with
// <|endoftext|>: rows of at most contextLength ids are returned as they are;
// longer rows are cut to contextLength with the last id set to <|endoftext|> when
// truncate is set, and are an error otherwise. ids is never modified; the result
// shares its memory when no truncation is needed.
func (t *Tokenizer) Fit(ids []int32, contextLength int, truncate bool) ([]int32, error) {
	if contextLength < 1 || contextLength > maxContextLength {
		return nil, fmt.Errorf("context length %d, want 1..%d", contextLength, maxContextLength)
	}
	if len(ids) <= contextLength {
		return ids, nil
	}
	if !truncate {
		return nil, fmt.Errorf("%d tokens is too long for context length %d", len(ids), contextLength)
	}
	out := append([]int32(nil), ids[:contextLength]...)
	out[contextLength-1] = t.eot
	return out, nil
}

// clip shortens s to at most n runes for error messages.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "..."
}

// EOTIndex returns the position of the largest id in row, the first if it occurs
// more than once (torch.argmax), or -1 for an empty row. CLIP's text tower reads
// its output there: <|endoftext|> has the largest id.
func EOTIndex(row []int32) int {
	best := -1
	for i, id := range row {
		if best < 0 || id > row[best] {
			best = i
		}
	}
	return best
}

// EOTIndices returns EOTIndex of each row of a row-major [N, contextLength] matrix
// such as Tokenize returns.
func EOTIndices(tokens []int32, contextLength int) ([]int, error) {
	if contextLength < 1 || len(tokens)%contextLength != 0 {
		return nil, fmt.Errorf("tokenizer: %d ids do not make rows of %d", len(tokens), contextLength)
	}
	out := make([]int, len(tokens)/contextLength)
	for i := range out {
		out[i] = EOTIndex(tokens[i*contextLength : (i+1)*contextLength])
	}
	return out, nil
}

// Decode turns ids back into text as OpenAI's decode does: "</w>" becomes a space,
// special tokens are kept as text, invalid UTF-8 becomes U+FFFD. An id outside the
// vocabulary is an error.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var chars strings.Builder
	for i, id := range ids {
		if id < 0 || id >= len(t.decoder) {
			return "", fmt.Errorf("tokenizer: id %d at position %d is outside the vocabulary of %d", id, i, len(t.decoder))
		}
		if t.decoder[id] == "" {
			return "", fmt.Errorf("tokenizer: id %d at position %d is not in the vocabulary", id, i)
		}
		chars.WriteString(t.decoder[id])
	}
	raw := make([]byte, 0, chars.Len())
	for _, r := range chars.String() {
		b, ok := byteOf(r)
		if !ok {
			return "", fmt.Errorf("tokenizer: character %q of the vocabulary is not a byte character", r)
		}
		raw = append(raw, b)
	}
	return strings.ReplaceAll(toValidUTF8(raw), "</w>", " "), nil
}

// toValidUTF8 decodes b, replacing each maximal invalid subsequence with U+FFFD as
// Python's bytes.decode(errors="replace") does (Go's utf8 would replace byte by byte).
func toValidUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var s strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			s.WriteRune(r)
			b = b[n:]
			continue
		}
		s.WriteRune(utf8.RuneError)
		b = b[maximalSubpart(b):]
	}
	return s.String()
}

// maximalSubpart is the length of the longest prefix of b that starts a valid UTF-8
// sequence (at least 1), per Unicode's "maximal subpart" rule.
func maximalSubpart(b []byte) int {
	lo, hi := byte(0x80), byte(0xbf)
	var need int
	switch c := b[0]; {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		need, lo = 2, 0xa0
	case c == 0xed:
		need, hi = 2, 0x9f
	case c >= 0xe1 && c <= 0xef:
		need = 2
	case c == 0xf0:
		need, lo = 3, 0x90
	case c == 0xf4:
		need, hi = 3, 0x8f
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xbf
	}
	return n
}

// word returns the ids of one word of cleaned text, from the cache when possible.
func (t *Tokenizer) word(w string) []int32 {
	switch w {
	case StartOfText:
		return []int32{t.sot}
	case EndOfText:
		return []int32{t.eot}
	}
	t.mu.RLock()
	ids, ok := t.cache[w]
	t.mu.RUnlock()
	if ok {
		return ids
	}
	ids = t.bpe(w)
	t.mu.Lock()
	if len(t.cache) < maxCacheWords && len(w) <= maxCachedWord {
		t.cache[w] = ids
	}
	t.mu.Unlock()
	return ids
}

// bpe merges the byte symbols of w, lowest-ranked pair first, every occurrence of
// that pair left to right, until no adjacent pair is a merge (simple_tokenizer.bpe).
// Short words, nearly all of them, go through OpenAI's loop as written
// (bpeRescan); longer ones through bpeHeap, which gives the same ids in n log n
// time where the loop takes time quadratic in the word (a 1 MB word took 77 s).
func (t *Tokenizer) bpe(w string) []int32 {
	if len(w) <= rescanMax {
		return t.bpeRescan(w)
	}
	return t.bpeHeap(w)
}

// rescanMax is the longest word bpeRescan merges: up to about 16 bytes it is as
// fast as bpeHeap or faster (fewer allocations), beyond it falls far behind.
const rescanMax = 16

// bpeRescan is OpenAI's loop: find the lowest-ranked pair, merge each of its
// occurrences left to right, rescan.
func (t *Tokenizer) bpeRescan(w string) []int32 {
	if w == "" {
		return nil
	}
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
		n := 0
		for i := 0; i < len(syms); n++ {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				syms[n] = best.id
				i += 2
			} else {
				syms[n] = syms[i]
				i++
			}
		}
		syms = syms[:n]
	}
	return syms
}

// bpeHeap is bpeRescan in n log n: the pairs wait in a heap ordered by rank, then
// position, and each merge updates only its neighbours. A round takes every pair
// of the lowest rank before merging any, left to right, skipping pairs whose
// symbols an earlier merge of the round consumed, so pairs a merge creates wait for
// the next round, exactly as in the rescanning loop.
func (t *Tokenizer) bpeHeap(w string) []int32 {
	if w == "" {
		return nil
	}
	n := len(w)
	buf := make([]int32, 3*n)
	sym := buf[:n:n]
	next := buf[n : 2*n : 2*n] // the next live symbol, -1 at the end
	prev := buf[2*n:]          // the previous live symbol, -1 at the start
	for i := 0; i < n; i++ {
		sym[i], next[i], prev[i] = t.byteSym[w[i]], int32(i+1), int32(i-1)
	}
	sym[n-1], next[n-1] = t.byteEnd[w[n-1]], -1
	h := make(pairHeap, 0, n)
	push := func(at int32) { // the pair starting at symbol at, if it is a merge
		if at < 0 || next[at] < 0 {
			return
		}
		if m, ok := t.merges[pairKey(sym[at], sym[next[at]])]; ok {
			h.push(pairAt{rank: m.rank, at: at, left: sym[at], right: sym[next[at]]})
		}
	}
	for i := int32(0); i+1 < int32(n); i++ {
		push(i)
	}
	var round []pairAt
	var merged []int32
	for len(h) > 0 {
		rank := h[0].rank
		round, merged = round[:0], merged[:0]
		for len(h) > 0 && h[0].rank == rank {
			round = append(round, h.pop()) // in position order
		}
		last := int32(-1)
		for _, p := range round {
			r := next[p.at]
			if p.at == last || r < 0 || sym[p.at] != p.left || sym[r] != p.right {
				continue // stale: an earlier merge changed this pair
			}
			sym[p.at] = t.merges[pairKey(p.left, p.right)].id
			next[p.at] = next[r]
			if next[r] >= 0 {
				prev[next[r]] = p.at
			}
			next[r], prev[r], sym[r] = -1, -1, -1 // r is gone
			merged = append(merged, p.at)
			last = p.at
		}
		for _, at := range merged { // a merged symbol is never consumed in its own round
			push(prev[at])
			push(at)
		}
	}
	out := sym[:0] // the live symbols, in order, over the first slots
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, sym[i])
	}
	return out[:len(out):len(out)]
}

// pairAt is an adjacent pair that is a merge: its rank, where it starts, and the
// symbols it joined when it was found.
type pairAt struct {
	rank, at    int32
	left, right int32
}

// pairHeap is a min-heap of pairs by rank, then position.
type pairHeap []pairAt

func (h pairHeap) less(i, j int) bool {
	return h[i].rank < h[j].rank || h[i].rank == h[j].rank && h[i].at < h[j].at
}

func (h *pairHeap) push(p pairAt) {
	*h = append(*h, p)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *pairHeap) pop() pairAt {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, small := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, small) {
			small = l
		}
		if r < len(s) && s.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}

// splitWords calls fn for each match of OpenAI's word pattern in s, in order.
// Characters no alternative matches (spaces, U+0345) are skipped, as re.findall does.
func splitWords(s string, fn func(string)) {
	for i := 0; i < len(s); {
		if n := matchSpecial(s[i:]); n > 0 {
			fn(s[i : i+n])
			i += n
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsLetter(r):
			j := i + n
			for j < len(s) {
				r, m := utf8.DecodeRuneInString(s[j:])
				if !unicode.IsLetter(r) {
					break
				}
				j += m
			}
			fn(s[i:j])
			i = j
		case unicode.IsNumber(r):
			fn(s[i : i+n])
			i += n
		case isOther(r):
			j := i + n
			for j < len(s) {
				r, m := utf8.DecodeRuneInString(s[j:])
				if !isOther(r) {
					break
				}
				j += m
			}
			fn(s[i:j])
			i = j
		default:
			i += n
		}
	}
}

// isOther is [^\s\p{L}\p{N}] under IGNORECASE: besides spaces, letters and numbers
// it excludes U+0345, whose case variants (ι, Ι) are letters.
func isOther(r rune) bool {
	return !isWhiteSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r) &&
		!unicode.Is(foldLetters, r)
}

// foldLetters are the non-letters that are case-equivalent to letters (U+0345).
var foldLetters = unicode.FoldCategory["L"]

// specials are the pattern's literal alternatives, tried in order before the
// character classes.
var specials = []string{StartOfText, EndOfText, "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// matchSpecial returns the byte length of the literal alternative that s starts
// with under simple case folding (so "'ſ" is "'s"), or 0.
func matchSpecial(s string) int {
	if s == "" || (s[0] != '<' && s[0] != '\'') {
		return 0
	}
	for _, lit := range specials {
		if n := foldPrefix(s, lit); n > 0 {
			return n
		}
	}
	return 0
}

// foldPrefix returns the byte length of the prefix of s equal to lit under simple
// case folding, or 0.
func foldPrefix(s, lit string) int {
	i := 0
	for _, c := range lit {
		if i >= len(s) {
			return 0
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !foldEq(r, c) {
			return 0
		}
		i += n
	}
	return i
}

// foldEq reports whether r and c are in the same simple case-folding orbit.
func foldEq(r, c rune) bool {
	if r == c {
		return true
	}
	for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
		if f == r {
			return true
		}
	}
	return false
}
