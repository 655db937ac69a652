package cli

// Bad inputs through the whole command, in-process: every one must fail with a
// non-zero status (2 for usage errors), never as an "internal error" (a recovered
// panic, status 3), and the message must name what is wrong: the file, the weight
// key, the input line.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// biExpect checks a failed run: status want (0 means any failure status other than
// the internal-error 3), no panic, and stderr naming every string of names.
func biExpect(t *testing.T, code, want int, stderr string, names ...string) {
	t.Helper()
	switch {
	case want != 0 && code != want:
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, want, stderr)
	case want == 0 && (code == 0 || code == 3):
		t.Errorf("exit status %d, want a failure other than 3; stderr:\n%s", code, stderr)
	}
	for _, bad := range []string{"internal error", "panic", "goroutine "} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr contains %q:\n%s", bad, stderr)
		}
	}
	for _, n := range names {
		if !strings.Contains(stderr, n) {
			t.Errorf("stderr does not name %q:\n%s", n, stderr)
		}
	}
}

// biWrite writes b to dir/name and returns the path.
func biWrite(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// biNpy returns a version 1.0 .npy file with the given header dictionary text and data.
func biNpy(dict string, data []byte) []byte {
	h := dict
	h += strings.Repeat(" ", 63-(10+len(h))%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

// biFloats writes float32 [rows,cols] features, value i*0.01 + j.
func biFloats(t *testing.T, dir, name string, rows, cols int) string {
	t.Helper()
	d := make([]float32, rows*cols)
	for i := range d {
		d[i] = float32(i%cols) + 0.01*float32(i/cols)
	}
	p := filepath.Join(dir, name)
	if err := npy.WriteFloat32(p, []int{rows, cols}, d); err != nil {
		t.Fatal(err)
	}
	return p
}

// biLabels writes int64 labels 0,1,0,1,...
func biLabels(t *testing.T, dir, name string, n int) string {
	t.Helper()
	d := make([]int64, n)
	for i := range d {
		d[i] = int64(i % 2)
	}
	p := filepath.Join(dir, name)
	if err := npy.WriteInt64(p, []int{n}, d); err != nil {
		t.Fatal(err)
	}
	return p
}

// biCopyDir copies the regular files of src into a new temporary directory.
func biCopyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// biImage is a small RGB test image whose colours depend on seed.
func biImage(w, h, seed int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{uint8(x*7 + seed*40), uint8(y*5 + seed*90), uint8((x + y + seed*17) * 3), 255})
		}
	}
	return img
}

func biPNG(t *testing.T, path string, w, h, seed int) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, biImage(w, h, seed)); err != nil {
		t.Fatal(err)
	}
	return biWrite(t, filepath.Dir(path), filepath.Base(path), b.Bytes())
}

