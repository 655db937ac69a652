// Command 04-extending-layers adds an architecture variant the way gorgoclip's seam
// expects: a new op (the mean of the patch tokens, a gorgonia Op written here), a new
// image-tower kind that uses it (registered with layers.RegisterVision and built from
// the ViT's own modules, so it declares and loads the same weights), checked against
// an independent computation and scored zero-shot against CLIP's class-token pooling;
// then a new model size from a configuration. It writes the rendered page README.md
// beside this file.
//
//	go run ./notebooks/04-extending-layers                       # tiny fixture model, Fashion-MNIST
//	go run ./notebooks/04-extending-layers --weights models/ViT-B-32 \
//	    --data imagefolder:data/imagenette2-160 --page /tmp/nb04
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"hash"
	"hash/fnv"
	"io"
	"math"
	"os"
	"slices"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/datasets"
	"github.com/gorgoclip/gorgoclip/loaders/images"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
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
	flag.StringVar(&o.weights, "weights", fixture.Weights(), "CLIP weights directory (a ViT)")
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

// region op
// meanTokensOp averages the patch tokens of each sequence: x [B*T, D] -> [B, D], the
// mean of rows 1..T-1 of every sequence (row 0 is the class token). It is a plain
// gorgonia Op: the methods below are all gorgonia asks of one.
type meanTokensOp struct{ seq int }

func (o meanTokensOp) Arity() int { return 1 }

// Type: a matrix in, a matrix out.
func (o meanTokensOp) Type() hm.Type {
	m := G.TensorType{Dims: 2, Of: tensor.Float32}
	return hm.NewFnType(m, m)
}

// InferShape checks the input and gives [B, D].
func (o meanTokensOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, ok := in[0].(tensor.Shape)
	if !ok || len(x) != 2 || o.seq < 2 || x[0]%o.seq != 0 {
		return nil, fmt.Errorf("meanTokens: input %v is not [B*%d, D]", in[0], o.seq)
	}
	return tensor.Shape{x[0] / o.seq, x[1]}, nil
}

// Do computes the means, accumulating in float64.
func (o meanTokensOp) Do(in ...G.Value) (G.Value, error) {
	x := in[0].(tensor.Tensor)
	data, d := x.Data().([]float32), x.Shape()[1]
	b := x.Shape()[0] / o.seq
	out := make([]float32, b*d)
	acc := make([]float64, d)
	for i := range b {
		clear(acc)
		for t := 1; t < o.seq; t++ {
			for j, v := range data[(i*o.seq+t)*d : (i*o.seq+t+1)*d] {
				acc[j] += float64(v)
			}
		}
		for j, s := range acc {
			out[i*d+j] = float32(s / float64(o.seq-1))
		}
	}
	return tensor.New(tensor.WithShape(b, d), tensor.WithBacking(out)), nil
}

