package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/progress"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/featcache"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

func init() {
	register(Command{
		Name:    "embed",
		Summary: "encode images or prompts with a CLIP checkpoint, writing features [N,E] to .npy",
		Run:     runEmbed,
	})
}

// runEmbed implements `gorgoclip embed --weights DIR (--pixels X.npy | --tokens T.npy |
// --images FILE... | --texts FILE) -o OUT.npy`: projected, not normalised, features.
func runEmbed(env *Env, args []string) error {
	fs := newFlags(env, "embed", "--weights DIR (--pixels X.npy | --tokens T.npy | --images FILE... | --texts FILE) -o OUT.npy")
	weightsDir := fs.String("weights", "", "checkpoint directory (OpenAI .npy, Hugging Face safetensors or pytorch_model.bin)")
	pixels := fs.String("pixels", "", "float32 .npy of CLIP-normalised images [N,3,R,R] (or [3,R,R])")
	tokens := fs.String("tokens", "", "integer .npy of token ids [M,L], zero padded, L <= the context length")
	var imageList listFlag
	fs.Var(&imageList, "images", "image files (comma-separated or repeated; further file arguments are images too)")
	texts := fs.String("texts", "", "text file of prompts, one a line, blank lines skipped as tokenize skips them (\"-\" reads stdin)")
	vocab := fs.String("vocab", "", "BPE vocabulary for --texts (default: beside --weights, $GORGOCLIP_VOCAB, the user cache, else the built-in one)")
	out := fs.String("o", "", "output .npy, float32 [N,E]")
	batch := fs.Int("batch", clip.DefaultBatchSize, "images or prompts per graph run")
	pooled := fs.Bool("pooled", false, "write the pre-projection features [N,D] (ln_post / ln_final output) instead")
	attention := fs.String("attention", "", "also write every block's softmax attention [layers,N,heads,T,T] to this .npy (text: all L positions run)")
	device := fs.String("device", "cpu", deviceHelp)
	precision := fs.String("precision", "fp32", precisionHelp)
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "images decoded in parallel (--images)")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	imageList = append(imageList, rest...)
	sources := 0
	for _, set := range []bool{*pixels != "", *tokens != "", len(imageList) > 0, *texts != ""} {
		if set {
			sources++
		}
	}
	switch {
	case *weightsDir == "":
		return Usagef("--weights DIR is required")
	case *out == "":
		return Usagef("-o OUT.npy is required")
	case sources != 1:
		return Usagef("give exactly one of --pixels, --tokens, --images, --texts (file arguments count as --images)")
	case *batch < 1:
		return Usagef("--batch %d must be at least 1", *batch)
	case *workers < 1:
		return Usagef("--workers %d must be at least 1", *workers)
	}
	prec, err := parsePrecision(*precision)
	if err != nil {
		return err
	}

	start := time.Now()
	log := progress.NewLog(env.Stderr)
	var bar *progress.Bar // set once the input is known to span several batches
	m, err := clip.Load(*weightsDir, clip.WithBatchSize(*batch), clip.WithDevice(*device), clip.WithPrecision(prec),
		clip.WithProgress(func(done, _ int) { bar.Set(done) }))
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	stage, width := clip.StageFeatures, cfg.EmbedDim

	var feats []float32
	var n int
	var what string
	var att attentionMaps
	if *pixels != "" || len(imageList) > 0 {
		if *pooled {
			stage = clip.StagePooled
		}
		r := cfg.Vision.ImageResolution
		var data []float32
		if *pixels != "" {
			p, err := npy.ReadFloat32(*pixels)
			if err != nil {
				return err
			}
			shape := p.Shape
			if len(shape) == 3 {
				shape = append([]int{1}, shape...)
			}
			if len(shape) != 4 || shape[1] != 3 || shape[2] != r || shape[3] != r {
				return fmt.Errorf("%s: pixels have shape %v, the model wants [N,3,%d,%d] (gorgoclip preprocess --size %d)", *pixels, p.Shape, r, r, r)
			}
			data, n = p.Data, shape[0]
		} else {
			fmt.Fprintf(log, "embed: preprocessing %d image(s) at %dx%d\n", len(imageList), r, r)
			if data, err = m.Transform().Files(imageList, *workers); err != nil {
				return err
			}
			n = len(imageList)
		}
		if n == 0 {
			return fmt.Errorf("no images in the input")
		}
		what = "images"
		bar = newEmbedBar(log, n, *batch, what)
		res, err := m.ImageStages(data, n, withAttention(stage, *attention)...)
		if err != nil {
			return err
		}
		feats = res[stage]
		att = attentionMaps{res[clip.StageAttention], cfg.Vision.Layers, cfg.Vision.Heads}
	} else {
		if *pooled {
			stage = clip.StagePooled
		}
		var ids []int32
		if *tokens != "" {
			t, err := npy.ReadInt64(*tokens)
			if err != nil {
				return err
			}
			if len(t.Shape) != 2 || t.Shape[0] == 0 || t.Shape[1] == 0 || t.Shape[1] > cfg.Text.ContextLength {
				return fmt.Errorf("%s: tokens have shape %v, want [M,L] with 1 <= L <= %d", *tokens, t.Shape, cfg.Text.ContextLength)
			}
			ids = make([]int32, len(t.Data))
			for i, v := range t.Data {
				if v < 0 || v >= int64(cfg.Text.VocabSize) {
					return fmt.Errorf("%s: token %d at row %d is outside the vocabulary [0,%d)", *tokens, v, i/t.Shape[1], cfg.Text.VocabSize)
				}
				ids[i] = int32(v)
			}
			n = t.Shape[0]
		} else {
			prompts, blank, err := readPrompts(env, *texts)
			if err != nil {
				return err
			}
			if len(prompts) == 0 {
				return fmt.Errorf("%s: no prompts", *texts)
			}
			if blank > 0 {
				fmt.Fprintf(log, "embed: skipped %d blank line(s) of %s: row i of the output is its i-th non-blank line\n", blank, *texts)
			}
			tok, _, err := tokenizer.Open(*vocab, *weightsDir)
			if err != nil {
				return err
			}
			if ids, err = tok.Tokenize(prompts, cfg.Text.ContextLength, true); err != nil {
				return err
			}
			n = len(prompts)
		}
		what = "prompts"
		bar = newEmbedBar(log, n, *batch, what)
		res, err := m.TextStages(ids, n, withAttention(stage, *attention)...)
		if err != nil {
			return err
		}
		feats = res[stage]
		att = attentionMaps{res[clip.StageAttention], cfg.Text.Layers, cfg.Text.Heads}
	}
	width = len(feats) / n // the pooled width depends on the tower (ResNet: 32x its width)
	if r, c := featcache.FirstNonFinite(feats, width); r >= 0 {
		return fmt.Errorf("%s %d gives a non-finite feature (%v at column %d): check the input; %s not written", what[:len(what)-1], r, feats[r*width+c], c, *out)
	}
	if err := npy.WriteFloat32(*out, []int{n, width}, feats); err != nil {
		return err
	}
	if *attention != "" {
		if err := att.write(*attention, n); err != nil {
			return err
		}
	}
	el := time.Since(start).Seconds()
	fmt.Fprintf(log, "embed: %d %s -> %s [%d,%d] in %.1fs (%.2f %s/s)\n", n, what, *out, n, width, el, float64(n)/el, what)
	return nil
}

