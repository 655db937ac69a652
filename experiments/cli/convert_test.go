package cli

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
)

func TestConvertHF(t *testing.T) {
	hf := testfix.Shared(t, "fixtures/clip-tiny-a/hf")
	ref, err := weights.Load(testfix.Shared(t, "fixtures/clip-tiny-a/openai"))
	if err != nil {
		t.Fatal(err)
	}
	// The source: the HF fixture plus tokenizer files beside it.
	from := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors"} {
		if err := os.Symlink(filepath.Join(hf, name), filepath.Join(from, name)); err != nil {
			t.Fatal(err)
		}
	}
	tok := map[string]string{"merges.txt": "#version: 0.2\na b\n", "vocab.json": `{"a": 0}`}
	for name, body := range tok {
		if err := os.WriteFile(filepath.Join(from, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	to := filepath.Join(t.TempDir(), "converted")
	code, _, errOut := run("", "convert", "--from", from, "--to", to)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "(hf-safetensors)") {
		t.Errorf("stderr does not name the source format: %q", errOut)
	}
	ck, err := weights.Load(to)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Format != weights.FormatGorgoclip || !reflect.DeepEqual(ck.Config, ref.Config) {
		t.Fatalf("got %s %+v want %s %+v", ck.Format, ck.Config, weights.FormatGorgoclip, ref.Config)
	}
	if len(ck.Tensors) != len(ref.Tensors) {
		t.Fatalf("got %d tensors want %d", len(ck.Tensors), len(ref.Tensors))
	}
	for k, w := range ref.Tensors {
		g := ck.Tensors[k]
		if g == nil || len(g.Data) != len(w.Data) {
			t.Fatalf("%s: got %v want shape %v", k, g, w.Shape)
		}
		for i := range w.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
				t.Fatalf("%s[%d]: got %v want %v", k, i, g.Data[i], w.Data[i])
			}
		}
	}
	for name, body := range tok {
		b, err := os.ReadFile(filepath.Join(to, name))
		if err != nil || string(b) != body {
			t.Errorf("%s: got %q (%v) want %q", name, b, err, body)
		}
	}
	if _, err := os.Stat(filepath.Join(to, "bpe_simple_vocab_16e6.txt.gz")); !os.IsNotExist(err) {
		t.Errorf("copied a tokenizer file that was not there: %v", err)
	}
}

func TestConvertErrors(t *testing.T) {
	empty := t.TempDir()
	for i, test := range []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"convert", "--to", "x"}, 2, "--from DIR is required"},
		{[]string{"convert", "--from", empty}, 2, "--to DIR is required"},
		{[]string{"convert", "--from", empty, "--to", filepath.Join(empty, "o"), "extra"}, 2, "unexpected arguments"},
		{[]string{"convert", "--from", empty, "--to", empty}, 2, "are the same directory"},
		{[]string{"convert", "--from", filepath.Join(empty, "nope"), "--to", "x"}, 1, "no such file"},
		{[]string{"convert", "--from", empty, "--to", filepath.Join(empty, "o")}, 1, "no checkpoint found"},
	} {
		code, _, errOut := run("", test.args...)
		if code != test.code || !strings.Contains(errOut, test.wantErr) {
			t.Errorf("test %d: got exit %d, stderr %q want exit %d and %q", i, code, errOut, test.code, test.wantErr)
		}
	}
}
