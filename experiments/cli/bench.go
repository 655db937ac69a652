package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

const benchHelp = `[--model ViT-B/32] [--batch 32] [--device cpu|cuda] [--threads N] [--iters 3] [--vocab FILE] [--json]

Times both towers of a model with random weights (clip.RandomCheckpoint, seed 1):
--iters batches of --batch images (224x224 for ViT-B/32) and --iters batches of --batch
prompts, after one untimed batch of each that builds the graphs. The prompts are
"a photo of a {label}." over the ten Imagenette classes, tokenized with the vocabulary
(--vocab, $GORGOCLIP_VOCAB or the cache, as gorgoclip tokenize); without one, a fixed
synthetic batch of the same lengths (10 and 11 ids) is used and text_source says so.
Text runs stop at the longest end-of-text position, as clip.Model.EncodeTexts does.

--threads sets GOMAXPROCS and graph.SetThreads (Go kernels and OpenBLAS threads);
0 keeps the defaults. The result is one line: images and prompts per second, the
image tower's GFLOP/s (8.82 GFLOP an image for ViT-B/32), the BLAS in use and the
process's peak resident memory (VmHWM) in MB. --json prints it as a JSON object.`

func init() {
	register(Command{Name: "bench", Summary: "time the image and text towers (random weights)", Run: runBench})
}

// imagenetteLabels are Imagenette's ten classes in label order.
var imagenetteLabels = []string{"tench", "English springer", "cassette player", "chain saw", "church",
	"French horn", "garbage truck", "gas pump", "golf ball", "parachute"}