func TestBadInputNpyToProbeAndEmbed(t *testing.T) {
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	golden := testfix.Shared(t, "fixtures/clip-tiny-a/golden/pixels.npy")
	dir := t.TempDir()
	pix, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	truncPix := biWrite(t, dir, "trunc-pixels.npy", pix[:len(pix)/2])
	shortHeader := biWrite(t, dir, "short-header.npy", pix[:40])
	garbage := biWrite(t, dir, "garbage.npy", []byte("this is not an npy file at all\n"))
	empty := biWrite(t, dir, "empty.npy", nil)
	badDict := biWrite(t, dir, "bad-dict.npy", biNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", make([]byte, 32)))
	noNewline := biWrite(t, dir, "no-newline.npy", append([]byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'"), make([]byte, 8)...))
	fortran := biWrite(t, dir, "fortran.npy", biNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", make([]byte, 24)))
	bigEndian := biWrite(t, dir, "big-endian.npy", biNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", make([]byte, 24)))
	objects := biWrite(t, dir, "objects.npy", biNpy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", make([]byte, 16)))
	truncFeat := func() string {
		p := biFloats(t, dir, "feat-full.npy", 6, 4)
		b, _ := os.ReadFile(p)
		return biWrite(t, dir, "trunc-feat.npy", b[:len(b)-10])
	}()
	goodX := biFloats(t, dir, "x.npy", 6, 4)
	goodY := biLabels(t, dir, "y.npy", 6)
	floatLabels := biFloats(t, dir, "float-labels.npy", 6, 1)
	wrongSize := biFloats(t, dir, "wrong-size.npy", 2, 48) // [2,48] is not [N,3,64,64]

	probe := func(trainX, trainY, testX, testY string) []string {
		return []string{"probe", "--C", "1", "--train-features", trainX, "--train-labels", trainY, "--test-features", testX, "--test-labels", testY}
	}
	embed := func(pixels string) []string {
		return []string{"embed", "--weights", weights, "--pixels", pixels, "-o", filepath.Join(dir, "out.npy")}
	}
	cases := []struct {
		name  string
		args  []string
		names []string
	}{
		{"embed truncated data", embed(truncPix), []string{truncPix, "truncated"}},
		{"embed truncated header", embed(shortHeader), []string{shortHeader}},
		{"embed garbage", embed(garbage), []string{garbage}},
		{"embed empty file", embed(empty), []string{empty}},
		{"embed malformed dict", embed(badDict), []string{badDict}},
		{"embed no newline", embed(noNewline), []string{noNewline}},
		{"embed fortran order", embed(fortran), []string{fortran}},
		{"embed object dtype", embed(objects), []string{objects}},
		{"embed wrong shape", embed(wrongSize), []string{wrongSize}},
		{"embed missing file", embed(filepath.Join(dir, "nope.npy")), []string{filepath.Join(dir, "nope.npy")}},
		{"probe truncated train features", probe(truncFeat, goodY, goodX, goodY), []string{truncFeat, "truncated"}},
		{"probe garbage train labels", probe(goodX, garbage, goodX, goodY), []string{garbage}},
		{"probe malformed test features", probe(goodX, goodY, badDict, goodY), []string{badDict}},
		{"probe empty test labels", probe(goodX, goodY, goodX, empty), []string{empty}},
		{"probe fortran features", probe(fortran, goodY, goodX, goodY), []string{fortran}},
		{"probe big-endian features", probe(bigEndian, goodY, goodX, goodY), []string{bigEndian}},
		{"probe float labels", probe(goodX, floatLabels, goodX, goodY), []string{floatLabels}},
		{"probe missing labels file", probe(goodX, goodY, goodX, filepath.Join(dir, "nope.npy")), []string{filepath.Join(dir, "nope.npy")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run("", c.args...)
			biExpect(t, code, 0, stderr, c.names...)
		})
	}
}

func TestBadInputProbeCounts(t *testing.T) {
	dir := t.TempDir()
	x6 := biFloats(t, dir, "x6.npy", 6, 4)
	y6 := biLabels(t, dir, "y6.npy", 6)
	y5 := biLabels(t, dir, "y5.npy", 5)
	x6d3 := biFloats(t, dir, "x6d3.npy", 6, 3)
	y2d := filepath.Join(dir, "y2d.npy")
	if err := npy.WriteInt64(y2d, []int{3, 2}, []int64{0, 1, 0, 1, 0, 1}); err != nil {
		t.Fatal(err)
	}
	neg := filepath.Join(dir, "neg.npy")
	if err := npy.WriteInt64(neg, []int{6}, []int64{0, 1, -1, 1, 0, 1}); err != nil {
		t.Fatal(err)
	}
	nan := filepath.Join(dir, "nan.npy")
	nanData := make([]float32, 24)
	nanData[13] = float32(nanf())
	if err := npy.WriteFloat32(nan, []int{6, 4}, nanData); err != nil {
		t.Fatal(err)
	}
	args := func(trainX, trainY, testX, testY string) []string {
		return []string{"probe", "--C", "1", "--train-features", trainX, "--train-labels", trainY, "--test-features", testX, "--test-labels", testY}
	}
	cases := []struct {
		name  string
		args  []string
		names []string
	}{
		{"train labels fewer than features", args(x6, y5, x6, y6), []string{x6, y5}},
		{"test labels fewer than features", args(x6, y6, x6, y5), []string{x6, y5}},
		{"train and test dimensions differ", args(x6, y6, x6d3, y6), []string{x6, x6d3}},
		{"labels not 1-D", args(x6, y2d, x6, y6), []string{y2d}},
		{"negative label", args(x6, neg, x6, y6), []string{neg}},
		{"NaN feature", args(nan, y6, x6, y6), []string{nan}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run("", c.args...)
			biExpect(t, code, 0, stderr, c.names...)
		})
	}
}

func nanf() float64 {
	var z float64
	return z / z
}

func TestBadInputWeights(t *testing.T) {
	openai := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	hf := testfix.Shared(t, "fixtures/clip-tiny-a/hf")
	pixels := testfix.Shared(t, "fixtures/clip-tiny-a/golden/pixels.npy")
	out := filepath.Join(t.TempDir(), "out.npy")
	embed := func(w string) (int, string) {
		code, _, stderr := run("", "embed", "--weights", w, "--pixels", pixels, "-o", out)
		return code, stderr
	}

	t.Run("missing keys", func(t *testing.T) {
		w := biCopyDir(t, openai)
		for _, k := range []string{"visual.proj", "ln_final.bias"} {
			if err := os.Remove(filepath.Join(w, k+".npy")); err != nil {
				t.Fatal(err)
			}
		}
		code, stderr := embed(w)
		biExpect(t, code, 0, stderr, w, "missing", "visual.proj", "ln_final.bias")
	})
	t.Run("mis-shaped key", func(t *testing.T) {
		w := biCopyDir(t, openai)
		biFloats(t, w, "ln_final.weight.npy", 3, 5)
		code, stderr := embed(w)
		biExpect(t, code, 0, stderr, w, "ln_final.weight", "[3 5]", "[64]")
	})
	t.Run("mis-shaped key without config", func(t *testing.T) {
		w := biCopyDir(t, openai)
		os.Remove(filepath.Join(w, "config.json"))
		biFloats(t, w, "visual.proj.npy", 7, 2)
		code, stderr := embed(w)
		biExpect(t, code, 0, stderr, "visual.proj")
	})
	t.Run("truncated key file", func(t *testing.T) {
		w := biCopyDir(t, openai)
		p := filepath.Join(w, "visual.conv1.weight.npy")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		biWrite(t, w, "visual.conv1.weight.npy", b[:len(b)/3])
		code, stderr := embed(w)
		biExpect(t, code, 0, stderr, "visual.conv1.weight")
	})
	t.Run("malformed config", func(t *testing.T) {
		w := biCopyDir(t, openai)
		biWrite(t, w, "config.json", []byte(`{"embed_dim": `))
		code, stderr := embed(w)
		biExpect(t, code, 0, stderr, filepath.Join(w, "config.json"))
	})

	hfDir := func(t *testing.T, st []byte) string {
		w := t.TempDir()
		cfg, err := os.ReadFile(filepath.Join(hf, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		biWrite(t, w, "config.json", cfg)
		biWrite(t, w, "model.safetensors", st)
		return w
	}
	le := func(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }
	for _, c := range []struct {
		name  string
		st    []byte
		names []string
	}{
		{"safetensors header length exceeds file", append(le(1<<20), `{"a":{}}`...), []string{"model.safetensors", "header length"}},
		{"safetensors header length max uint64", append(le(^uint64(0)), `{"a":{}}`...), []string{"model.safetensors"}},
		{"safetensors shorter than its length prefix", []byte{3, 0, 0}, []string{"model.safetensors"}},
		{"safetensors header not JSON", append(le(9), `{"a": no}`...), []string{"model.safetensors"}},
		{"safetensors offsets outside data", append(le(uint64(len(biSTHeader))), biSTHeader...), []string{"model.safetensors", "logit_scale"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := hfDir(t, c.st)
			code, stderr := embed(w)
			biExpect(t, code, 0, stderr, append([]string{w}, c.names...)...)
		})
	}
	t.Run("safetensors truncated data", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(hf, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		w := hfDir(t, b[:len(b)/2])
		code, stderr := embed(w)
		biExpect(t, code, 0, stderr, w, "model.safetensors")
	})
}

// biSTHeader is a safetensors header whose one tensor points past the file's end.
var biSTHeader = `{"logit_scale":{"dtype":"F32","shape":[],"data_offsets":[0,4000]}}`

func TestBadInputImages(t *testing.T) {
	dir := t.TempDir()
	good := biPNG(t, filepath.Join(dir, "good.png"), 40, 30, 1)
	gb, _ := os.ReadFile(good)
	var jb bytes.Buffer
	if err := jpeg.Encode(&jb, biImage(40, 30, 2), nil); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"garbage.png":   biWrite(t, dir, "garbage.png", []byte("not an image")),
		"empty.png":     biWrite(t, dir, "empty.png", nil),
		"truncated.png": biWrite(t, dir, "truncated.png", gb[:len(gb)/2]),
		"truncated.jpg": biWrite(t, dir, "truncated.jpg", jb.Bytes()[:jb.Len()/2]),
		"text.jpg":      biWrite(t, dir, "text.jpg", []byte("\xff\xd8\xff but then nothing sensible")),
		"missing.png":   filepath.Join(dir, "missing.png"),
		"a directory":   dir,
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "o.npy")
			// The bad image second, so that its name (not the first one's) must be given.
			code, _, stderr := run("", "preprocess", "--size", "32", "-o", out, good, p)
			biExpect(t, code, 0, stderr, p)
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written although an image failed", out)
			}
		})
	}
}

func TestBadInputTokenizeLines(t *testing.T) {
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	cases := []struct {
		name, stdin string
		line        int
	}{
		{"malformed JSON after a blank line", "{\"text\": \"a cat\"}\n\n{\"text\": oops}\n", 3},
		{"unterminated string", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\n", 3},
		{"no text key", "{\"text\": \"a cat\"}\n{\"txt\": \"x\"}\n", 2},
		{"text not a string", "{\"text\": 5}\n", 1},
		{"not an object", "{\"text\": \"a\"}\n[\"a\"]\n", 2},
		{"trailing garbage", "{\"text\": \"a\"} junk\n", 1},
		{"too long without truncate", "{\"text\": \"a\"}\n{\"text\": \"" + strings.Repeat("cat ", 100) + "\"}\n", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(c.stdin, "tokenize", "--vocab", vocab, "--context-length", "77")
			biExpect(t, code, 0, stderr, fmt.Sprintf("line %d", c.line))
			// Lines before the bad one are still written.
			want := 0
			for _, l := range strings.Split(c.stdin, "\n")[:c.line-1] {
				if strings.TrimSpace(l) != "" {
					want++
				}
			}
			if got := strings.Count(stdout, "\n"); got != want {
				t.Errorf("%d output lines before the failure:\n%s", got, stdout)
			}
		})
	}
}

func TestBadInputUnknownFlags(t *testing.T) {
	for _, args := range [][]string{
		{"tokenize", "--bogus"},
		{"preprocess", "--bogus", "x.png"},
		{"embed", "--bogus"},
		{"probe", "--bogus"},
		{"convert", "--bogus"},
		{"fetch", "model", "--bogus", "org/name"},
		{"fetch", "dataset", "--bogus", "imagenette"},
		{"fetch", "templates", "--bogus"},
		{"fetch", "bogus-kind"},
		{"zeroshot", "--bogus"},
		{"compare", "--bogus"},
		{"report", "--bogus"},
		{"probe", "--C", "not-a-number"},
		{"compare", "--weights", "w", "--dataset", "d", "--out", "o", "--shots", "x"},
		{"no-such-command"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := run("", args...)
			biExpect(t, code, 2, stderr)
			if !strings.Contains(stderr, "bogus") && !strings.Contains(stderr, args[len(args)-1]) {
				t.Errorf("stderr does not say what was wrong:\n%s", stderr)
			}
		})
	}
}

// TestBadInputVersionUnknownFlag: version rejects flags like every other command
// (regression: it used to ignore them and exit 0).
func TestBadInputVersionUnknownFlag(t *testing.T) {
	code, _, stderr := run("", "version", "--bogus")
	biExpect(t, code, 2, stderr, "bogus")
}

// TestBadInputNpyHugeShape: a .npy header whose shape times the item size overflows
// int64 is refused naming the file (regression: it passed the truncation check, read
// as an empty array, and probe panicked).
func TestBadInputNpyHugeShape(t *testing.T) {
	dir := t.TempDir()
	hx := biWrite(t, dir, "huge-x.npy", biNpy(fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 2), }", uint64(1)<<61), nil))
	hy := biWrite(t, dir, "huge-y.npy", biNpy(fmt.Sprintf("{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }", uint64(1)<<61), nil))
	x := biFloats(t, dir, "x.npy", 4, 2)
	y := biLabels(t, dir, "y.npy", 4)
	code, _, stderr := run("", "probe", "--C", "1", "--train-features", x, "--train-labels", y, "--test-features", hx, "--test-labels", hy)
	biExpect(t, code, 0, stderr, hx)
}

// biImageFolder writes DIR/{train,val}/{a,b}/*.png (perTrain and perVal images a
// class) and returns DIR.
func biImageFolder(t *testing.T, perTrain, perVal int) string {
	dir := t.TempDir()
	for _, split := range []struct {
		name string
		n    int
	}{{"train", perTrain}, {"val", perVal}} {
		for ci, class := range []string{"circle", "square"} {
			for i := 0; i < split.n; i++ {
				biPNG(t, filepath.Join(dir, split.name, class, fmt.Sprintf("%02d.png", i)), 20+3*i, 24, ci*5+i)
			}
		}
	}
	return dir
}

// biCompare runs compare on the tiny fixture model and returns status, stderr and
// the output directory.
func biCompare(t *testing.T, dataset string, extra ...string) (int, string, string) {
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	out := t.TempDir()
	args := append([]string{"compare", "--weights", weights, "--vocab", vocab, "--dataset", "imagefolder:" + dataset,
		"--shots", "1", "--seeds", "1", "--no-full", "--C", "1", "--workers", "2", "--out", out}, extra...)
	code, _, stderr := run("", args...)
	return code, stderr, out
}

func TestBadInputCompareSkipBad(t *testing.T) {
	ds := biImageFolder(t, 3, 2)
	badVal := biWrite(t, ds, "val/square/corrupt.png", []byte("\x89PNG\r\n\x1a\n but truncated"))

	code, stderr, _ := biCompare(t, ds)
	biExpect(t, code, 1, stderr, badVal)

	code, stderr, out := biCompare(t, ds, "--skip-bad")
	if code != 0 {
		t.Fatalf("compare --skip-bad: exit %d:\n%s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cmp struct {
		ZeroShot []struct {
			Test    int      `json:"n_test"`
			Skipped []string `json:"skipped"`
		} `json:"zeroshot"`
		Probes []json.RawMessage `json:"linear_probe"`
	}
	if err := json.Unmarshal(raw, &cmp); err != nil {
		t.Fatal(err)
	}
	if len(cmp.ZeroShot) == 0 || len(cmp.Probes) == 0 {
		t.Fatalf("results.json lacks zero-shot or probe results:\n%s", raw)
	}
	for _, z := range cmp.ZeroShot {
		if len(z.Skipped) != 1 || !strings.Contains(z.Skipped[0], badVal) {
			t.Errorf("zero-shot skipped = %q, want the one entry naming %s", z.Skipped, badVal)
		}
		if z.Test != 4 {
			t.Errorf("zero-shot n_test %d, want the 4 readable images", z.Test)
		}
	}
	if !strings.Contains(stderr, "skipped 1") {
		t.Errorf("stderr does not report the skip:\n%s", stderr)
	}
}

// TestBadInputCompareSkipBadListsTrainSkips: with --skip-bad, an unreadable training
// image is named in results.json (regression: only test-split skips were listed).
func TestBadInputCompareSkipBadListsTrainSkips(t *testing.T) {
	ds := biImageFolder(t, 3, 2)
	badTrain := biWrite(t, ds, "train/circle/corrupt.png", []byte("not an image"))
	code, stderr, out := biCompare(t, ds, "--skip-bad")
	if code != 0 {
		t.Fatalf("compare --skip-bad: exit %d:\n%s", code, stderr)
	}
	raw, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(badTrain)) {
		t.Errorf("results.json does not list the skipped training image %s:\n%s", badTrain, raw)
	}
}

// TestBadInputCorruptCacheShard: a feature shard damaged outside gorgoclip (it never
// writes one partially) is reported by path, with what to do, not used.
func TestBadInputCorruptCacheShard(t *testing.T) {
	ds := biImageFolder(t, 2, 2)
	cache := t.TempDir()
	code, stderr, _ := biCompare(t, ds, "--cache", cache)
	if code != 0 {
		t.Fatalf("compare: exit %d:\n%s", code, stderr)
	}
	shards, _ := filepath.Glob(filepath.Join(cache, "*-test-*", "shard-000000.npy"))
	if len(shards) != 1 {
		t.Fatalf("test shards %q, want one", shards)
	}
	b, err := os.ReadFile(shards[0])
	if err != nil {
		t.Fatal(err)
	}
	biWrite(t, filepath.Dir(shards[0]), filepath.Base(shards[0]), b[:len(b)-7])
	// A damaged shard is recomputed, naming the file, never used.
	code, stderr, _ = biCompare(t, ds, "--cache", cache)
	if code != 0 || !strings.Contains(stderr, shards[0]) || !strings.Contains(stderr, "recomputing") || !strings.Contains(stderr, "0 shards read from the cache, 1 computed") {
		t.Errorf("compare over a truncated shard: exit %d, want 0 and a message naming %s:\n%s", code, shards[0], stderr)
	}
	if after, err := os.ReadFile(shards[0]); err != nil || !bytes.Equal(after, b) {
		t.Errorf("recomputed shard differs from the original (%v)", err)
	}
}

// TestBadInputFeatureCacheKeyUsesDatasetLocation: "imagefolder:ds" run from two
// directories with one --cache computes each dataset's own features (regression: the
// key was the spec as typed, and the second run silently reused the first's).
func TestBadInputFeatureCacheKeyUsesDatasetLocation(t *testing.T) {
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	cache := t.TempDir()
	var logs []string
	for seed, root := range []string{t.TempDir(), t.TempDir()} {
		for _, class := range []string{"a", "b"} {
			biPNG(t, filepath.Join(root, "ds", "val", class, "0.png"), 30, 30, 7*seed+len(class))
		}
		t.Chdir(root)
		code, _, stderr := run("", "zeroshot", "--weights", weights, "--vocab", vocab, "--dataset", "imagefolder:ds", "--cache", cache)
		if code != 0 {
			t.Fatalf("zeroshot in %s: exit %d:\n%s", root, code, stderr)
		}
		logs = append(logs, stderr)
	}
	if !strings.Contains(logs[1], "0 shards read from the cache, 1 computed") {
		t.Errorf("a different dataset with the same relative spec was served from the cache:\n%s", logs[1])
	}
}

// TestBadInputProbeHugeLabel: one label far beyond the number of examples is refused
// naming the labels file (regression: it sized a weight matrix for a billion classes
// and the process died out of memory).
func TestBadInputProbeHugeLabel(t *testing.T) {
	dir := t.TempDir()
	x := biFloats(t, dir, "x.npy", 4, 2)
	y := filepath.Join(dir, "big-labels.npy")
	if err := npy.WriteInt64(y, []int{4}, []int64{0, 1, 0, 1 << 30}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("", "probe", "--C", "1", "--train-features", x, "--train-labels", y, "--test-features", x, "--test-labels", biLabels(t, dir, "y.npy", 4))
	biExpect(t, code, 1, stderr, y, "1073741824")
}

// TestBadInputEmbedNaNPixels: NaN pixels give non-finite features, which embed refuses
// naming the image row, writing nothing (regression: it wrote NaN features).
func TestBadInputEmbedNaNPixels(t *testing.T) {
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	dir := t.TempDir()
	px := make([]float32, 2*3*64*64)
	px[3*64*64+5] = float32(math.NaN()) // image 1
	in := filepath.Join(dir, "nan-pixels.npy")
	if err := npy.WriteFloat32(in, []int{2, 3, 64, 64}, px); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "feats.npy")
	code, _, stderr := run("", "embed", "--weights", weights, "--pixels", in, "-o", out)
	biExpect(t, code, 1, stderr, "image 1", "non-finite")
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}
