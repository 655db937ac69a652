// Command 04-extending-layers adds architecture variants through gorgoclip's layers
// API: a different pooling of the image tower (the mean of the patch tokens instead
// of the class token), checked against the existing tower, and a new model
// configuration (patches half as large, as ViT-B/16 is to ViT-B/32) built with
// random weights and checked to run. It writes the rendered page README.md beside
// this file.
//
//	go run ./notebooks/04-extending-layers                       # tiny fixture model, Fashion-MNIST
//	go run ./notebooks/04-extending-layers --weights models/ViT-B-32 \
//	    --data imagefolder:data/imagenette2-160 --page /tmp/nb04
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	G "gorgonia.org/gorgonia"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/datasets"
	"github.com/gorgoclip/gorgoclip/loaders/images"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/fixture"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/page"
	"github.com/gorgoclip/gorgoclip/plots"
)

//go:embed main.go
var source string

type options struct {
	weights, vocab, data string
	// out is unused: everything is on the page (kept for a uniform command line).
	out string
	// page is the directory the page and its figures are written to.
	page           string
	limit          int
	stdout, stderr io.Writer
}

func main() {
	o := options{stdout: os.Stdout, stderr: os.Stderr}
	flag.StringVar(&o.weights, "weights", fixture.Weights(), "CLIP weights directory")
	flag.StringVar(&o.vocab, "vocab", fixture.Vocab(), "BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)")
	flag.StringVar(&o.data, "data", fixture.FashionMNIST, "dataset spec, e.g. imagefolder:data/imagenette2-160")
	flag.StringVar(&o.out, "out", "", "directory for results (unused: everything is on the page)")
	flag.StringVar(&o.page, "page", fixture.NotebookDir(), "directory to write README.md and figures to")
	flag.IntVar(&o.limit, "limit", 256, "test images for the pooling comparison")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "04-extending-layers:", err)
		os.Exit(1)
	}
}

// region head
// head is the end of the image tower as a graph of its own: ln_post, then the
// projection, on pooled tokens [B, D] -> features [B, E]. It is built from the
// tower's own modules, so it uses the checkpoint's weights (shared, not copied).
type head struct {
	m     *graph.Machine
	width int
}

func newHead(v *layers.VisionTransformer, batch int) (*head, error) {
	b := graph.NewBuilder()
	x := b.Input("pooled", batch, v.Config.Width) // [B, D]
	y, err := v.LnPost.Forward(b, x)              // [B, D]
	if err != nil {
		return nil, err
	}
	f, err := G.Mul(y, b.Param("visual.proj", v.Proj)) // [B, E]
	if err != nil {
		return nil, fmt.Errorf("visual.proj: %w", err)
	}
	if err := b.Output("features", f); err != nil {
		return nil, err
	}
	m, err := b.Compile()
	if err != nil {
		return nil, err
	}
	return &head{m: m, width: v.Config.Width}, nil
}

func (h *head) run(pooled []float32) ([]float32, error) {
	out, err := h.m.Run(map[string][]float32{"pooled": pooled})
	if err != nil {
		return nil, err
	}
	return out["features"].Data, nil
}

// classToken pools encoder outputs [B, T, D] as CLIP does: token 0, [B, D].
func classToken(enc []float32, batch, tokens, width int) []float32 {
	out := make([]float32, batch*width)
	for b := range batch {
		copy(out[b*width:(b+1)*width], enc[b*tokens*width:])
	}
	return out
}

// meanPatches pools encoder outputs [B, T, D] by averaging the patch tokens
// 1..T-1, as many later ViTs do instead of a class token: [B, D].
func meanPatches(enc []float32, batch, tokens, width int) []float32 {
	out := make([]float32, batch*width)
	for b := range batch {
		dst := out[b*width : (b+1)*width]
		for t := 1; t < tokens; t++ {
			row := enc[(b*tokens+t)*width:]
			for d := range dst {
				dst[d] += row[d]
			}
		}
		for d := range dst {
			dst[d] /= float32(tokens - 1)
		}
	}
	return out
}

// endregion

