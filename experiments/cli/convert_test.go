package cli

import (
	"fmt"
	"math"
	"os"
	"os/exec"
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

// scaledCopy saves the checkpoint at src with every tensor doubled into a new
// gorgoclip directory: a second model of the same shape, so that a mix of the two
// would load without complaint.
func scaledCopy(t *testing.T, src string) (*weights.Checkpoint, string) {
	t.Helper()
	ck, err := weights.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ck.Tensors {
		for i := range v.Data {
			v.Data[i] *= 2
		}
	}
	dir := filepath.Join(t.TempDir(), "doubled")
	if err := weights.Save(ck, dir); err != nil {
		t.Fatal(err)
	}
	return ck, dir
}

// sameWeights reports the first tensor of got that differs from want.
func sameWeights(got, want *weights.Checkpoint) error {
	for k, w := range want.Tensors {
		g := got.Tensors[k]
		if g == nil || len(g.Data) != len(w.Data) {
			return fmt.Errorf("%s: missing or mis-sized", k)
		}
		for i := range w.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
				return fmt.Errorf("%s[%d]: got %v want %v", k, i, g.Data[i], w.Data[i])
			}
		}
	}
	return nil
}

// TestConvertInterruptedKeepsOldModel: a conversion that died halfway (here: the
// file-size limit stops it while it writes token_embedding.weight, after five
// smaller tensors) left those five of the new model beside the old model's others,
// with the old config, and that mix loaded silently. The output is now built in a
// scratch directory and replaces --to whole, or not at all.
func TestConvertInterruptedKeepsOldModel(t *testing.T) {
	bin := krBinary(t)
	oa := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	old, err := weights.Load(oa)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "model")
	if code, _, errOut := run("", "convert", "--from", oa, "--to", to); code != 0 {
		t.Fatalf("first conversion: exit %d: %s", code, errOut)
	}
	doubled, from := scaledCopy(t, oa)
	// 8 MiB of file size: every tensor but token_embedding.weight (12.6 MB) fits.
	cmd := exec.Command("sh", "-c", `ulimit -f 16384 && exec "$@"`, "sh", bin, "convert", "--from", from, "--to", to)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "token_embedding.weight") {
		t.Fatalf("the conversion did not fail at token_embedding.weight: %v\n%s", err, out)
	}
	ck, err := weights.Load(to)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameWeights(ck, old); err != nil {
		t.Fatalf("after the failed conversion --to is no longer the old model: %v", err)
	}
	// The next conversion finishes and leaves no scratch directory behind.
	if code, _, errOut := run("", "convert", "--from", from, "--to", to); code != 0 {
		t.Fatalf("second conversion: exit %d: %s", code, errOut)
	}
	if ck, err = weights.Load(to); err != nil || sameWeights(ck, doubled) != nil {
		t.Fatalf("second conversion: %v, %v", err, sameWeights(ck, doubled))
	}
	if ents, _ := os.ReadDir(filepath.Dir(to)); len(ents) != 1 {
		t.Errorf("left %v beside %s", ents, to)
	}
}

// TestConvertCleansKilledRuns: the scratch directory of a conversion killed with
// SIGKILL (no deferred cleanup) is removed by the next conversion beside it; a --to
// holding files convert did not write is refused, since it is replaced whole.
func TestConvertCleansKilledRuns(t *testing.T) {
	oa := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	parent := t.TempDir()
	host, _ := os.Hostname()
	// PID 2^22+1 is beyond Linux's pid_max, so no process has it.
	stale := filepath.Join(parent, ".model.convert-"+strings.NewReplacer("-", "_", "/", "_").Replace(host)+"-4194305-1")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, "ln_final.bias.npy"), []byte("half"), 0o644)
	to := filepath.Join(parent, "model")
	if code, _, errOut := run("", "convert", "--from", oa, "--to", to); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale scratch directory kept: %v", err)
	}
	os.WriteFile(filepath.Join(to, "notes.txt"), []byte("mine"), 0o644)
	code, _, errOut := run("", "convert", "--from", oa, "--to", to)
	if code != 2 || !strings.Contains(errOut, "holds notes.txt, which convert did not write") {
		t.Errorf("foreign file in --to: exit %d, %s", code, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(to, "notes.txt")); string(b) != "mine" {
		t.Errorf("notes.txt lost")
	}
}