func (o meanTokensOp) ReturnsPtr() bool      { return false } // a new tensor every run
func (o meanTokensOp) CallsExtern() bool     { return false } // CPU only
func (o meanTokensOp) OverwritesInput() int  { return -1 }    // the input is read only
func (o meanTokensOp) String() string        { return fmt.Sprintf("MeanTokens{T=%d}", o.seq) }
func (o meanTokensOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }
func (o meanTokensOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// endregion

// region tower
// meanPoolViT is OpenAI's ViT with the class token replaced by the mean of the patch
// tokens before ln_post. It embeds the ViT's modules, so it declares, loads and
// shares exactly the same weights; only Forward differs.
type meanPoolViT struct{ *layers.VisionTransformer }

func (m meanPoolViT) Forward(b *graph.Builder, pixels *G.Node, batch int) (*layers.TowerOutputs, error) {
	out, err := m.VisionTransformer.Forward(b, pixels, batch) // everything up to the class token
	if err != nil {
		return nil, err
	}
	enc := out.Tap("encoder") // [B*T, D]
	pooled, err := G.ApplyOpWithName(meanTokensOp{seq: m.Config.Tokens()}, "visual.mean_tokens", enc.Node)
	if err != nil {
		return nil, err
	}
	if out.Pooled, err = m.LnPost.Forward(b, pooled); err != nil { // [B, D]
		return nil, err
	}
	out.Features, err = graph.Linear("visual.proj", out.Pooled, b.Param("visual.proj", m.Proj), graph.LinearOptions{InOut: true}) // [B, E]
	return out, err
}

// The kind is registered once; a config with vision kind "vit-meanpool" now builds it.
func init() {
	layers.RegisterVision("vit-meanpool", layers.VisionKind{
		Validate: layers.ValidateViT, // the same fields as a ViT
		New: func(c layers.Config, w *layers.Weights) (layers.VisionTower, error) {
			v, err := layers.NewVisionTransformer(c, w)
			return meanPoolViT{v}, err
		},
	})
}

// endregion

func run(o options) error {
	if o.page == "" {
		return fmt.Errorf("no page directory: pass --page")
	}
	p := page.New(o.page, "Extending layers: a new op, a new tower kind, a new model size", o.stdout)
	p.Text(`gorgoclip builds each tower from one Go struct per module of the reference code
(layers.VisionTransformer, layers.ModifiedResNet, layers.ResidualAttentionBlock, ...), each adding its
nodes to a gorgonia graph through graph.Builder. Three seams make new architectures a matter of
adding code rather than editing it:

- **Ops** are gorgonia Ops. gorgoclip's fused ops live in package graph, each with its CPU code and
  its CUDA kernels registered beside it; a graph built for a GPU refuses an op that has no GPU
  implementation, naming it. An op written anywhere else runs on the CPU.
- **Tower kinds** are registered with layers.RegisterVision / RegisterText and chosen by the
  config's vision.kind / text.kind ("vit", "resnet", "transformer" are built in).
- **Weights** are declared by the modules themselves (layers.Weights.Param): the same declarations
  give the key list that loading checks, the shapes, and how random checkpoints are initialised.

This notebook adds a pooling op, a tower kind that uses it, and a new model size.`)
	p.Text(`This page was rendered with:

- weights: %s
- data: %s, test split, %d images`,
		"`"+fixture.Describe(o.weights)+"`", "`"+fixture.Describe(o.data)+"`", o.limit)
	if o.weights == fixture.Weights() {
		p.Text(`**These are not real CLIP weights.** The default model is the tiny random-weight CLIP of the
reference fixtures: the checks below hold whatever the weights, but the accuracies are chance-level.`)
	}

	p.Section("1. A new op")
	p.Text(`The mean of the patch tokens, as many later ViTs pool instead of a class token. A gorgonia Op
states its arity, type and output shape, and computes its result in Do.`)
	p.Code(page.Region(source, "op"))

	p.Section("2. A new tower kind")
	p.Text(`The tower embeds the ViT's modules, so NewVisionTransformer declares its weights: the
checkpoint of a ViT loads into it unchanged. Registering the kind makes it available to every
config, checkpoint loader and command.`)
	p.Code(page.Region(source, "tower"))

	p.Section("3. The same checkpoint, the new kind")
	p.Text(`Load the checkpoint, change the config's vision kind, and build both models over the same
tensors. The weight list the new kind declares is the ViT's, key for key.`)
	p.Code(page.Region(source, "build"))
	// region build
	ck, err := weights.Load(o.weights)
	if err != nil {
		return err
	}
	if ck.Config.Vision.Kind != "vit" {
		return fmt.Errorf("%s is a %q model; this notebook extends a ViT", o.weights, ck.Config.Vision.Kind)
	}
	base, err := clip.New(ck)
	if err != nil {
		return err
	}
	defer base.Close()
	variant := *ck
	variant.Config.Vision.Kind = "vit-meanpool"
	mean, err := clip.New(&variant)
	if err != nil {
		return err
	}
	defer mean.Close()
	vitKeys, err := weights.ExpectedShapes(ck.Config)
	if err != nil {
		return err
	}
	meanKeys, err := weights.ExpectedShapes(variant.Config)
	if err != nil {
		return err
	}
	p.Printf("vit declares %d weights, vit-meanpool %d; the same keys: %v", len(vitKeys), len(meanKeys), sameKeys(vitKeys, meanKeys))
	// endregion

	p.Section("4. Check the new tower against an independent computation")
	p.Text(`The ViT's StageEncoder is the output of the last block, [B, T, D]. Averaging its patch
tokens on the host in float64, then ln_post and the projection with the checkpoint's own tensors,
must give the new tower's features.`)
	p.Code(page.Region(source, "check"))
	// region check
	cfg := ck.Config
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
	st, err := base.ImageStages(pixels, n, clip.StageEncoder)
	if err != nil {
		return err
	}
	want := hostMeanPool(st[clip.StageEncoder], n, T, D, ck.Tensors, cfg.LayerNormEps)
	got, err := mean.EncodeImages(pixels, n)
	if err != nil {
		return err
	}
	diff := maxAbsDiff(got, want)
	p.Printf("vit-meanpool tower vs host mean pooling: [%d, %d], max |difference| = %.2g", n, E, diff)
	if diff > 1e-4 {
		return fmt.Errorf("the new tower differs from the host computation by %g", diff)
	}
	// endregion

	p.Section("5. Mean pooling against the class token, zero-shot")
	p.Text(`Both models on the whole subset, scored zero-shot with the "a photo of a {}." classifier
(the text tower is shared). CLIP's ln_post and proj were trained on the class token only, so mean
pooling without retraining is expected to lose accuracy with real weights; the point is that the new
kind plugs into the same evaluation as any other.`)
	p.Code(page.Region(source, "zeroshot"))
	// region zeroshot
	tok, err := tokenizer.Load(o.vocab)
	if err != nil {
		return err
	}
	set := experiments.PromptSet{Name: "a photo of a {}.", Templates: []string{"a photo of a {}."}}
	cl, err := experiments.BuildClassifier(base, tok, ds.ClassNames(), set, cfg.Text.ContextLength, E)
	if err != nil {
		return err
	}
	all, err := preprocess(ds, ds.Len(), R)
	if err != nil {
		return err
	}
	labels := make([]int, ds.Len())
	for i := range labels {
		labels[i] = ds.(datasets.Labeler).Label(i)
	}
	var series []plots.Series
	for _, v := range []struct {
		name  string
		model *clip.Model
	}{{"class token (vit)", base}, {"mean of patch tokens (vit-meanpool)", mean}} {
		x, err := v.model.EncodeImages(all, ds.Len())
		if err != nil {
			return err
		}
		f := &experiments.Features{X: x, Y: labels, N: ds.Len(), Dim: E}
		r, err := experiments.ZeroShot(f, cl, ds.ClassNames(), set, 1)
		if err != nil {
			return err
		}
		p.Printf("%-38s zero-shot top-1 %6.2f%% on %d images", v.name, 100*r.Metrics["acc1"], f.N)
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

	p.Section("6. A new model size from a configuration")
	p.Text(`A model is data: a layers.Config (the presets in layers/presets are JSON files of it).
ParseConfig refuses fields it does not know and Validate names every inconsistent one, so a typo
cannot silently change the architecture. Halving the patch size gives four times as many tokens, as
ViT-B/16 is to ViT-B/32; clip.RandomCheckpoint fills the declared weights as the reference code
initialises them (the features mean nothing), enough to check that every module builds and runs.`)
	p.Code(page.Region(source, "config"))
	// region config
	_, err = layers.ParseConfig([]byte(`{"embed_dim": 32, "vision": {"kind": "vit", "pach_size": 8}}`))
	p.Printf("a misspelt field: %v", err)
	bad := cfg
	bad.Vision.Heads = 3 // does not divide the width
	p.Printf("an inconsistent one: %v", bad.Validate())

	small := cfg
	small.Name = fmt.Sprintf("%s with %d px patches", nameOf(cfg), cfg.Vision.PatchSize/2)
	small.Vision.PatchSize /= 2
	rck, err := clip.RandomCheckpoint(small, 1)
	if err != nil {
		return err
	}
	m2, err := clip.New(rck)
	if err != nil {
		return err
	}
	defer m2.Close()
	st2, err := m2.ImageStages(pixels, n, clip.StageEncoder, clip.StageFeatures)
	if err != nil {
		return err
	}
	p.Printf("%s: %d tokens per image (was %d), encoder %d values, features [%d, %d]",
		small.Name, small.Vision.Tokens(), T, len(st2[clip.StageEncoder]), n, len(st2[clip.StageFeatures])/n)
	// endregion

	path, err := p.Write()
	if err != nil {
		return err
	}
	fmt.Fprintln(o.stderr, "wrote", path)
	return nil
}

// hostMeanPool is the reference for the new tower, in float64: the mean of the patch
// tokens of enc [n, T, D], LayerNorm with visual.ln_post, then visual.proj [D, E].
func hostMeanPool(enc []float32, n, t, d int, w layers.Tensors, eps float32) []float32 {
	gain, bias, proj := w["visual.ln_post.weight"].Data, w["visual.ln_post.bias"].Data, w["visual.proj"]
	e := proj.Shape[1]
	out := make([]float32, n*e)
	x := make([]float64, d)
	for i := range n {
		clear(x)
		for tok := 1; tok < t; tok++ {
			for j := range d {
				x[j] += float64(enc[(i*t+tok)*d+j]) / float64(t-1)
			}
		}
		var mu, v float64
		for _, xj := range x {
			mu += xj / float64(d)
		}
		for _, xj := range x {
			v += (xj - mu) * (xj - mu) / float64(d)
		}
		for j := range x {
			x[j] = (x[j]-mu)/math.Sqrt(v+float64(eps))*float64(gain[j]) + float64(bias[j])
		}
		for k := range e {
			var s float64
			for j, xj := range x {
				s += xj * float64(proj.Data[j*e+k])
			}
			out[i*e+k] = float32(s)
		}
	}
	return out
}

func sameKeys(a, b map[string][]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, s := range a {
		if !slices.Equal(s, b[k]) {
			return false
		}
	}
	return true
}

// preprocess returns the first n images of ds as CLIP pixels [n, 3, R, R].
func preprocess(ds datasets.Dataset, n, R int) ([]float32, error) {
	pixels := make([]float32, n*3*R*R)
	for i := range n {
		item, err := ds.Item(i)
		if err != nil {
			return nil, err
		}
		pim, err := item.Pixels()
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
