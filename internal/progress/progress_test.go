package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestBar(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "embed", 10, "img")
	b.Add(4) // the first Add always prints
	b.Add(6)
	b.Done()
	out := buf.String()
	for _, want := range []string{"embed: 4/10 (40%) img", "ETA", "embed: 10/10 (100%) img"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	var nilBar *Bar
	nilBar.Add(1) // must not panic
	nilBar.Done()
}
