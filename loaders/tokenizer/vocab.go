package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// OpenAIVocabFile is the name of OpenAI's merges file (clip/bpe_simple_vocab_16e6.txt.gz).
const OpenAIVocabFile = "bpe_simple_vocab_16e6.txt.gz"

// OpenAIVocabSHA256 is the SHA-256 of OpenAI's bpe_simple_vocab_16e6.txt.gz, against
// which gorgoclip fetch vocab checks its download.
const OpenAIVocabSHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

// VocabEnv names the environment variable that may point at the vocabulary file
// (or a directory holding one).
const VocabEnv = "GORGOCLIP_VOCAB"

// clipMerges is how many merges CLIP uses: OpenAI's code keeps lines 1..48894 of
// the file (49152-256-2), for a vocabulary of 256+256+48894+2 = 49408 ids.
const clipMerges = 49152 - 256 - 2

// vocabNames are the files FindVocab looks for, in order of preference.
var vocabNames = []string{OpenAIVocabFile, "bpe_simple_vocab_16e6.txt", "merges.txt", "tokenizer.json"}

// byteChars[b] is the printable character standing for byte b (bytes_to_unicode):
// printable Latin-1 bytes stand for themselves, the other 68 for U+0100 onwards.
// byteOrder lists the bytes in the order the vocabulary numbers them.
var (
	byteChars [256]rune
	byteOrder []byte
)

