// Command 01-zero-shot-imagenette retraces the article "Zero-shot Image
// Classification with OpenAI's CLIP" step by step with gorgoclip's exported API:
// labels, prompts, tokens, text embeddings, normalisation, one image, its
// embedding, scores, prediction, and accuracy over a whole split. It prints what
// the article shows at each step and writes the rendered page README.md beside
// this file.
//
//	go run ./notebooks/01-zero-shot-imagenette                  # tiny fixture model, Fashion-MNIST
//	go run ./notebooks/01-zero-shot-imagenette --weights models/ViT-B-32 \
//	    --data imagefolder:data/imagenette2-160 --limit 0 --out results/nb01 --page /tmp/nb01
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"image"
	"io"
	"math"
	"os"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/datasets"
	"github.com/gorgoclip/gorgoclip/loaders/images"
	"github.com/gorgoclip/gorgoclip/loaders/prompts"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/fixture"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/page"
	"github.com/gorgoclip/gorgoclip/plots"
	"github.com/gorgoclip/gorgoclip/probes"
)

//go:embed main.go
var source string

// options are the notebook's inputs; main fills them from flags.
type options struct {
	weights, vocab, data string
	// out receives results that are not part of the page (unused here, kept for
	// a uniform command line).
	out string
	// page is the directory the page and its figures are written to.
	page     string
	template string
	limit    int
	seed     uint64
	stdout   io.Writer
	stderr   io.Writer
}

