package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

type tokenizeLine struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func parseTokenizeOutput(t *testing.T, out string) []tokenizeLine {
	t.Helper()
	var lines []tokenizeLine
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var r tokenizeLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output line %d %q: %v", i+1, l, err)
		}
		lines = append(lines, r)
	}
	return lines
}

func TestTokenize(t *testing.T) {
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	dog := []int{49406, 320, 1125, 539, 320, 1929, 269, 49407} // "a photo of a dog."
	for i, test := range []struct {
		stdin string
		args  []string
		want  []tokenizeLine
	}{
		{`{"text": "a photo of a dog."}` + "\n\n" + `{"text": "", "label": 3}`, nil,
			[]tokenizeLine{{"a photo of a dog.", dog}, {"", []int{49406, 49407}}}},
		{`{"text": "a photo of a dog."}`, []string{"--context-length", "10", "--pad"},
			[]tokenizeLine{{"a photo of a dog.", append(append([]int{}, dog...), 0, 0)}}},
		{`{"text": "a photo of a dog."}`, []string{"--context-length", "10"},
			[]tokenizeLine{{"a photo of a dog.", dog}}},
		{`{"text": "a photo of a dog."}`, []string{"--context-length", "5", "--truncate", "--pad"},
			[]tokenizeLine{{"a photo of a dog.", []int{49406, 320, 1125, 539, 49407}}}},
		{`{"text": "&lt;b&gt; \"x\" <b>"}`, nil,
			[]tokenizeLine{{`&lt;b&gt; "x" <b>`, []int{49406, 283, 321, 285, 257, 343, 257, 283, 321, 285, 49407}}}},
		{"", nil, nil},
	} {
		code, out, errOut := run(test.stdin, append([]string{"tokenize", "--vocab", vocab}, test.args...)...)
		if code != 0 {
			t.Errorf("test %d: exit %d: %s", i, code, errOut)
			continue
		}
		if got := parseTokenizeOutput(t, out); !reflect.DeepEqual(got, test.want) {
			t.Errorf("test %d: got %v want %v", i, got, test.want)
		}
	}
	// Texts are written as given, with no HTML escaping of < > &.
	if _, out, _ := run(`{"text": "<b> & </b>"}`, "tokenize", "--vocab", vocab); !strings.HasPrefix(out, `{"text": "<b> & </b>", "ids": [49406, `) {
		t.Errorf("output %q escapes the text", out)
	}
}

func TestTokenizeErrors(t *testing.T) {
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	long := `{"text": "` + strings.Repeat("very ", 80) + `long"}`
	for i, test := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{`{"text": "ok"}` + "\n" + `{"text": "broken` + "\n", nil, 1, "stdin line 2:"},
		{`{"text": "ok"}` + "\n" + `["text"]` + "\n", nil, 1, "stdin line 2:"},
		{`{"label": 1}`, nil, 1, `stdin line 1: no "text" string`},
		{`{"text": 5}`, nil, 1, "stdin line 1:"},
		{`{"text": "ok"}` + "\n" + long, []string{"--context-length", "77"}, 1, "stdin line 2: 83 tokens is too long for context length 77"},
		{"", []string{"--pad"}, 2, "need --context-length"},
		{"", []string{"--context-length", "-3"}, 2, "--context-length -3"},
		{"", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"", []string{"--vocab", "/nonexistent/bpe.txt.gz"}, 1, "/nonexistent/bpe.txt.gz"},
		{"a photo of a dog\n", nil, 1, `stdin line 1: "a photo of a dog" is not a JSON object: tokenize reads JSON lines`},
		{`{"text": "ok"}` + "\n" + `"a photo"` + "\n", nil, 1, "stdin line 2: \"\\\"a photo\\\"\" is not a JSON object"},
	} {
		args := append([]string{"tokenize", "--vocab", vocab}, test.args...)
		code, _, errOut := run(test.stdin, args...)
		if code != test.code || !strings.Contains(errOut, test.want) {
			t.Errorf("test %d: got exit %d, stderr %q want exit %d and %q", i, code, errOut, test.code, test.want)
		}
	}
}

// TestTokenizeFixture runs every case of OpenAI's tokenizer fixture through the
// command, found through $GORGOCLIP_VOCAB.
func TestTokenizeFixture(t *testing.T) {
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	raw, err := os.ReadFile(testfix.Shared(t, "fixtures/tokenizer/cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var want []tokenizeLine
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var c tokenizeLine
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	t.Setenv("GORGOCLIP_VOCAB", vocab)
	code, out, errOut := run(string(raw), "tokenize")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := parseTokenizeOutput(t, out)
	if len(got) != len(want) {
		t.Fatalf("got %d lines want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("line %d: got %v want %v", i+1, got[i], want[i])
		}
	}
}
