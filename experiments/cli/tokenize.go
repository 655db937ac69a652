package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

const tokenizeHelp = `[--vocab FILE] [--context-length N [--truncate] [--pad]] < texts.jsonl

Reads JSON lines {"text": ...} on stdin and writes JSON lines {"text": ..., "ids": [...]}
on stdout: CLIP's BPE ids with <|startoftext|> (49406) and <|endoftext|> (49407), as
OpenAI's tokenizer gives them (without ftfy's text repair). Blank lines are skipped,
as embed --texts skips them; {"text": ""} is the empty text. For plain text, one text
a line: jq -R '{text: .}' FILE | gorgoclip tokenize.

With --context-length N, a text of more than N ids is an error naming its line, or,
with --truncate, is cut to N ids ending in <|endoftext|> (clip.tokenize(truncate=True)).
--pad adds zeros up to N, as clip.tokenize does.

The vocabulary is --vocab (a file, or a directory holding one), else $GORGOCLIP_VOCAB,
else the cache's vocab/ directory ($GORGOCLIP_CACHE, default the user cache's gorgoclip/),
else OpenAI's bpe_simple_vocab_16e6.txt.gz built into gorgoclip. Accepted: OpenAI's
bpe_simple_vocab_16e6.txt.gz, Hugging Face merges.txt (+ vocab.json) or tokenizer.json.`

func init() {
	register(Command{Name: "tokenize", Summary: "turn JSON lines of text into CLIP token ids", Run: runTokenize})
}

func runTokenize(env *Env, args []string) error {
	fs := newFlags(env, "tokenize", tokenizeHelp)
	vocab := fs.String("vocab", "", "BPE vocabulary file or directory (default $GORGOCLIP_VOCAB, then the cache, then the built-in one)")
	contextLength := fs.Int("context-length", 0, "maximum ids per text, start and end included (CLIP: 77); 0: no limit")
	truncate := fs.Bool("truncate", false, "cut texts longer than --context-length instead of failing")
	pad := fs.Bool("pad", false, "pad ids with zeros to --context-length")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return Usagef("unexpected argument %q: texts come on stdin as JSON lines", fs.Arg(0))
	case *contextLength < 0:
		return Usagef("--context-length %d: want a positive length", *contextLength)
	case (*truncate || *pad) && *contextLength == 0:
		return Usagef("--truncate and --pad need --context-length")
	}
	tok, _, err := tokenizer.Open(*vocab)
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(env.Stdout, 1<<16)
	err = tokenizeLines(tok, bufio.NewReaderSize(env.Stdin, 1<<16), out, *contextLength, *truncate, *pad)
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing stdout: %w", ferr)
	}
	return err
}

// tokenizeLines streams JSON lines from in to out. Lines already written stay
// written when a later line fails, so output up to the bad line is usable.
func tokenizeLines(tok *tokenizer.Tokenizer, in *bufio.Reader, out *bufio.Writer, contextLength int, truncate, pad bool) error {
	// One encoder writing into a reused buffer: encoding/json's string escaping,
	// without the HTML escaping of <, > and & that would garble texts like "<b>".
	var textBuf bytes.Buffer
	enc := json.NewEncoder(&textBuf)
	enc.SetEscapeHTML(false)
	var rec struct {
		Text *string `json:"text"`
	}
	ids32 := make([]int32, 0, 128)
	num := make([]byte, 0, 16)
	for line := 1; ; line++ {
		b, rerr := in.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("reading stdin: %w", rerr)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			rec.Text = nil
			if err := json.Unmarshal(b, &rec); err != nil {
				if t := bytes.TrimSpace(b); t[0] != '{' && t[0] != '[' {
					return fmt.Errorf("stdin line %d: %q is not a JSON object: tokenize reads JSON lines such as {\"text\": \"a photo of a dog.\"}; "+
						"for plain text, one text a line, run jq -R '{text: .}' FILE | gorgoclip tokenize", line, shortText(string(t), 40))
				}
				return fmt.Errorf("stdin line %d: %v", line, err)
			}
			if rec.Text == nil {
				return fmt.Errorf("stdin line %d: no \"text\" string", line)
			}
			ids32 = ids32[:0]
			for _, id := range tok.Encode(*rec.Text) {
				ids32 = append(ids32, int32(id))
			}
			ids := ids32
			if contextLength > 0 {
				var err error
				if ids, err = tok.Fit(ids32, contextLength, truncate); err != nil {
					return fmt.Errorf("stdin line %d: %v (--truncate cuts it)", line, err)
				}
			}
			textBuf.Reset()
			if err := enc.Encode(*rec.Text); err != nil {
				return fmt.Errorf("stdin line %d: %v", line, err)
			}
			out.WriteString(`{"text": `)
			out.Write(bytes.TrimRight(textBuf.Bytes(), "\n"))
			out.WriteString(`, "ids": [`)
			n := len(ids)
			if pad && n < contextLength {
				n = contextLength
			}
			for i := 0; i < n; i++ {
				if i > 0 {
					out.WriteString(", ")
				}
				id := int64(0)
				if i < len(ids) {
					id = int64(ids[i])
				}
				num = strconv.AppendInt(num[:0], id, 10)
				out.Write(num)
			}
			if _, err := out.WriteString("]}\n"); err != nil {
				return fmt.Errorf("writing stdout: %w", err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

// shortText cuts s to n runes, marking the cut.
func shortText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