func main() {
	o := options{stdout: os.Stdout, stderr: os.Stderr}
	flag.StringVar(&o.weights, "weights", fixture.Weights(), "CLIP weights directory")
	flag.StringVar(&o.vocab, "vocab", fixture.Vocab(), "BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)")
	flag.StringVar(&o.data, "data", fixture.FashionMNIST, "dataset spec, e.g. imagefolder:data/imagenette2-160")
	flag.StringVar(&o.out, "out", "", "directory for results (unused: everything is on the page)")
	flag.StringVar(&o.page, "page", fixture.NotebookDir(), "directory to write README.md and figures to")
	flag.StringVar(&o.template, "template", "a photo of a {}", "prompt template ({} is the label)")
	flag.IntVar(&o.limit, "limit", 1000, "test images to classify (0 = the whole split)")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the test subset")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "01-zero-shot-imagenette:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.page == "" {
		return fmt.Errorf("no page directory: pass --page")
	}
	p := page.New(o.page, "Zero-shot image classification with CLIP, step by step", o.stdout)
	p.Text(`This notebook retraces the article *Zero-shot Image Classification with OpenAI's CLIP*
(Imagenette, ViT-B/32, prompts "a photo of a {label}", 98.7%% top-1 on the validation split) in Go,
with gorgoclip's public API only. Each step shows its code and what it printed.`)
	p.Text(`This page was rendered with:

- weights: %s
- vocabulary: %s
- data: %s, test split, %s

Regenerate it with `+"`make notebooks`"+` (fixtures) or run it on real weights:
`+"`go run ./notebooks/01-zero-shot-imagenette --weights DIR --data imagefolder:DIR --limit 0`"+`.`,
		"`"+fixture.Describe(o.weights)+"`", "`"+fixture.Describe(o.vocab)+"`", "`"+fixture.Describe(o.data)+"`", limitText(o.limit, o.seed))
	if o.weights == fixture.Weights() {
		p.Text(`**These are not real CLIP weights.** The default model is the tiny random-weight CLIP of the
reference fixtures (64 px input, 32-wide embeddings): it exercises every step with the same code and
maths, but its features mean nothing, so expect chance-level accuracy (about 10%% for 10 classes).`)
	}

	p.Section("1. The labels")
	p.Text(`The dataset gives us its class names in label order; they become the classifier's labels.`)
	p.Code(page.Region(source, "labels"))
	// region labels
	ds, err := datasets.Open(o.data, "test", datasets.Options{Limit: o.limit, Seed: o.seed})
	if err != nil {
		return err
	}
	labels := ds.ClassNames()
	p.Printf("%s: %d images", ds.Name(), ds.Len())
	p.Printf("labels: %q", labels)
	// endregion

	p.Section("2. One prompt per label")
	p.Text(`CLIP was trained on captions, not on bare words: putting the label in a sentence brings the
text closer to what the model saw. The article uses "a photo of a {label}".`)
	p.Code(page.Region(source, "prompts"))
	// region prompts
	texts := make([]string, len(labels))
	for i, label := range labels {
		texts[i] = prompts.Apply(o.template, label)
	}
	p.Printf("%q", texts)
	// endregion

	p.Section("3. Load the model")
	p.Text(`clip.Load reads a checkpoint (OpenAI .npy files, Hugging Face safetensors, ...) and builds
both towers as gorgonia graphs.`)
	p.Code(page.Region(source, "model"))
	// region model
	m, err := clip.Load(o.weights)
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	R, E := cfg.Vision.ImageResolution, cfg.EmbedDim
	p.Printf("model %s: images %dx%d in %dx%d patches, %d vision layers of width %d; text %d layers of width %d",
		nameOf(cfg.Name), R, R, cfg.Vision.PatchSize, cfg.Vision.PatchSize, cfg.Vision.Layers, cfg.Vision.Width,
		cfg.Text.Layers, cfg.Text.Width)
	p.Printf("joint embedding width E = %d, logit scale exp(%.4f) = %.2f", E, m.LogitScale(), math.Exp(float64(m.LogitScale())))
	// endregion

	p.Section("4. Tokens")
	p.Text(`The BPE tokenizer turns each prompt into ids between <|startoftext|> (49406) and
<|endoftext|> (49407); Tokenize pads every row with zeros to the context length (77), as
clip.tokenize does.`)
	p.Code(page.Region(source, "tokens"))
	// region tokens
	tok, err := tokenizer.Load(o.vocab)
	if err != nil {
		return err
	}
	ids := tok.Encode(texts[0])
	p.Printf("%q -> %v", texts[0], ids)
	L := cfg.Text.ContextLength
	tokens, err := tok.Tokenize(texts, L, true) // [C, L] int32
	if err != nil {
		return err
	}
	p.Printf("tokens: [%d, %d] int32; row 0 starts %v ...", len(texts), L, tokens[:len(ids)+3])
	// endregion

	p.Section("5. Text embeddings")
	p.Text(`The text tower reads each row up to its end-of-text token and projects that position into
the joint space: one E-wide vector per label.`)
	p.Code(page.Region(source, "textemb"))
	// region textemb
	labelEmb, err := m.EncodeTexts(tokens, len(texts)) // [C, E]
	if err != nil {
		return err
	}
	lo, hi := minMax(labelEmb)
	p.Printf("label embeddings: [%d, %d], min %.4f, max %.4f", len(texts), E, lo, hi)
	// endregion

	p.Section("6. Normalise")
	p.Text(`CLIP compares directions, not lengths: after scaling every row to unit length, a dot
product is a cosine similarity.`)
	p.Code(page.Region(source, "normalise"))
	// region normalise
	clip.L2Normalize(labelEmb, E)
	lo, hi = minMax(labelEmb)
	p.Printf("normalised: min %.4f, max %.4f, |row 0| = %.4f", lo, hi, norm(labelEmb[:E]))
	// endregion

	p.Section("7. One image")
	p.Text(`CLIP's preprocessing resizes the shorter side to R with bicubic filtering, crops the centre
square and normalises each channel with CLIP's mean and standard deviation, giving [1, 3, R, R].`)
	p.Code(page.Region(source, "image"))
	// region image
	item, err := ds.Item(0)
	if err != nil {
		return err
	}
	pim, err := item.Pixels() // decoded as PIL decodes it (libjpeg-turbo for JPEGs)
	if err != nil {
		return err
	}
	pixels := make([]float32, 3*R*R)
	if err := images.Preprocess(pim, R, pixels); err != nil {
		return err
	}
	lo, hi = minMax(pixels)
	p.Printf("image %s: %dx%d, label %q", item.Name, pim.Width, pim.Height, labels[item.Label])
	p.Printf("pixels: [1, 3, %d, %d], min %.4f, max %.4f", R, R, lo, hi)
	// endregion

	p.Section("8. Its embedding")
	p.Code(page.Region(source, "imgemb"))
	// region imgemb
	imgEmb, err := m.EncodeImages(pixels, 1) // [1, E]
	if err != nil {
		return err
	}
	lo, hi = minMax(imgEmb)
	p.Printf("image embedding: [1, %d], min %.4f, max %.4f", E, lo, hi)
	clip.L2Normalize(imgEmb, E)
	lo, hi = minMax(imgEmb)
	p.Printf("normalised:      [1, %d], min %.4f, max %.4f", E, lo, hi)
	// endregion

	p.Section("9. Scores and the prediction")
	p.Text(`The score of each label is the dot product of the two unit vectors (a cosine similarity);
the prediction is the label with the highest score.`)
	p.Code(page.Region(source, "scores"))
	// region scores
	scores, err := clip.Logits(imgEmb, labelEmb, E, 1) // [1, C] cosine similarities
	if err != nil {
		return err
	}
	pred := argmax(scores)
	for c, s := range scores {
		p.Printf("%-28q %.4f", texts[c], s)
	}
	p.Printf("prediction: %q (true label %q)", labels[pred], labels[item.Label])
	// endregion

	p.Text(`The same scores for a few more images, drawn as in OpenAI's CLIP notebook (rows are prompts,
columns images; the brightest cell of each column is its prediction):`)
	if err := similarityFigure(p, m, ds, labelEmb, texts, R, E, 8); err != nil {
		return err
	}

	p.Section("10. The whole split")
	p.Text(`Now every test image: experiments.ImageFeatures decodes and preprocesses on worker goroutines
while the model encodes batches of 32 (progress on stderr). Scaling the cosines by exp(logit scale)
gives CLIP's logits, which do not change the ranking.`)
	p.Code(page.Region(source, "split"))
	// region split
	feats, err := experiments.ImageFeatures(m, ds, experiments.Extraction{
		Resolution: R, Dim: E, BatchSize: clip.DefaultBatchSize, Log: o.stderr,
	})
	if err != nil {
		return err
	}
	clip.L2Normalize(feats.X, E)
	scale := float32(math.Exp(float64(m.LogitScale())))
	logits, err := clip.Logits(feats.X, labelEmb, E, scale) // [N, C]
	if err != nil {
		return err
	}
	metrics, err := probes.Evaluate(logits, feats.Y, len(labels))
	if err != nil {
		return err
	}
	p.Printf("zero-shot top-1 accuracy on %d images: %.2f%%", feats.N, 100*metrics.Top1)
	p.Printf("top-5 %.2f%%, mean per-class recall %.2f%%", 100*metrics.Top5, 100*metrics.MeanPerClassRecall)
	// endregion
	p.Text(`For reference, the article reports **98.7%%** with OpenAI's ViT-B/32 on Imagenette's
validation split (3925 images).`)
	title := fmt.Sprintf("Zero-shot confusion matrix (%q)", o.template) // the figure adds top-1 and n
	fig, err := plots.ConfusionFigure(title, labels, metrics.Confusion)
	if err != nil {
		return err
	}
	if err := p.Image("Zero-shot confusion matrix", "confusion.png", pngOf(fig)); err != nil {
		return err
	}

	p.Section("11. The same in one call")
	p.Text(`Steps 2 to 9 are what experiments.BuildClassifier and experiments.ZeroShot do (with any
number of templates per label, averaged); the gorgoclip zeroshot command runs them.`)
	p.Code(page.Region(source, "library"))
	// region library
	set := experiments.PromptSet{Name: o.template, Templates: []string{o.template}}
	cl, err := experiments.BuildClassifier(m, tok, labels, set, L, E)
	if err != nil {
		return err
	}
	res, err := experiments.ZeroShot(feats, cl, labels, set, scale)
	if err != nil {
		return err
	}
	p.Printf("experiments.ZeroShot: top-1 %.2f%% (step by step: %.2f%%)", 100*res.Metrics["acc1"], 100*metrics.Top1)
	// endregion
	if math.Abs(float64(res.Metrics["acc1"])-metrics.Top1) > 1e-9 {
		return fmt.Errorf("experiments.ZeroShot gives %.4f, the steps above %.4f", res.Metrics["acc1"], metrics.Top1)
	}

	path, err := p.Write()
	if err != nil {
		return err
	}
	fmt.Fprintln(o.stderr, "wrote", path)
	return nil
}

