package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/datasets"
	"github.com/gorgoclip/gorgoclip/loaders/images"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

const benchHelp = `[--model ViT-B/32|RN50|...] [--precision fp32|bf16|fp16|tf32] [--batch 32] [--device cpu|cuda] [--threads N] [--iters 3] [--vocab FILE] [--pipeline N] [--json]

Times both towers of a model with random weights (clip.Random, seed 1):
--model is a preset in OpenAI's or open_clip's spelling (ViT-B/32 or ViT-B-32, RN50,
RN101, RN50x4, RN50x16, RN50x64, ViT-L-14, ViT-H-14, ...; see layers/presets).
--iters batches of --batch images (224x224 for ViT-B/32) and --iters batches of --batch
prompts, after one untimed batch of each that builds the graphs. The prompts are
"a photo of a {label}." over the ten Imagenette classes, tokenized with the vocabulary
(--vocab, $GORGOCLIP_VOCAB or the cache, as gorgoclip tokenize); without one, a fixed
synthetic batch of the same lengths (10 and 11 ids) is used and text_source says so.
Text runs stop at the longest end-of-text position, as clip.Model.EncodeTexts does.
--pipeline N also times what zeroshot and compare do with a folder of N synthetic
500x375 JPEGs: read, decode and preprocess on worker goroutines while the model
encodes, reported as pipeline_image_per_s and its fraction of the model alone
(jpeg_decoder: libjpeg-turbo in a build with the libjpeg tag, as make build does).

--precision bf16 runs the towers with bfloat16 weights and GEMMs (clip.WithPrecision;
what runs them on the CPU is reported as bf16_gemm: oneDNN in a build with it, else
the fallback); with --device cuda, fp16 (half-precision tensor cores) and tf32 too.

--threads sets GOMAXPROCS and graph.SetThreads (Go kernels and OpenBLAS threads);
0 keeps the defaults. The result is one line: images and prompts per second, the
image tower's GFLOP/s (the work it does: 8.30 GFLOP an image for ViT-B/32, whose last
block runs the class token only after its attention, 11.6 for RN50), the BLAS in
use (and as fp32_gemm what runs the float32 GEMMs: oneDNN in a build with it, else the
BLAS and the kernels OpenBLAS chose), the process's peak resident memory (VmHWM) in MB
and the peak while encoding (run_peak_rss_mb: measured from after the model is built;
a bf16 model converts each weight as it is drawn, so it is never whole in float32). For a ViT on the CPU it then
times that float32 GEMM alone on the image tower's four block products at this batch
and reports that SGEMM rate
and the fraction of it the image tower reaches (sgemm_gflop_per_s, image_vs_sgemm);
in bf16 also the bfloat16 GEMM alone on the same shapes (bf16_gemm_gflop_per_s,
image_vs_bf16_gemm).
--json prints it as a JSON object.`

func init() {
	register(Command{Name: "bench", Summary: "time the image and text towers (random weights)", Run: runBench})
}

// imagenetteLabels are Imagenette's ten classes in label order.
var imagenetteLabels = []string{"tench", "English springer", "cassette player", "chain saw", "church",
	"French horn", "garbage truck", "gas pump", "golf ball", "parachute"}

