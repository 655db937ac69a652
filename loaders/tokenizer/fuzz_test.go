package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// FuzzEncode feeds arbitrary bytes (valid UTF-8 or not) through Encode, Tokenize
// and, for plain ASCII text, Decode. Seeds are the fixture texts when
// fixtures/tokenizer/cases.jsonl is available, plus a few literals.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{
		"", "a photo of a tench", "  Hello,   WORLD!  ", "it's 'S'LL <|endoftext|>x",
		"&amp;lt;b&gt; caf\u00e9 \u0130 \u03a3\u03a3 \U0001F600", "\xff\xfe\xc3", "&#x110000;&#0;&#128;",
		strings.Repeat("word ", 100),
	} {
		f.Add(s)
	}
	if dir := testfix.SharedDir(); dir != "" {
		if fh, err := os.Open(filepath.Join(dir, "fixtures", "tokenizer", "cases.jsonl")); err == nil {
			sc := bufio.NewScanner(fh)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var c fixtureCase
				if json.Unmarshal(sc.Bytes(), &c) == nil {
					f.Add(c.Text)
				}
			}
			fh.Close()
		}
	}
	tok := loadCLIP(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		if len(ids) < 2 || ids[0] != tok.StartID() || ids[len(ids)-1] != tok.EndID() {
			t.Fatalf("Encode(%q) = %v: want <|startoftext|> ... <|endoftext|>", s, ids)
		}
		for i, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Encode(%q)[%d] = %d outside [0, %d)", s, i, id, tok.VocabSize())
			}
		}
		if _, err := tok.Decode(ids); err != nil {
			t.Fatalf("Decode(Encode(%q)): %v", s, err)
		}
		const ctx = DefaultContextLength
		rows, err := tok.Tokenize([]string{s}, ctx, true)
		if err != nil {
			t.Fatalf("Tokenize(%q, truncate): %v", s, err)
		}
		if len(rows) != ctx {
			t.Fatalf("Tokenize(%q) gave %d ids, want %d", s, len(rows), ctx)
		}
		n := min(len(ids), ctx)
		for i := 0; i < n-1; i++ {
			if int(rows[i]) != ids[i] {
				t.Fatalf("Tokenize(%q)[%d] = %d, Encode gave %d", s, i, rows[i], ids[i])
			}
		}
		if int(rows[n-1]) != tok.EndID() {
			t.Fatalf("Tokenize(%q)[%d] = %d, want <|endoftext|>", s, n-1, rows[n-1])
		}
		for i := n; i < ctx; i++ {
			if rows[i] != 0 {
				t.Fatalf("Tokenize(%q)[%d] = %d, want 0 padding", s, i, rows[i])
			}
		}
		// The text itself may hold "<|endoftext|>": the text tower pools at the first.
		firstEnd := n - 1
		for i := 1; i < n; i++ {
			if int(rows[i]) == tok.EndID() {
				firstEnd = i
				break
			}
		}
		if EOTIndex(rows) != firstEnd {
			t.Fatalf("EOTIndex of Tokenize(%q) = %d, want %d", s, EOTIndex(rows), firstEnd)
		}
		if _, err := tok.Tokenize([]string{s}, ctx, false); (err != nil) != (len(ids) > ctx) {
			t.Fatalf("Tokenize(%q, no truncate) with %d ids: err = %v", s, len(ids), err)
		}
		if !lettersAndSpaces(s) {
			return
		}
		norm := Normalize(s)
		if want := strings.ToLower(strings.Join(strings.Fields(s), " ")); norm != want {
			t.Fatalf("Normalize(%q) = %q, want %q", s, norm, want)
		}
		got, err := tok.Decode(ids[1 : len(ids)-1])
		if err != nil {
			t.Fatal(err)
		}
		// Decode turns each word's "</w>" into a space, so every word is followed by one.
		want := ""
		if norm != "" {
			want = norm + " "
		}
		if got != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
	})
}

// lettersAndSpaces reports whether s holds only ASCII letters and spaces.
func lettersAndSpaces(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && (c|0x20 < 'a' || c|0x20 > 'z') {
			return false
		}
	}
	return true
}