func init() {
	printable := func(b int) bool { return b >= '!' && b <= '~' || b >= 0xa1 && b <= 0xac || b >= 0xae && b <= 0xff }
	for b := 0; b < 256; b++ {
		if printable(b) {
			byteChars[b] = rune(b)
			byteOrder = append(byteOrder, byte(b))
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !printable(b) {
			byteChars[b] = rune(256 + n)
			byteOrder = append(byteOrder, byte(b))
			n++
		}
	}
}

// byteOf inverts byteChars.
func byteOf(r rune) (byte, bool) {
	if r < 256 {
		return byte(r), byteChars[r] == r
	}
	if n := int(r - 256); n < 68 {
		return byteOrder[188+n], true // 188 printable bytes come first
	}
	return 0, false
}

// Load reads a BPE vocabulary: OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip or
// plain text), a Hugging Face merges.txt, or a Hugging Face tokenizer.json (only
// its vocab and merges are used; the cleaning is always OpenAI's).
//
// For a merges file, the first line is skipped when it is a "#version" header, and
// at most 48894 merges are used, as OpenAI does. A plain-text merges file with a
// vocab.json beside it (the Hugging Face layout) takes its ids from vocab.json and
// all its merges, each of which must be in vocab.json.
func Load(path string) (*Tokenizer, error) {
	tok, err := load(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return tok, nil
}

func load(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	rd := br
	magic, _ := br.Peek(2)
	gz := bytes.Equal(magic, []byte{0x1f, 0x8b})
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		rd = bufio.NewReaderSize(zr, 1<<16)
	}
	if first, _ := rd.Peek(1); len(first) == 1 && first[0] == '{' {
		raw, err := io.ReadAll(rd)
		if err != nil {
			return nil, err
		}
		return loadTokenizerJSON(raw)
	}
	vocabPath := filepath.Join(filepath.Dir(path), "vocab.json")
	var vocab map[string]int
	if _, statErr := os.Stat(vocabPath); statErr == nil && !gz {
		if vocab, err = readVocabJSON(vocabPath); err != nil {
			return nil, err
		}
	}
	// OpenAI's file has 262144 merges of which CLIP uses the first 48894: stop
	// reading there (it also saves decompressing the rest).
	limit := clipMerges
	if vocab != nil {
		limit = -1
	}
	merges, err := parseMerges(rd, limit)
	if err != nil {
		return nil, err
	}
	tok, err := build(merges, vocab)
	if err != nil && vocab != nil {
		err = fmt.Errorf("%w (ids from %s)", err, vocabPath)
	}
	return tok, err
}

// mergeLine is one merge and the line it came from (1-based), for error messages.
type mergeLine struct {
	a, b string
	line int
}

// parseMerges reads merges text, at most limit merges when limit >= 0.
func parseMerges(r *bufio.Reader, limit int) ([]mergeLine, error) {
	var out []mergeLine
	blank := 0 // blank lines are allowed only at the end
	for n := 1; limit < 0 || len(out) < limit; n++ {
		line, err := r.ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		if line == "" && err == io.EOF {
			break
		}
		if n == 1 && (strings.HasPrefix(line, "#") || strings.Contains(line, "#version")) {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			if blank == 0 {
				blank = n
			}
		case len(f) != 2:
			return nil, fmt.Errorf("line %d: %q is not a merge (two tokens separated by a space)", n, clip(strings.TrimSpace(line), 40))
		case blank > 0:
			return nil, fmt.Errorf("line %d: blank line among the merges", blank)
		default:
			out = append(out, mergeLine{f[0], f[1], n})
		}
		if err == io.EOF {
			break
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no merges")
	}
	return out, nil
}

// readVocabJSON reads a Hugging Face vocab.json (token -> id).
func readVocabJSON(path string) (map[string]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var v map[string]int
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return v, nil
}

// loadTokenizerJSON reads the model section of a Hugging Face tokenizer.json. Its
// merges are strings "a b" in older files and pairs ["a", "b"] in newer ones.
func loadTokenizerJSON(raw []byte) (*Tokenizer, error) {
	var tj struct {
		Model struct {
			Type   string            `json:"type"`
			Vocab  map[string]int    `json:"vocab"`
			Merges []json.RawMessage `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, err
	}
	if tj.Model.Type != "BPE" || tj.Model.Vocab == nil {
		return nil, fmt.Errorf("model is %q with %d vocabulary entries, want a BPE model", tj.Model.Type, len(tj.Model.Vocab))
	}
	merges := make([]mergeLine, len(tj.Model.Merges))
	for i, m := range tj.Model.Merges {
		var s string
		var pair []string
		if json.Unmarshal(m, &s) == nil {
			pair = strings.Fields(s)
		} else if err := json.Unmarshal(m, &pair); err != nil {
			return nil, fmt.Errorf("model.merges[%d]: %s is neither \"a b\" nor [\"a\", \"b\"]", i, clip(string(m), 40))
		}
		if len(pair) != 2 {
			return nil, fmt.Errorf("model.merges[%d]: %s is not a pair", i, clip(string(m), 40))
		}
		merges[i] = mergeLine{pair[0], pair[1], i}
	}
	return build(merges, tj.Model.Vocab)
}

// build makes a Tokenizer from merges and, when vocab is nil, OpenAI's numbering:
// byte characters, the same with "</w>", each merge joined, then the two special
// tokens. Where a string occurs twice the later id wins, as in dict(zip(vocab, ...)).
func build(merges []mergeLine, vocab map[string]int) (*Tokenizer, error) {
	t := &Tokenizer{merges: make(map[uint64]merge, len(merges)), cache: map[string][]int32{}}
	encoder := vocab
	if vocab == nil {
		t.decoder = make([]string, 0, 512+len(merges)+2)
		for _, b := range byteOrder {
			t.decoder = append(t.decoder, string(byteChars[b]))
		}
		for _, b := range byteOrder {
			t.decoder = append(t.decoder, string(byteChars[b])+"</w>")
		}
		for _, m := range merges {
			t.decoder = append(t.decoder, m.a+m.b)
		}
		t.decoder = append(t.decoder, StartOfText, EndOfText)
		encoder = make(map[string]int, len(t.decoder))
		for id, s := range t.decoder {
			encoder[s] = id
		}
	} else {
		size := 0
		for s, id := range vocab {
			if id < 0 || id >= 1<<24 {
				return nil, fmt.Errorf("vocabulary id %d of %q is out of range", id, s)
			}
			size = max(size, id+1)
		}
		// Ids may leave gaps; Decode rejects them. A repeated id is an error.
		t.decoder = make([]string, size)
		seen := make([]bool, size)
		for s, id := range vocab {
			if seen[id] {
				return nil, fmt.Errorf("vocabulary id %d is used by %q and %q", id, s, t.decoder[id])
			}
			seen[id] = true
			t.decoder[id] = s
		}
	}
	lookup := func(s, what string) (int32, error) {
		id, ok := encoder[s]
		if !ok {
			return 0, fmt.Errorf("the vocabulary lacks %s %q", what, s)
		}
		return int32(id), nil
	}
	var err error
	for _, b := range byteOrder {
		c := string(byteChars[b])
		if t.byteSym[b], err = lookup(c, "byte token"); err != nil {
			return nil, err
		}
		if t.byteEnd[b], err = lookup(c+"</w>", "byte token"); err != nil {
			return nil, err
		}
	}
	for rank, m := range merges {
		id, err := lookup(m.a+m.b, fmt.Sprintf("the merge of line %d", m.line))
		if err != nil {
			return nil, err
		}
		a, okA := encoder[m.a]
		b, okB := encoder[m.b]
		if !okA || !okB {
			continue // a part no merge produces can never be adjacent in a word
		}
		t.merges[pairKey(int32(a), int32(b))] = merge{rank: int32(rank), id: id}
	}
	if t.sot, err = lookup(StartOfText, "special token"); err != nil {
		return nil, err
	}
	if t.eot, err = lookup(EndOfText, "special token"); err != nil {
		return nil, err
	}
	return t, nil
}

// FindVocab returns the BPE vocabulary file in dir (beside model weights, or in a
// download cache): the first of bpe_simple_vocab_16e6.txt.gz,
// bpe_simple_vocab_16e6.txt, merges.txt (with vocab.json) and tokenizer.json.
func FindVocab(dir string) (string, error) {
	for _, name := range vocabNames {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("tokenizer: no BPE vocabulary in %s (looked for %s)", dir, strings.Join(vocabNames, ", "))
}

// DefaultVocabDir is where gorgoclip keeps the vocabulary when no other is given:
// vocab/ under the download cache root, which is $GORGOCLIP_CACHE when set, else
// gorgoclip/ under the user cache directory ($XDG_CACHE_HOME or ~/.cache on Linux),
// as in package download.
func DefaultVocabDir() (string, error) {
	if root := os.Getenv("GORGOCLIP_CACHE"); root != "" {
		return filepath.Join(root, "vocab"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("tokenizer: %w", err)
	}
	return filepath.Join(d, "gorgoclip", "vocab"), nil
}

// Locate picks the vocabulary file: explicit when not empty, else $GORGOCLIP_VOCAB,
// else what FindVocab finds in DefaultVocabDir. A directory given explicitly or by
// the variable is searched with FindVocab. The error says how to get the file.
func Locate(explicit string) (string, error) {
	resolve := func(p, origin string) (string, error) {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("tokenizer: vocabulary %s: %w", origin, err)
		}
		if st.IsDir() {
			return FindVocab(p)
		}
		return p, nil
	}
	if explicit != "" {
		return resolve(explicit, explicit)
	}
	if env := os.Getenv(VocabEnv); env != "" {
		return resolve(env, "$"+VocabEnv+"="+env)
	}
	dir, err := DefaultVocabDir()
	if err == nil {
		if p, err := FindVocab(dir); err == nil {
			return p, nil
		}
	} else {
		dir = "the user cache directory's gorgoclip/vocab"
	}
	return "", fmt.Errorf("tokenizer: no BPE vocabulary found: run gorgoclip fetch vocab (OpenAI's %s into %s), "+
		"give its path (--vocab FILE or $%s), or put OpenAI's file (clip/ in github.com/openai/CLIP) or a "+
		"Hugging Face merges.txt and vocab.json there (gorgoclip fetch model REPO downloads them beside the weights)",
		OpenAIVocabFile, dir, VocabEnv)
}

// Open returns the tokenizer the commands use and where its vocabulary came from:
// explicit (a file, or a directory holding one) when not empty; else the first of
// dirs that holds a vocabulary (FindVocab: beside the weights); else what Locate
// finds ($GORGOCLIP_VOCAB, then the cache's vocab/ directory). With none, the error
// says how to get one (gorgoclip fetch vocab).
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
	p, err := Locate(path)
	if err != nil {
		return nil, "", err
	}
	tok, err := Load(p)
	return tok, p, err
}
