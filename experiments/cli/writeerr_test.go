package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// TestStdoutWriteErrors: `zeroshot` without --out printed its results to stdout
// without checking the write, so `> /dev/full` exited 0 with nothing written. A
// failed write to stdout now fails every command, naming the cause.
func TestStdoutWriteErrors(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full here: ", err)
	}
	defer full.Close()
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	root := t.TempDir()
	for i, class := range []string{"a", "b"} {
		biPNG(t, filepath.Join(root, "val", class, "0.png"), 30, 30, i)
	}
	for i, test := range []struct {
		stdin string
		args  []string
	}{
		{"", []string{"zeroshot", "--weights", weights, "--vocab", vocab, "--dataset", "imagefolder:" + root}},
		{"", []string{"version"}},
		{`{"text": "a photo"}` + "\n", []string{"tokenize", "--vocab", vocab}},
	} {
		var stderr bytes.Buffer
		code := Main(test.args, strings.NewReader(test.stdin), full, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "no space left on device") {
			t.Errorf("test %d (%s): exit %d, stderr %q; want exit 1 naming the full device", i, test.args[0], code, stderr.String())
		}
	}
}
