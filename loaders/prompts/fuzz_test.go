package prompts

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// FuzzParseOpenAI feeds arbitrary text to the prompts.md parser: no panic, every
// error starts with a line number of the text, every set it returns is usable.
func FuzzParseOpenAI(f *testing.F) {
	block := func(code string) string { return "## X\n\n```bash\n" + code + "\n```\n" }
	for _, s := range []string{
		miniPrompts, "", "# nothing\n", "## X\n\nno code\n", "## X\n```bash\nclasses = []\n",
		block("classes = ['a', ['b', \"c\\\\\"]]\ntemplates = ['{} x', \"{c}\",]  # c"),
		block("classes = [[[]]]\ntemplates = ['{}']"),
		block("classes = ['a\\q']"), block("classes = ['a\n']"), block("x = 'a'"),
		"## A\r\n```\r\nclasses = ['a']\r\ntemplates = ['{}']\r\n```\r\n## B\n",
	} {
		f.Add(s)
	}
	// The first sections of OpenAI's prompts.md, read from the shared fixtures.
	if dir := testfix.SharedDir(); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "clip", "prompts.md")); err == nil {
			s, n := string(b), 0
			for i := 0; i < len(s); i++ {
				if strings.HasPrefix(s[i:], "\n## ") {
					if n++; n == 4 {
						s = s[:i+1]
						break
					}
				}
			}
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		sets, err := ParseOpenAI(text)
		if err != nil {
			lines := strings.Count(strings.ReplaceAll(text, "\r\n", "\n"), "\n") + 1
			num, _, ok := strings.Cut(err.Error(), ": ")
			n, perr := strconv.Atoi(num)
			if !ok || perr != nil || n < 1 || n > lines {
				t.Fatalf("error %q does not start with a line number in [1, %d]", err, lines)
			}
			return
		}
		if len(sets) == 0 {
			t.Fatal("no sets and no error")
		}
		for _, s := range sets {
			if len(s.Templates) == 0 {
				t.Fatalf("set %s has no templates", s.Name)
			}
			for _, tp := range s.Templates {
				if !HasPlaceholder(tp) {
					t.Fatalf("set %s: template %q has no placeholder", s.Name, tp)
				}
			}
			for i, c := range s.Classes {
				if len(c) == 0 || slices.Contains(c, "") {
					t.Fatalf("set %s: class %d is %q", s.Name, i, c)
				}
				s.Prompts(i)
			}
		}
	})
}