// BenchResult is what gorgoclip bench reports.
type BenchResult struct {
	Model     string `json:"model"`
	Precision string `json:"precision"`
	BLAS      string `json:"blas"`
	// FP32GEMM is what runs the float32 GEMMs (graph.FP32Backend); CPU only.
	FP32GEMM string `json:"fp32_gemm,omitempty"`
	// BF16GEMM is what runs the bfloat16 GEMMs (graph.BF16Backend); bf16 only.
	BF16GEMM   string  `json:"bf16_gemm,omitempty"`
	Batch      int     `json:"batch"`
	Threads    int     `json:"threads"`
	ImagePerS  float64 `json:"image_per_s"`
	ImageGFLOP float64 `json:"image_gflop_per_s"`
	TextPerS   float64 `json:"text_per_s"`
	TextTokens int     `json:"text_tokens"`
	TextSource string  `json:"text_source"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	// ImageCPUMS and TextCPUMS are the process's CPU milliseconds per image and per
	// prompt over the timed batches (every thread): unlike the rates, they hardly move
	// when other jobs share the cores, so they compare runs on a busy machine.
	ImageCPUMS float64 `json:"image_cpu_ms,omitempty"`
	TextCPUMS  float64 `json:"text_cpu_ms,omitempty"`
	// RunPeakRSSMB is the peak resident memory from after the model was built to the
	// end of the timed runs (0 where the peak cannot be reset).
	RunPeakRSSMB float64 `json:"run_peak_rss_mb"`
	Device       string  `json:"device"`
	// SGEMMGFLOP is the BLAS alone on the image tower's four block products at this
	// batch (graph.SGEMMRate), timed in the same run; ImageVsSGEMM is ImageGFLOP over
	// it, the fraction of that ceiling the whole image tower reaches. CPU only.
	SGEMMGFLOP   float64 `json:"sgemm_gflop_per_s,omitempty"`
	ImageVsSGEMM float64 `json:"image_vs_sgemm,omitempty"`
	// BF16GEMMGFLOP is the same for the bfloat16 GEMM of a bf16 run
	// (graph.BF16GEMMRate), and ImageVsBF16GEMM the tower's fraction of it.
	BF16GEMMGFLOP   float64 `json:"bf16_gemm_gflop_per_s,omitempty"`
	ImageVsBF16GEMM float64 `json:"image_vs_bf16_gemm,omitempty"`
	// PipelinePerS is the image throughput of a whole extraction from a folder of
	// JPEGs (decode, preprocess and encode overlapped, as zeroshot and compare run),
	// and PipelineRatio its fraction of ImagePerS; both only with --pipeline N.
	PipelinePerS  float64 `json:"pipeline_image_per_s,omitempty"`
	PipelineRatio float64 `json:"pipeline_vs_model,omitempty"`
	// JPEGDecoder names the decoder the pipeline ran (images.JPEGDecoder).
	JPEGDecoder string `json:"jpeg_decoder,omitempty"`
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
	precision := fs.String("precision", "fp32", precisionHelp)
	pipeline := fs.Int("pipeline", 0, "also time zero-shot-style extraction of this many synthetic 500x375 JPEGs from a folder (0: skip)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return Usagef("unexpected argument %q", fs.Arg(0))
	case *batch <= 0 || *iters <= 0 || *threads < 0 || *pipeline < 0:
		return Usagef("--batch, --iters and --threads must be positive")
	}
	cfg, err := layers.Preset(*model)
	if err != nil {
		return Usagef("%v", err)
	}
	if err := checkBenchSizes(cfg, *batch, *threads, *pipeline); err != nil {
		return err
	}
	prec, err := parsePrecision(*precision)
	if err != nil {
		return err
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
	r, err := Bench(cfg, *batch, *iters, tok, *pipeline, clip.WithDevice(*device), clip.WithPrecision(prec))
	if err != nil {
		return err
	}
	if w := implausible(*r); w != "" {
		fmt.Fprintln(env.Stderr, "bench: warning: "+w)
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(r)
	}
	_, err = fmt.Fprintf(env.Stdout, "%s %s (%s, batch %d, %d threads): %.2f images/s (%.1f GFLOP/s), %.1f prompts/s of %d tokens (%s), peak RSS %.0f MB (%.0f MB while encoding)\n",
		r.Model, r.Precision, r.BLAS, r.Batch, r.Threads, r.ImagePerS, r.ImageGFLOP, r.TextPerS, r.TextTokens, r.TextSource, r.PeakRSSMB, r.RunPeakRSSMB)
	if err == nil && r.SGEMMGFLOP > 0 {
		_, err = fmt.Fprintf(env.Stdout, "SGEMM (%s) alone on the block shapes: %.1f GFLOP/s; the image tower reaches %.0f%% of it\n", r.FP32GEMM, r.SGEMMGFLOP, 100*r.ImageVsSGEMM)
	}
	if err == nil && r.BF16GEMMGFLOP > 0 {
		_, err = fmt.Fprintf(env.Stdout, "bf16 GEMM (%s) alone on the block shapes: %.1f GFLOP/s; the image tower reaches %.0f%% of it\n", r.BF16GEMM, r.BF16GEMMGFLOP, 100*r.ImageVsBF16GEMM)
	}
	if err == nil && r.PipelinePerS > 0 {
		_, err = fmt.Fprintf(env.Stdout, "JPEG folder pipeline (%s): %.2f images/s, %.0f%% of the model alone\n", r.JPEGDecoder, r.PipelinePerS, 100*r.PipelineRatio)
	}
	return err
}

// implausible says why r cannot be trusted, "" when nothing shows: the whole image
// tower, attention and LayerNorm included, cannot run faster than the BLAS alone on
// its own GEMMs, so image_vs_sgemm above 1 means that the cores were slower while
// the SGEMM reference ran (another process, a frequency change).
func implausible(r BenchResult) string {
	// The ceiling is the GEMM the tower runs: SGEMM in fp32, the bf16 GEMM in bf16.
	ratio, name, gemm := r.ImageVsSGEMM, "image_vs_sgemm", "the SGEMM"
	if r.Precision == "bf16" {
		ratio, name, gemm = r.ImageVsBF16GEMM, "image_vs_bf16_gemm", "the bf16 GEMM"
	}
	if ratio <= 1 {
		return ""
	}
	return fmt.Sprintf("%s %.2f > 1: the image tower cannot beat %s alone on its own products, so the cores "+
		"were busier during one of the two timings (other processes, frequency scaling): rerun on idle cores before comparing", name, ratio, gemm)
}

// Bench times cfg's towers with random weights: iters batches of batch images and of
// batch Imagenette prompts (tokenized with tok, or synthetic when tok is nil), each
// after one untimed batch; with pipeline > 0, also the extraction of that many JPEGs
// from a folder. opts (e.g. clip.WithDevice) configure the model.
func Bench(cfg layers.Config, batch, iters int, tok *tokenizer.Tokenizer, pipeline int, opts ...clip.Option) (*BenchResult, error) {
	m, err := clip.Random(cfg, 1, append([]clip.Option{clip.WithBatchSize(batch)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	// The loading is over: return what it left to the system before measuring.
	debug.FreeOSMemory()
	loadRSS := peakRSSMB()
	canReset := resetPeakRSS()
	r := &BenchResult{Model: cfg.Name, Precision: m.Precision().String(), BLAS: graph.BLAS, Batch: batch, Threads: graph.Threads(),
		TextSource: "tokenizer", Device: m.Device()}
	if m.Precision() == graph.BF16 {
		r.BF16GEMM = graph.BF16Backend()
	}
	if m.Device() != "cpu" {
		r.BLAS = "cuBLAS"
	} else {
		r.FP32GEMM = graph.FP32Backend()
	}
	if tok == nil {
		r.TextSource = "synthetic"
	}

	res := cfg.Vision.ImageResolution
	pixels := make([]float32, batch*3*res*res)
	for i := range pixels {
		pixels[i] = float32(i%251)/125 - 1
	}
	sec, cpu, err := timeRuns(iters, func() error { _, err := m.EncodeImages(pixels, batch); return err })
	if err != nil {
		return nil, err
	}
	r.ImagePerS, r.ImageCPUMS = float64(batch)/sec, 1e3*cpu/float64(batch)
	if f, ok := m.Visual.(interface{ FLOPs() float64 }); ok {
		r.ImageGFLOP = r.ImagePerS * f.FLOPs() / 1e9
	}

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
	sec, cpu, err = timeRuns(iters, func() error { _, err := m.EncodeTexts(tokens, batch); return err })
	if err != nil {
		return nil, err
	}
	r.TextPerS, r.TextCPUMS = float64(batch)/sec, 1e3*cpu/float64(batch)
	if pipeline > 0 {
		if r.PipelinePerS, err = benchPipeline(m, cfg, batch, pipeline); err != nil {
			return nil, err
		}
		r.PipelineRatio, r.JPEGDecoder = r.PipelinePerS/r.ImagePerS, images.JPEGDecoder
	}
	r.PeakRSSMB = max(loadRSS, peakRSSMB())
	if canReset {
		r.RunPeakRSSMB = peakRSSMB()
	}
	if m.Device() == "cpu" && cfg.Vision.Kind == "vit" { // after the RSS reading: its matrices are not the model's
		rows, d := batch*cfg.Vision.Tokens(), cfg.Vision.Width
		shapes := [][3]int{{rows, 3 * d, d}, {rows, d, d}, {rows, 4 * d, d}, {rows, d, 4 * d}}
		r.SGEMMGFLOP = graph.SGEMMRate(shapes, iters)
		if r.SGEMMGFLOP > 0 {
			r.ImageVsSGEMM = r.ImageGFLOP / r.SGEMMGFLOP
		}
		if m.Precision() == graph.BF16 {
			if r.BF16GEMMGFLOP, err = graph.BF16GEMMRate(shapes, iters); err != nil {
				return nil, err
			}
			if r.BF16GEMMGFLOP > 0 {
				r.ImageVsBF16GEMM = r.ImageGFLOP / r.BF16GEMMGFLOP
			}
		}
	}
	return r, nil
}

// benchPipeline writes n synthetic 500x375 JPEGs (Imagenette's typical size) into a
// temporary image folder and times experiments.ImageFeatures over it: reading,
// decoding and preprocessing on the workers while the model encodes.
func benchPipeline(m *clip.Model, cfg layers.Config, batch, n int) (float64, error) {
	dir, err := os.MkdirTemp("", "gorgoclip-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	for i := 0; i < n; i++ {
		if err := writeSyntheticJPEG(filepath.Join(dir, "val", fmt.Sprintf("class%d", i%2), fmt.Sprintf("%04d.jpg", i)), i); err != nil {
			return 0, err
		}
	}
	ds, err := datasets.Open("imagefolder:"+dir, "test", datasets.Options{})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := experiments.ImageFeatures(m, ds, experiments.Extraction{
		Resolution: cfg.Vision.ImageResolution, Dim: cfg.EmbedDim, BatchSize: batch,
	}); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// writeSyntheticJPEG writes a smooth, photo-like 500x375 colour image (quality 90).
func writeSyntheticJPEG(path string, seed int) error {
	img := image.NewRGBA(image.Rect(0, 0, 500, 375))
	for y := 0; y < 375; y++ {
		for x := 0; x < 500; x++ {
			v := math.Sin(float64(x+seed*37)/23) + math.Cos(float64(y-seed*11)/17)
			img.Pix[img.PixOffset(x, y)+0] = uint8(128 + 60*v)
			img.Pix[img.PixOffset(x, y)+1] = uint8((x*y + seed) % 256)
			img.Pix[img.PixOffset(x, y)+2] = uint8(128 - 60*v)
			img.Pix[img.PixOffset(x, y)+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
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

// timeRuns runs f once untimed, then iters times, and returns the seconds per run, in
// wall time and in the process's CPU time.
func timeRuns(iters int, f func() error) (wall, cpu float64, err error) {
	if err := f(); err != nil {
		return 0, 0, err
	}
	start, cpu0 := time.Now(), cpuSeconds()
	for i := 0; i < iters; i++ {
		if err := f(); err != nil {
			return 0, 0, err
		}
	}
	return time.Since(start).Seconds() / float64(iters), (cpuSeconds() - cpu0) / float64(iters), nil
}

// resetPeakRSS makes VmHWM start again from the current resident memory (Linux's
// /proc/self/clear_refs), reporting whether it could.
func resetPeakRSS() bool { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil }

// Bounds on bench's sizes beyond what memory implies.
const (
	maxBenchThreads  = 1024   // GOMAXPROCS beyond this only costs memory
	maxBenchPipeline = 100000 // synthetic JPEGs written to a temporary folder (~40 KB each)
)

// checkBenchSizes refuses flag values that cannot run: a batch whose images alone,
// with one layer's activations (a lower bound of what the image tower holds), need
// more than the machine's memory, and absurd thread or pipeline counts.
func checkBenchSizes(cfg layers.Config, batch, threads, pipeline int) error {
	v := cfg.Vision
	act := v.Tokens() * v.Width * 4 // a ViT's [T,4W] MLP activations
	if v.Kind == "resnet" {
		act = (v.ImageResolution / 4) * (v.ImageResolution / 4) * v.Width * 4 // a ResNet's first stage
	}
	perImage := 4 * float64(3*v.ImageResolution*v.ImageResolution+act) // pixels, then that layer
	need := float64(batch) * perImage
	if mem := memTotal(); mem > 0 && need > float64(mem) {
		return Usagef("--batch %d needs at least %.0f GB for %s's images and activations (%.1f MB an image), more than this machine's %.0f GB of memory",
			batch, need/1e9, cfg.Name, perImage/1e6, float64(mem)/1e9)
	}
	if threads > maxBenchThreads {
		return Usagef("--threads %d: at most %d", threads, maxBenchThreads)
	}
	if pipeline > maxBenchPipeline {
		return Usagef("--pipeline %d: at most %d synthetic JPEGs", pipeline, maxBenchPipeline)
	}
	return nil
}

// memTotal returns the machine's memory in bytes (MemTotal of /proc/meminfo), or 0
// where it cannot be read.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
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