func run(o options) error {
	if o.page == "" {
		return fmt.Errorf("no page directory: pass --page")
	}
	p := page.New(o.page, "Extending layers: a new pooling and a new model size", o.stdout)
	p.Text(`gorgoclip's towers are built from one Go struct per module of OpenAI's clip/model.py
(layers.VisionTransformer, layers.ResidualAttentionBlock, layers.LayerNorm, ...), each adding its
nodes to a gorgonia graph through graph.Builder. This notebook uses that API twice: it adds a
different pooling to the image tower and checks it against the tower, then builds a model of a new
size from a configuration and checks that it runs.`)
	p.Text(`This page was rendered with:

- weights: %s
- data: %s, test split, %d images`,
		"`"+fixture.Describe(o.weights)+"`", "`"+fixture.Describe(o.data)+"`", o.limit)
	if o.weights == fixture.Weights() {
		p.Text(`**These are not real CLIP weights.** The default model is the tiny random-weight CLIP of the
reference fixtures: the equality checks below are exact whatever the weights, but the accuracies are
chance-level.`)
	}

	p.Section("1. The tower's intermediate outputs")
	p.Text(`clip.Model.ImageStages runs the image tower and returns any of its stages. StageEncoder is
the output of the last residual block, [B, T, D]: the class token followed by one token per patch,
before ln_post and the projection.`)
	p.Code(page.Region(source, "stages"))
	// region stages
	m, err := clip.Load(o.weights)
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	R, T, D, E := cfg.Vision.ImageResolution, cfg.Vision.Tokens(), cfg.Vision.Width, cfg.EmbedDim
	ds, err := datasets.Open(o.data, "test", datasets.Options{Limit: o.limit})
	if err != nil {
		return err
	}
	n := min(8, ds.Len())
	pixels, err := preprocess(ds, n, R)
	if err != nil {
		return err
	}
	st, err := m.ImageStages(pixels, n, clip.StageEncoder, clip.StageFeatures)
	if err != nil {
		return err
	}
	enc := st[clip.StageEncoder]
	p.Printf("%d images [%d, 3, %d, %d] -> encoder [%d, %d, %d] (T = 1 + %dx%d patches), features [%d, %d]",
		n, n, R, R, n, T, D, cfg.Vision.Grid(), cfg.Vision.Grid(), n, E)
	// endregion

	p.Section("2. A pooling head built from the tower's modules")
	p.Text(`The head reuses the tower's ln_post and proj (LayerNorm.Forward and the projection weight
bound with Builder.Param), so it runs on the checkpoint's weights. The pooling itself is a choice of
rows: CLIP takes the class token; the variant averages the patch tokens.`)
	p.Code(page.Region(source, "head"))

	p.Section("3. The class-token head reproduces the tower")
	p.Text(`Before trusting a variant, rebuild the original through the same path: pooling the class
token and running the head must give EncodeImages' features exactly, bit for bit.`)
	p.Code(page.Region(source, "check"))
	// region check
	h, err := newHead(m.Visual.(*layers.VisionTransformer), n)
	if err != nil {
		return err
	}
	viaHead, err := h.run(classToken(enc, n, T, D))
	if err != nil {
		return err
	}
	want, err := m.EncodeImages(pixels, n)
	if err != nil {
		return err
	}
	diff := maxAbsDiff(viaHead, want)
	p.Printf("class-token head vs EncodeImages: [%d, %d], max |difference| = %g", n, E, diff)
	p.Printf("ImageStages features vs EncodeImages: max |difference| = %g", maxAbsDiff(st[clip.StageFeatures], want))
	if diff != 0 {
		return fmt.Errorf("the class-token head differs from EncodeImages by %g", diff)
	}
	// endregion

	p.Section("4. Mean pooling, zero-shot")
	p.Text(`Now the variant on the whole subset, scored zero-shot with the "a photo of a {}." classifier
against the class-token features. CLIP's ln_post and proj were trained on the class token only, so
mean pooling without retraining is expected to lose accuracy with real weights; the point here is
that the variant plugs into the same evaluation.`)
	p.Code(page.Region(source, "mean"))
	// region mean
	tok, err := tokenizer.Load(o.vocab)
	if err != nil {
		return err
	}
	set := experiments.PromptSet{Name: "a photo of a {}.", Templates: []string{"a photo of a {}."}}
	cl, err := experiments.BuildClassifier(m, tok, ds.ClassNames(), set, cfg.Text.ContextLength, E)
	if err != nil {
		return err
	}
	all, err := preprocess(ds, ds.Len(), R)
	if err != nil {
		return err
	}
	encAll, err := m.ImageStages(all, ds.Len(), clip.StageEncoder)
	if err != nil {
		return err
	}
	hAll, err := newHead(m.Visual.(*layers.VisionTransformer), ds.Len())
	if err != nil {
		return err
	}
	var series []plots.Series
	labels := make([]int, ds.Len())
	for i := range labels {
		labels[i] = ds.(datasets.Labeler).Label(i)
	}
	for _, v := range []struct {
		name string
		pool func(enc []float32, batch, tokens, width int) []float32
	}{{"class token", classToken}, {"mean of patch tokens", meanPatches}} {
		x, err := hAll.run(v.pool(encAll[clip.StageEncoder], ds.Len(), T, D))
		if err != nil {
			return err
		}
		f := &experiments.Features{X: x, Y: labels, N: ds.Len(), Dim: E}
		r, err := experiments.ZeroShot(f, cl, ds.ClassNames(), set, 1)
		if err != nil {
			return err
		}
		p.Printf("%-22s zero-shot top-1 %6.2f%% on %d images", v.name, 100*r.Metrics["acc1"], f.N)
		series = append(series, plots.Series{Name: v.name, Values: fractions(r.PerClassAccuracy)})
	}
	fig, err := plots.PerClassFigure("Zero-shot accuracy per class, by pooling", ds.ClassNames(), series)
	if err != nil {
		return err
	}
	err = p.Image("Per-class zero-shot accuracy: class token against mean pooling", "pooling.png",
		func(w io.Writer) error { return fig.WriteTo(w, "png") })
	if err != nil {
		return err
	}
	// endregion

	p.Section("5. A new model size from a configuration")
	p.Text(`A model is data: layers.Config holds both towers' sizes, and Validate names every
inconsistent field. Halving the patch size of the loaded model's configuration gives four times as
many tokens, as ViT-B/16 is to ViT-B/32. clip.RandomCheckpoint fills a checkpoint of that shape with
deterministic random weights (the features mean nothing), enough to check that every module builds
and runs.`)
	p.Code(page.Region(source, "config"))
	// region config
	bad := cfg
	bad.Vision.Heads = 3 // does not divide the width
	p.Printf("invalid config: %v", bad.Validate())

	small := cfg
	small.Name = fmt.Sprintf("%s with %d px patches", nameOf(cfg), cfg.Vision.PatchSize/2)
	small.Vision.PatchSize /= 2
	if err := small.Validate(); err != nil {
		return err
	}
	ck, err := clip.RandomCheckpoint(small, 1)
	if err != nil {
		return err
	}
	m2, err := clip.New(ck)
	if err != nil {
		return err
	}
	defer m2.Close()
	start := time.Now()
	st2, err := m2.ImageStages(pixels, n, clip.StageEncoder, clip.StageFeatures)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	p.Printf("%s: %d tokens per image (was %d), encoder [%d, %d, %d], features [%d, %d]",
		small.Name, small.Vision.Tokens(), T, n, small.Vision.Tokens(), D, n, small.EmbedDim)
	h2, err := newHead(m2.Visual.(*layers.VisionTransformer), n)
	if err != nil {
		return err
	}
	viaHead2, err := h2.run(classToken(st2[clip.StageEncoder], n, small.Vision.Tokens(), D))
	if err != nil {
		return err
	}
	diff2 := maxAbsDiff(viaHead2, st2[clip.StageFeatures])
	p.Printf("class-token head vs the new tower: max |difference| = %g", diff2)
	if diff2 != 0 {
		return fmt.Errorf("the class-token head differs from the %s tower by %g", small.Name, diff2)
	}
	// endregion
	fmt.Fprintf(o.stderr, "%s: %d images in %v (first run, graph build included)\n", small.Name, n, elapsed.Round(time.Millisecond))

	path, err := p.Write()
	if err != nil {
		return err
	}
	fmt.Fprintln(o.stderr, "wrote", path)
	return nil
}

// preprocess returns the first n images of ds as CLIP pixels [n, 3, R, R].
func preprocess(ds datasets.Dataset, n, R int) ([]float32, error) {
	pixels := make([]float32, n*3*R*R)
	for i := range n {
		item, err := ds.Item(i)
		if err != nil {
			return nil, err
		}
		img, err := item.Decode()
		if err != nil {
			return nil, err
		}
		pim, err := images.FromImage(img)
		if err != nil {
			return nil, err
		}
		if err := images.Preprocess(pim, R, pixels[i*3*R*R:(i+1)*3*R*R]); err != nil {
			return nil, err
		}
	}
	return pixels, nil
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func fractions(xs []results.Float) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(x)
	}
	return out
}

func nameOf(c layers.Config) string {
	if c.Name != "" {
		return c.Name
	}
	return "the loaded model"
}