// newEmbedBar returns a progress bar for n items, nil when they fit in one batch.
func newEmbedBar(log *progress.Log, n, batch int, what string) *progress.Bar {
	if n <= batch {
		return nil
	}
	return progress.New(log, "embed", n, what)
}

// maxPromptLine bounds a line of --texts: a prompt is at most 77 tokens, so a longer
// line is a file that is not one prompt a line (and would only be truncated).
const maxPromptLine = 1 << 20

// readPrompts returns the non-blank lines of path ("-" for stdin) without line
// endings, and how many blank (or all-space) lines it skipped, as tokenize skips
// them. A line over maxPromptLine bytes is an error naming the file and line.
func readPrompts(env *Env, path string) (prompts []string, blank int, err error) {
	var r io.Reader = env.Stdin
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, err
		}
		defer f.Close()
		r, name = f, path
	}
	br := bufio.NewReaderSize(r, 64*1024)
	for line := 1; ; line++ {
		var b []byte
		for {
			chunk, isPrefix, err := br.ReadLine()
			if err == io.EOF && len(b) == 0 {
				return prompts, blank, nil
			}
			if err != nil && err != io.EOF {
				return nil, 0, fmt.Errorf("%s: line %d: %w", name, line, err)
			}
			if len(b)+len(chunk) > maxPromptLine {
				return nil, 0, fmt.Errorf("%s:%d: line longer than %d MiB: --texts wants one prompt a line (a prompt is at most 77 tokens)", name, line, maxPromptLine>>20)
			}
			b = append(b, chunk...)
			if !isPrefix || err == io.EOF {
				break
			}
		}
		if s := string(b); strings.TrimSpace(s) == "" {
			blank++
		} else {
			prompts = append(prompts, s)
		}
	}
}
