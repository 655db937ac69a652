package tokenizer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

var (
	clipOnce sync.Once
	clipTok  *Tokenizer
	clipErr  error
)

// loadCLIP loads OpenAI's merges file once for all tests.
func loadCLIP(tb testing.TB) *Tokenizer {
	tb.Helper()
	path := testfix.Shared(tb, "clip/"+OpenAIVocabFile)
	clipOnce.Do(func() { clipTok, clipErr = Load(path) })
	if clipErr != nil {
		tb.Fatal(clipErr)
	}
	return clipTok
}

type fixtureCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func readCases(tb testing.TB) []fixtureCase {
	tb.Helper()
	f, err := os.Open(testfix.Shared(tb, "fixtures/tokenizer/cases.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var cases []fixtureCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c fixtureCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			tb.Fatalf("cases.jsonl line %d: %v", len(cases)+1, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return cases
}

func TestVocabulary(t *testing.T) {
	tok := loadCLIP(t)
	for i, test := range []struct{ got, want int }{
		{tok.VocabSize(), 49408},
		{tok.StartID(), 49406},
		{tok.EndID(), 49407},
		{len(tok.merges), clipMerges},
	} {
		if test.got != test.want {
			t.Errorf("test %d: got %d want %d", i, test.got, test.want)
		}
	}
}

// TestFixtureCases checks every case that OpenAI's tokenizer produced, id for id.
func TestFixtureCases(t *testing.T) {
	tok := loadCLIP(t)
	cases := readCases(t)
	matched := 0
	for i, c := range cases {
		got := tok.Encode(c.Text)
		if reflect.DeepEqual(got, c.IDs) {
			matched++
			continue
		}
		if len(cases)-matched <= 5 {
			t.Errorf("case %d %q: got %v want %v", i, c.Text, got, c.IDs)
		}
	}
	t.Logf("%d of %d fixture cases match", matched, len(cases))
	if matched != len(cases) || len(cases) < 1000 {
		t.Errorf("%d of %d fixture cases match", matched, len(cases))
	}
}

// TestGoldenTokens checks Tokenize against clip.tokenize(prompts, truncate=True).
func TestGoldenTokens(t *testing.T) {
	tok := loadCLIP(t)
	raw, err := os.ReadFile(testfix.Shared(t, "fixtures/clip-tiny-a/golden/prompts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var prompts []string
	if err := json.Unmarshal(raw, &prompts); err != nil {
		t.Fatal(err)
	}
	want, err := npy.ReadInt64(testfix.Shared(t, "fixtures/clip-tiny-a/golden/tokens.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want.Shape, []int{len(prompts), DefaultContextLength}) {
		t.Fatalf("tokens.npy shape %v, want [%d %d]", want.Shape, len(prompts), DefaultContextLength)
	}
	got, err := tok.Tokenize(prompts, DefaultContextLength, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		row := got[i*DefaultContextLength : (i+1)*DefaultContextLength]
		for j, id := range row {
			if int64(id) != want.Data[i*DefaultContextLength+j] {
				t.Errorf("test %d: prompt %q: got %v want %v", i, clip(prompts[i], 30), row, want.Data[i*DefaultContextLength:(i+1)*DefaultContextLength])
				break
			}
		}
	}
	// Without truncate the long prompt is an error naming it.
	if _, err := tok.Tokenize(prompts, DefaultContextLength, false); err == nil || !strings.Contains(err.Error(), "text 12 \"a photo of a very") {
		t.Errorf("Tokenize without truncate: got error %v, want one naming text 12", err)
	}
}

func TestTruncateAndPad(t *testing.T) {
	tok := loadCLIP(t)
	for i, test := range []struct {
		text     string
		length   int
		truncate bool
		want     []int32
		err      bool
	}{
		{"a photo of a dog", 8, false, []int32{49406, 320, 1125, 539, 320, 1929, 49407, 0}, false},
		{"a photo of a dog", 7, false, []int32{49406, 320, 1125, 539, 320, 1929, 49407}, false},
		{"a photo of a dog", 6, false, nil, true},
		{"a photo of a dog", 6, true, []int32{49406, 320, 1125, 539, 320, 49407}, false},
		{"a photo of a dog", 1, true, []int32{49407}, false},
		{"a photo of a dog", 0, true, nil, true},
		{"a photo of a dog", 1 << 40, true, nil, true},
		{"", 3, false, []int32{49406, 49407, 0}, false},
	} {
		got, err := tok.Tokenize([]string{test.text}, test.length, test.truncate)
		if (err != nil) != test.err {
			t.Errorf("test %d: got error %v want error %v", i, err, test.err)
			continue
		}
		if !reflect.DeepEqual(got, test.want) {
			t.Errorf("test %d: got %v want %v", i, got, test.want)
		}
	}
	// Fit leaves its argument alone.
	ids := []int32{49406, 1, 2, 3, 49407}
	if _, err := tok.Fit(ids, 3, true); err != nil || ids[2] != 2 {
		t.Errorf("Fit modified its input: %v (err %v)", ids, err)
	}
}

func TestEOTIndex(t *testing.T) {
	for i, test := range []struct {
		row  []int32
		want int
	}{
		{[]int32{49406, 320, 49407, 0, 0}, 2},
		{[]int32{49406, 49407, 49407, 0}, 1},
		{[]int32{5}, 0},
		{nil, -1},
	} {
		if got := EOTIndex(test.row); got != test.want {
			t.Errorf("test %d: got %d want %d", i, got, test.want)
		}
	}
	got, err := EOTIndices([]int32{49406, 49407, 0, 49406, 320, 49407}, 3)
	if err != nil || !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("EOTIndices: got %v, %v want [1 2]", got, err)
	}
	if _, err := EOTIndices([]int32{1, 2, 3}, 2); err == nil {
		t.Error("EOTIndices accepted 3 ids in rows of 2")
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	tok := loadCLIP(t)
	for i, text := range []string{
		"a photo of a dog.",
		"it's a dog's life; they've said we'll see",
		"café crème brûlée 日本語のテキスト 🐶",
		"3.14159 and 1,000,000",
	} {
		ids := tok.Encode(text)
		got, err := tok.Decode(ids[1 : len(ids)-1])
		if err != nil {
			t.Fatal(err)
		}
		// Decoding puts a space after each word; OpenAI's decode does the same.
		if got, want := strings.Join(strings.Fields(got), ""), strings.ReplaceAll(text, " ", ""); got != want {
			t.Errorf("test %d: got %q want %q", i, got, want)
		}
	}
	if got, _ := tok.Decode([]int{49406, 320, 1929, 49407}); got != "<|startoftext|>a dog <|endoftext|>" {
		t.Errorf("Decode with specials: got %q", got)
	}
	// "é" is two bytes, c3 a9; alone, c3 is one invalid sequence.
	if got, _ := tok.Decode([]int{int(tok.byteSym[0xc3])}); got != "\ufffd" {
		t.Errorf("Decode of a lone lead byte: got %q want U+FFFD", got)
	}
	if _, err := tok.Decode([]int{49408}); err == nil || !strings.Contains(err.Error(), "id 49408 at position 0") {
		t.Errorf("Decode of an id past the vocabulary: got error %v", err)
	}
}

func TestMaximalSubpart(t *testing.T) {
	for i, test := range []struct {
		in   string
		want string
	}{
		{"a\xe2\x82b", "a\ufffdb"},             // truncated 3-byte sequence: one replacement
		{"\xf0\x9f\x90", "\ufffd"},             // truncated 4-byte sequence
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"}, // surrogate: ED A0 is not a valid start
		{"\xff\xfe", "\ufffd\ufffd"},
		{"ok", "ok"},
	} {
		if got := toValidUTF8([]byte(test.in)); got != test.want {
			t.Errorf("test %d: got %q want %q", i, got, test.want)
		}
	}
}

// TestNormalize checks the clean-up against values printed by Python 3.11
// (html.unescape twice, regex \s collapse, str.strip, str.lower).
func TestNormalize(t *testing.T) {
	for i, test := range []struct{ in, want string }{
		{"A   Photo\tof a\nDOG.", "a photo of a dog."},
		{"&amp;amp; &lt;b&gt;", "& <b>"}, // unescaped twice
		{"&ampx &amp &notit; &notin;", "&x & ¬it; ∉"},
		{"&#65;&#x42;&#X43 &#0; &#128; &#129; &#1; &#xD800; &#1114112; &#99999999999999;", "abc \ufffd € \u0081 \ufffd \ufffd \ufffd"},
		{"&#xFFFE;x&#xFDD0;&#11;&#13;", "x"}, // dropped; CR becomes a space, then stripped
		{"&#; &#x; &; &unknown; & x", "&#; &#x; &; &unknown; & x"},
		{"&NotEqualTilde; &nGt;", "\u2242\u0338 \u226b\u20d2"},
		{"&AMP &Eacute;", "& é"}, // lowercased after unescaping
		{"\x1c a\x1db \x1f", "a\x1db"},
		{"a\u00a0\u2003\u3000b\u200bc", "a b\u200bc"},
		{"İSTANBUL ΟΔΟΣ ΣΑ Σ.", "i\u0307stanbul οδος σα σ."},
		{"ΑΣ' x", "ας' x"},
		{"", ""},
	} {
		if got := Normalize(test.in); got != test.want {
			t.Errorf("test %d: got %q want %q", i, got, test.want)
		}
	}
}

// TestSplitWords checks the word pattern against Python's regex.findall with
// re.IGNORECASE (regex 2024).
func TestSplitWords(t *testing.T) {
	for i, test := range []struct {
		in   string
		want []string
	}{
		{"it's a dog's", []string{"it", "'s", "a", "dog", "'s"}},
		{"it'ſ", []string{"it", "'ſ"}},
		{"a\u0345b \u0345", []string{"a", "b"}},
		{"x\x1cy", []string{"x", "\x1c", "y"}},
		{"a\u200bb", []string{"a", "\u200b", "b"}},
		{"i\u0307", []string{"i", "\u0307"}},
		{"<|ſtartoftext|>", []string{"<|ſtartoftext|>"}},
		{"ab\u2160\u2170", []string{"ab", "\u2160", "\u2170"}},
		{"2024!'s", []string{"2", "0", "2", "4", "!'", "s"}},
		{"x.<|endoftext|>", []string{"x", ".<|", "endoftext", "|>"}},
		{"<|endoftext|><|endoftext|>", []string{"<|endoftext|>", "<|endoftext|>"}},
		{"we'll 'LL", []string{"we", "'ll", "'LL"}},
	} {
		var got []string
		splitWords(test.in, func(w string) { got = append(got, w) })
		if !reflect.DeepEqual(got, test.want) {
			t.Errorf("test %d: got %q want %q", i, got, test.want)
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := loadCLIP(t)
	cases := readCases(t)
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < len(cases); i += 2 {
				if got := tok.Encode(cases[i].Text); !reflect.DeepEqual(got, cases[i].IDs) {
					errs <- fmt.Sprintf("goroutine %d case %d: got %v want %v", g, i, got, cases[i].IDs)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestLoadFormats checks that a plain merges file, a Hugging Face merges.txt with
// vocab.json and a tokenizer.json give the same ids as the gzip file.
func TestLoadFormats(t *testing.T) {
	ref := loadCLIP(t)
	dir := t.TempDir()
	// Plain text: the decompressed OpenAI file, header and all.
	var lines []string
	lines = append(lines, "#version: 0.2")
	ranked := make([]string, len(ref.merges))
	for k, m := range ref.merges {
		ranked[m.rank] = ref.decoder[int32(k>>32)] + " " + ref.decoder[int32(uint32(k))]
	}
	lines = append(lines, ranked...)
	plain := filepath.Join(dir, "plain", "bpe_simple_vocab_16e6.txt")
	hfMerges := filepath.Join(dir, "hf", "merges.txt")
	for _, p := range []string{plain, hfMerges} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vocab := map[string]int{}
	for id, s := range ref.decoder {
		vocab[s] = id
	}
	vj, _ := json.Marshal(vocab)
	if err := os.WriteFile(filepath.Join(dir, "hf", "vocab.json"), vj, 0o644); err != nil {
		t.Fatal(err)
	}
	tj, _ := json.Marshal(map[string]any{"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": ranked}})
	tjPath := filepath.Join(dir, "tj", "tokenizer.json")
	os.MkdirAll(filepath.Dir(tjPath), 0o755)
	if err := os.WriteFile(tjPath, tj, 0o644); err != nil {
		t.Fatal(err)
	}
	text := "a photo of the hard to see Granny Smith apple. naïve façade über straße 🐶"
	want := ref.Encode(text)
	for i, p := range []string{plain, hfMerges, tjPath} {
		found, err := FindVocab(filepath.Dir(p))
		if err != nil || found != p {
			t.Errorf("test %d: FindVocab got %q, %v want %q", i, found, err, p)
		}
		tok, err := Load(p)
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if got := tok.Encode(text); !reflect.DeepEqual(got, want) || tok.VocabSize() != 49408 {
			t.Errorf("test %d: got %v (vocab %d) want %v", i, got, tok.VocabSize(), want)
		}
	}
	// A vocab.json that lacks a merge's product is an error naming the line.
	delete(vocab, "photo</w>")
	vj, _ = json.Marshal(vocab)
	os.WriteFile(filepath.Join(dir, "hf", "vocab.json"), vj, 0o644)
	if _, err := Load(hfMerges); err == nil || !strings.Contains(err.Error(), `"photo</w>"`) || !strings.Contains(err.Error(), "line ") {
		t.Errorf("vocab.json without photo</w>: got error %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i, test := range []struct {
		path string
		want string
	}{
		{filepath.Join(dir, "missing.txt"), "missing.txt"},
		{write("bad.txt", "#version: 0.2\ni n\nt h e\n"), "line 3"},
		{write("empty.txt", "#version: 0.2\n"), "no merges"},
		{write("gap.txt", "i n\n\nt h\n"), "line 2: blank line"},
		{write("bad.gz", "\x1f\x8b garbage"), "bad.gz"},
		{write("tokenizer.json", `{"model": {"type": "WordPiece", "vocab": {}}}`), "BPE"},
		{write("t2.json", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [1]}}`), "model.merges[0]"},
	} {
		_, err := Load(test.path)
		if err == nil || !strings.HasPrefix(err.Error(), "tokenizer: ") || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got error %v want one containing %q", i, err, test.want)
		}
	}
	if _, err := FindVocab(t.TempDir()); err == nil || !strings.Contains(err.Error(), OpenAIVocabFile) {
		t.Errorf("FindVocab of a directory without a vocabulary: got %v", err)
	}
}

func TestLocate(t *testing.T) {
	path := testfix.Shared(t, "clip/"+OpenAIVocabFile)
	cache := t.TempDir()
	t.Setenv("GORGOCLIP_CACHE", cache)
	t.Setenv(VocabEnv, "")
	if _, err := Locate(""); err == nil || !strings.Contains(err.Error(), OpenAIVocabFile) || !strings.Contains(err.Error(), filepath.Join(cache, "vocab")) {
		t.Errorf("Locate with nothing: got error %v", err)
	}
	// The cache directory is searched like a weights directory.
	os.MkdirAll(filepath.Join(cache, "vocab"), 0o755)
	cached := filepath.Join(cache, "vocab", "merges.txt")
	os.WriteFile(cached, []byte("i n\n"), 0o644)
	if got, err := Locate(""); err != nil || got != cached {
		t.Errorf("Locate from the cache: got %q, %v want %q", got, err, cached)
	}
	t.Setenv(VocabEnv, filepath.Dir(path))
	if got, err := Locate(""); err != nil || got != path {
		t.Errorf("Locate from $%s: got %q, %v want %q", VocabEnv, got, err, path)
	}
	if got, err := Locate("/nonexistent/vocab.gz"); err == nil {
		t.Errorf("Locate of a missing explicit file: got %q", got)
	}
}

// Example shows the ids of a zero-shot prompt: [49406 320 1125 539 320 1929 269
// 49407 0 0] and the end-of-text position 7 (TestTruncateAndPad checks the same).
func Example() {
	tok, err := Load(filepath.Join(testfix.SharedDir(), "clip", OpenAIVocabFile))
	if err != nil {
		fmt.Println(err)
		return
	}
	ids, _ := tok.Tokenize([]string{"a photo of a dog."}, 10, false)
	fmt.Println(ids, EOTIndex(ids))
}