// BenchResult is what gorgoclip bench reports.
type BenchResult struct {
	Model      string  `json:"model"`
	BLAS       string  `json:"blas"`
	Batch      int     `json:"batch"`
	Threads    int     `json:"threads"`
	ImagePerS  float64 `json:"image_per_s"`
	ImageGFLOP float64 `json:"image_gflop_per_s"`
	TextPerS   float64 `json:"text_per_s"`
	TextTokens int     `json:"text_tokens"`
	TextSource string  `json:"text_source"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	Device     string  `json:"device"`
}

func runBench(env *Env, args []string) error {
	fs := newFlags(env, "bench", benchHelp)
	model := fs.String("model", "ViT-B/32", "model preset")
	batch := fs.Int("batch", clip.DefaultBatchSize, "images or prompts per graph run")
	threads := fs.Int("threads", 0, "cores to use (GOMAXPROCS, Go kernels, OpenBLAS); 0: defaults")
	iters := fs.Int("iters", 3, "timed batches per tower")
	vocab := fs.String("vocab", "", "BPE vocabulary (default $GORGOCLIP_VOCAB, then the cache; none: synthetic tokens)")
	asJSON := fs.Bool("json", false, "print the result as one JSON line")
	device := fs.String("device", "cpu", deviceHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return Usagef("unexpected argument %q", fs.Arg(0))
	case *batch <= 0 || *iters <= 0 || *threads < 0:
		return Usagef("--batch, --iters and --threads must be positive")
	}
	cfg, err := layers.Preset(*model)
	if err != nil {
		return Usagef("%v", err)
	}
	if *threads > 0 {
		runtime.GOMAXPROCS(*threads)
	}
	graph.SetThreads(*threads)
	var tok *tokenizer.Tokenizer
	if path, err := tokenizer.Locate(*vocab); err == nil {
		if tok, err = tokenizer.Load(path); err != nil {
			return err
		}
	} else if *vocab != "" {
		return err
	}
	r, err := Bench(cfg, *batch, *iters, tok, clip.WithDevice(*device))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(r)
	}
	_, err = fmt.Fprintf(env.Stdout, "%s (%s, batch %d, %d threads): %.2f images/s (%.1f GFLOP/s), %.1f prompts/s of %d tokens (%s), peak RSS %.0f MB\n",
		r.Model, r.BLAS, r.Batch, r.Threads, r.ImagePerS, r.ImageGFLOP, r.TextPerS, r.TextTokens, r.TextSource, r.PeakRSSMB)
	return err
}

// Bench times cfg's towers with random weights: iters batches of batch images and of
// batch Imagenette prompts (tokenized with tok, or synthetic when tok is nil), each
// after one untimed batch. opts (e.g. clip.WithDevice) configure the model.
func Bench(cfg layers.Config, batch, iters int, tok *tokenizer.Tokenizer, opts ...clip.Option) (*BenchResult, error) {
	ck, err := clip.RandomCheckpoint(cfg, 1)
	if err != nil {
		return nil, err
	}
	m, err := clip.New(ck, append([]clip.Option{clip.WithBatchSize(batch)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	r := &BenchResult{Model: cfg.Name, BLAS: graph.BLAS, Batch: batch, Threads: graph.Threads(), TextSource: "tokenizer", Device: m.Device()}
	if m.Device() != "cpu" {
		r.BLAS = "cuBLAS"
	}
	if tok == nil {
		r.TextSource = "synthetic"
	}

	res := cfg.Vision.ImageResolution
	pixels := make([]float32, batch*3*res*res)
	for i := range pixels {
		pixels[i] = float32(i%251)/125 - 1
	}
	sec, err := timeRuns(iters, func() error { _, err := m.EncodeImages(pixels, batch); return err })
	if err != nil {
		return nil, err
	}
	r.ImagePerS = float64(batch) / sec
	r.ImageGFLOP = r.ImagePerS * imageGFLOP(cfg)

	ctx := cfg.Text.ContextLength
	tokens := make([]int32, batch*ctx)
	for i := 0; i < batch; i++ {
		ids := syntheticPrompt(i, cfg.Text.VocabSize)
		if tok != nil {
			if ids, err = tok.Fit(intsTo32(tok.Encode("a photo of a "+imagenetteLabels[i%len(imagenetteLabels)]+".")), ctx, true); err != nil {
				return nil, err
			}
		}
		copy(tokens[i*ctx:], ids)
		r.TextTokens = max(r.TextTokens, len(ids))
	}
	sec, err = timeRuns(iters, func() error { _, err := m.EncodeTexts(tokens, batch); return err })
	if err != nil {
		return nil, err
	}
	r.TextPerS = float64(batch) / sec
	r.PeakRSSMB = peakRSSMB()
	return r, nil
}

// syntheticPrompt stands in for a tokenized prompt when no vocabulary is at hand: start,
// 8 or 9 word ids, end (10 or 11 ids, the lengths of "a photo of a {label}.").
func syntheticPrompt(i, vocab int) []int32 {
	n := 10 + i%2
	ids := make([]int32, n)
	ids[0], ids[n-1] = int32(vocab-2), int32(vocab-1)
	for j := 1; j < n-1; j++ {
		ids[j] = int32((i*131 + j*977) % (vocab - 2))
	}
	return ids
}

func intsTo32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

// timeRuns runs f once untimed, then iters times, and returns the seconds per run.
func timeRuns(iters int, f func() error) (float64, error) {
	if err := f(); err != nil {
		return 0, err
	}
	start := time.Now()
	for i := 0; i < iters; i++ {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds() / float64(iters), nil
}

// imageGFLOP counts the image tower's multiply-adds (x2) per image: the patch
// embedding, and per block 24*T*D^2 for the four projections plus 4*T^2*D for
// attention (8.82 GFLOP for ViT-B/32).
func imageGFLOP(cfg layers.Config) float64 {
	v := cfg.Vision
	t, d, g := float64(v.Tokens()), float64(v.Width), float64(v.Grid())
	patch := 2 * g * g * 3 * float64(v.PatchSize*v.PatchSize) * d
	block := 24*t*d*d + 4*t*t*d
	return (patch + float64(v.Layers)*block + 2*d*float64(cfg.EmbedDim)) / 1e9
}

// peakRSSMB reads the process's peak resident set (VmHWM) from /proc/self/status; 0
// where there is no /proc.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