// similarityFigure draws the cosine similarity of the first n test images, captioned
// with their true classes, with every prompt.
func similarityFigure(p *page.Page, m *clip.Model, ds datasets.Dataset, labelEmb []float32, texts []string, R, E, n int) error {
	n = min(n, ds.Len())
	pixels := make([]float32, n*3*R*R)
	thumbs := make([]image.Image, n)
	captions := make([]string, n)
	for i := range n {
		item, err := ds.Item(i)
		if err != nil {
			return err
		}
		captions[i] = ds.ClassNames()[item.Label]
		if thumbs[i], err = item.Decode(); err != nil {
			return err
		}
		pim, err := images.FromImage(thumbs[i])
		if err != nil {
			return err
		}
		if err := images.Preprocess(pim, R, pixels[i*3*R*R:(i+1)*3*R*R]); err != nil {
			return err
		}
	}
	emb, err := m.EncodeImages(pixels, n)
	if err != nil {
		return err
	}
	sims, err := clip.Logits(emb, labelEmb, E, 1) // [n, C]; Logits normalises
	if err != nil {
		return err
	}
	C := len(texts)
	values := make([][]float64, C)
	for c := range values {
		values[c] = make([]float64, n)
		for i := range n {
			values[c][i] = float64(sims[i*C+c])
		}
	}
	fig, err := plots.SimilarityFigure(plots.Similarity{
		Title:    "Cosine similarity between prompts and images",
		Subtitle: fmt.Sprintf("the first %d test images, captioned with their true class", n),
		Texts:    texts, Images: thumbs, Captions: captions, Values: values,
	})
	if err != nil {
		return err
	}
	return p.Image("Cosine similarities of prompts and test images", "similarity.png", pngOf(fig))
}

func pngOf(f plots.Figure) func(io.Writer) error {
	return func(w io.Writer) error { return f.WriteTo(w, "png") }
}

func limitText(limit int, seed uint64) string {
	if limit <= 0 {
		return "every image"
	}
	return fmt.Sprintf("a random subset of %d images (seed %d)", limit, seed)
}

func minMax(xs []float32) (lo, hi float32) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

func norm(xs []float32) float64 {
	var s float64
	for _, x := range xs {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func argmax(xs []float32) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}

func nameOf(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return name
}
