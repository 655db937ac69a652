package progress

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
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
	if strings.Contains(out, "\r") {
		t.Errorf("a log that is no terminal got carriage returns: %q", out)
	}
	var nilBar *Bar
	nilBar.Add(1) // must not panic
	nilBar.Detail("x")
	nilBar.Done()
}

// TestTerminal checks that on a terminal the bar is one line redrawn in place, with
// messages written above it and the final line ending it.
func TestTerminal(t *testing.T) {
	var buf bytes.Buffer
	log := &Log{w: &buf, tty: true}
	b := New(log, "probes", 3, "fits")
	b.Add(1)
	fmt.Fprintln(log, "probe k=1 seed=0 top-1 50.00%")
	b.last = b.last.Add(-Every) // as if time had passed
	b.Detail("sweep C=%g", 0.1)
	b.Done()
	want := "\r\x1b[Kprobes: 1/3 (33%) fits" // first status
	out := buf.String()
	if !strings.HasPrefix(out, want) {
		t.Fatalf("output %q does not start with %q", out, want)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("want the message and the final line, each ended by a newline, got %q", lines)
	}
	if !strings.Contains(lines[0], "\r\x1b[Kprobe k=1 seed=0 top-1 50.00%") {
		t.Errorf("the message does not replace the status line: %q", lines[0])
	}
	final := regexp.MustCompile(`\r\x1b\[Kprobes: 1/3 \(33%\) fits, [0-9.]+ fits/s, [0-9.]+s$`)
	if !strings.Contains(lines[1], "; sweep C=0.1") || !final.MatchString(lines[1]) {
		t.Errorf("status redraw and final line: %q", lines[1])
	}
	if f, err := os.CreateTemp(t.TempDir(), "log"); err == nil {
		defer f.Close()
		if IsTerminal(f) || IsTerminal(&buf) {
			t.Error("a file or a buffer taken for a terminal")
		}
	}
	t.Setenv("COLUMNS", "30")
	log.setStatus(strings.Repeat("x", 50))
	if got := buf.String()[strings.LastIndex(buf.String(), "\x1b[K")+3:]; len([]rune(got)) != 29 {
		t.Errorf("status %q not cut to the terminal width", got)
	}
}
