// Command 05-saliency asks which pixels make CLIP label an image as it does: the
// gradient of a label's zero-shot logit with respect to the pixels (gradient x
// input), the attention rollout of a ViT's class token, and Grad-CAM on a ResNet's
// last stage. The gradients come from gorgonia's reverse-mode differentiation through
// the towers' fused ops; the page checks them against finite differences, then checks
// that the maps are faithful by deleting the pixels they point at. It writes the
// rendered page README.md beside this file.
//
//	go run ./notebooks/05-saliency                        # tiny fixture models
//	go run ./notebooks/05-saliency --weights models/ViT-B-32 --resnet models/RN50 \
//	    --image dog.jpg --labels dog,bicycle,car,tree,person --page /tmp/nb05
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	_ "embed"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/fixture"
	"github.com/gorgoclip/gorgoclip/notebooks/internal/page"
	"github.com/gorgoclip/gorgoclip/plots"
)

//go:embed main.go
var source string

type options struct {
	weights, resnet, vocab, image, labels string
	// page is the directory the page and its figures are written to.
	page           string
	stdout, stderr io.Writer
}

func main() {
	o := options{stdout: os.Stdout, stderr: os.Stderr}
	flag.StringVar(&o.weights, "weights", fixture.Weights(), "CLIP weights directory with a ViT image tower")
	flag.StringVar(&o.resnet, "resnet", fixture.Shared("fixtures/clip-tiny-rn/openai"), "CLIP weights directory with a ResNet image tower (\"\" to skip)")
	flag.StringVar(&o.vocab, "vocab", fixture.Vocab(), "BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)")
	flag.StringVar(&o.image, "image", fixture.Shared("fixtures/preprocess/images/dog.jpg"), "the image to explain")
	flag.StringVar(&o.labels, "labels", "dog,bicycle,car,tree,person", "comma-separated labels to score it against")
	flag.StringVar(&o.page, "page", fixture.NotebookDir(), "directory to write README.md and figures to")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "05-saliency:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.page == "" {
		return fmt.Errorf("no page directory: pass --page")
	}
	p := page.New(o.page, "Saliency: which pixels make the label", o.stdout)
	p.Text(`gorgoclip's towers are gorgonia graphs, and gorgonia differentiates graphs: every fused op
(LayerNorm, Linear with its epilogues, attention, the patch embedding, the ResNet convolutions and
pools) has a backward pass built from backward ops by its SymDiff method, and graph.Builder.Backward
runs gorgonia's reverse-mode differentiation from the features back to whatever is asked for:
pixels, token embeddings, a stage, a weight. Only the gradients asked for are built, and an inference
graph is unchanged. This page uses them to explain a zero-shot prediction three ways: gradient x
input on the pixels (Simonyan et al. 2014; Shrikumar et al. 2016), attention rollout over a ViT's
patches (Abnar and Zuidema 2020), and Grad-CAM on a ResNet's last stage (Selvaraju et al. 2017). The
same maps come from the command line:

    gorgoclip explain --weights DIR --labels labels.txt IMAGE...`)
	p.Text(`This page was rendered with:

- ViT weights: %s
- ResNet weights: %s
- image: %s, labels: %s`, "`"+fixture.Describe(o.weights)+"`", "`"+fixture.Describe(o.resnet)+"`",
		"`"+fixture.Describe(o.image)+"`", "`"+o.labels+"`")
	if o.weights == fixture.Weights() {
		p.Text(`**These are not real CLIP weights.** The default models are the tiny random-weight CLIPs of
the reference fixtures (64 px input): the checks below hold whatever the weights, but the predictions
and the maps mean nothing. Run the page on real weights to read them.`)
	}

	p.Section("1. A zero-shot prediction")
	p.Text(`Score the image against "a photo of a {}." for each label, as the zero-shot classifier does.`)
	p.Code(page.Region(source, "zeroshot"))
	p.Code(page.Region(source, "predict"))
	// region predict
	m, err := clip.Load(o.weights)
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := tokenizer.Load(o.vocab)
	if err != nil {
		return err
	}
	labels := strings.Split(o.labels, ",")
	px, weights, logits, err := zeroShot(m, tok, labels, o.image)
	if err != nil {
		return err
	}
	top := ranked(logits)
	for _, c := range top {
		p.Printf("%-10s logit %7.3f", labels[c], logits[c])
	}
	// endregion

	p.Section("2. The gradients, checked")
	p.Text(`Explain differentiates each label's logit, exp(logit_scale) * cos(image features, class row),
with respect to the pixels: the logit's gradient with respect to the features is written on the host,
and seeds the image tower's backward pass (Model.ImageGradients). Gradient x input multiplies the
gradient by the pixels and sums the colour channels. Summed over the image it is the derivative of
the logit along the image itself, d/dh logit((1+h) x) at h = 0, which a central difference of two
forward passes checks. (The fixture tests check every op against float64 finite differences, and the
loss gradients against PyTorch autograd on OpenAI's code.)`)
	p.Code(page.Region(source, "check"))
	// region check
	k := min(3, len(labels))
	sal, err := m.Explain(px, weights, top[:k])
	if err != nil {
		return err
	}
	logitAt := func(x []float32, c int) (float64, error) {
		f, err := m.EncodeImages(x, 1)
		if err != nil {
			return 0, err
		}
		l, err := m.Logits(f, weights)
		return float64(l[c]), err
	}
	const h = 0.03
	for _, s := range sal {
		up, err := logitAt(scaled(px, 1+h), s.Class)
		if err != nil {
			return err
		}
		down, err := logitAt(scaled(px, 1-h), s.Class)
		if err != nil {
			return err
		}
		p.Printf("%-10s sum of gradient x input %9.5f, central difference %9.5f", labels[s.Class], sum(s.GradInput), (up-down)/(2*h))
	}
	// endregion

	p.Section("3. Gradient x input and attention rollout")
	p.Text(`The figure shows each label's gradient x input (its magnitude) over the image, and under the
image the attention rollout: each block's attention (the softmax weights the graph recomputes only
when asked, clip.StageAttention) averaged over heads, mixed half and half with the identity for the
residual stream, and multiplied from the first block to the last; the class token's row says how
much of each patch flows into the pooled token. Rollout is the same for every label.`)
	p.Code(page.Region(source, "figure"))
	// region figure
	cfg := m.Config()
	R := cfg.Vision.ImageResolution
	st, err := m.ImageStages(px, 1, clip.StageAttention)
	if err != nil {
		return err
	}
	att := st[clip.StageAttention] // [layers, heads, T, T] for the one image
	layers, heads, T := cfg.Vision.Layers, cfg.Vision.Heads, cfg.Vision.Tokens()
	for l := range layers {
		var self float64 // the class token's attention to itself, averaged over heads
		for hd := range heads {
			self += float64(att[(l*heads+hd)*T*T]) / float64(heads)
		}
		p.Printf("block %d: the class token keeps %.1f%% of its attention on itself", l, 100*self)
	}
	roll, err := clip.AttentionRollout(att, layers, heads)
	if err != nil {
		return err
	}
	fig := plots.SaliencyFigure{Title: "ViT: " + filepath.Base(o.image), Image: clip.PixelImage(px, m.Transform()),
		Under: []plots.SaliencyMap{{Title: "attention rollout (class token)", Values: roll, Side: cfg.Vision.Grid(), Stretch: true}}}
	for _, s := range sal {
		fig.Columns = append(fig.Columns, plots.SaliencyColumn{Heading: fmt.Sprintf("%s (logit %.2f)", labels[s.Class], s.Logit),
			Maps: []plots.SaliencyMap{{Title: "gradient × input", Values: s.GradInput, Side: R}}})
	}
	if err := drawFigure(p, fig, "Gradient x input per label and attention rollout, ViT", "saliency_vit.png"); err != nil {
		return err
	}
	// endregion

	p.Section("4. Are the maps faithful? Deleting what they point at")
	p.Text(`A saliency map is only worth reading if the pixels it points at matter. Gradient x input is
signed: positive where a pixel is evidence for the label, negative where it is evidence against.
Delete (set to the normalisation mean, 0 after preprocessing) the 5%% of pixels with the most
positive values, then the 5%% most negative, then 5%% at random (mean of five draws), and look at the
label's logit: a faithful map lowers it in the first case, raises it in the second, and the random
deletion moves it less than either.`)
	p.Code(page.Region(source, "deletion"))
	// region deletion
	rng := rand.New(rand.NewPCG(1, 2))
	n := R * R / 20
	for _, s := range sal {
		forLabel, err := logitAt(deleted(px, R, ranked(s.GradInput)[:n]), s.Class)
		if err != nil {
			return err
		}
		against, err := logitAt(deleted(px, R, ranked(negated(s.GradInput))[:n]), s.Class)
		if err != nil {
			return err
		}
		var random float64
		for range 5 {
			l, err := logitAt(deleted(px, R, rng.Perm(R * R)[:n]), s.Class)
			if err != nil {
				return err
			}
			random += (l - s.Logit) / 5
		}
		p.Printf("%-10s logit change when deleting 5%% of pixels: evidence for %+8.3f, against %+8.3f, random %+7.3f",
			labels[s.Class], forLabel-s.Logit, against-s.Logit, random)
	}
	// endregion

	if o.resnet == "" {
		return write(p, o)
	}
	p.Section("5. ResNets: Grad-CAM")
	p.Text(`A ResNet has no attention blocks to roll out (its attention pool attends once, from the mean
token). Grad-CAM weighs each channel of the last stage (layer4) by the mean of the logit's gradient
over the positions, sums the channels and keeps the positive part: a coarse map, one cell per 32
pixels. Explain computes it alongside gradient x input, from the same backward pass (the gradient is
taken with respect to the layer4 stage as well as the pixels). When every weighted sum is negative
the map is empty: the figure says so.`)
	p.Code(page.Region(source, "resnet"))
	// region resnet
	rn, err := clip.Load(o.resnet)
	if err != nil {
		return err
	}
	defer rn.Close()
	rpx, rweights, rlogits, err := zeroShot(rn, tok, labels, o.image)
	if err != nil {
		return err
	}
	rsal, err := rn.Explain(rpx, rweights, ranked(rlogits)[:k])
	if err != nil {
		return err
	}
	rfig := plots.SaliencyFigure{Title: "ResNet: " + filepath.Base(o.image), Image: clip.PixelImage(rpx, rn.Transform())}
	for _, s := range rsal {
		p.Printf("%-10s logit %7.3f, Grad-CAM %dx%d, largest cell %.4g", labels[s.Class], s.Logit, s.CAMSide, s.CAMSide, slices.Max(s.GradCAM))
		rfig.Columns = append(rfig.Columns, plots.SaliencyColumn{Heading: fmt.Sprintf("%s (logit %.2f)", labels[s.Class], s.Logit),
			Maps: []plots.SaliencyMap{{Title: "gradient × input", Values: s.GradInput, Side: rn.Transform().Size},
				{Title: "Grad-CAM, layer4", Values: s.GradCAM, Side: s.CAMSide}}})
	}
	if err := drawFigure(p, rfig, "Gradient x input and Grad-CAM per label, ResNet", "saliency_resnet.png"); err != nil {
		return err
	}
	// endregion
	return write(p, o)
}

// region zeroshot
// zeroShot preprocesses the image for m and scores it against "a photo of a {}." for
// each label: the pixels [3,R,R], the classifier's rows [C,E] and the logits [C].
func zeroShot(m *clip.Model, tok *tokenizer.Tokenizer, labels []string, image string) (px, weights, logits []float32, err error) {
	cfg := m.Config()
	set := experiments.PromptSet{Name: "a photo of a {}.", Templates: []string{"a photo of a {}."}}
	cl, err := experiments.BuildClassifier(m, tok, labels, set, cfg.Text.ContextLength, cfg.EmbedDim)
	if err != nil {
		return nil, nil, nil, err
	}
	t := m.Transform() // the model's resolution and normalisation
	px = make([]float32, 3*t.Size*t.Size)
	if err := t.File(image, px); err != nil {
		return nil, nil, nil, err
	}
	feats, err := m.EncodeImages(px, 1)
	if err != nil {
		return nil, nil, nil, err
	}
	logits, err = m.Logits(feats, cl.Weights)
	return px, cl.Weights, logits, err
}

// endregion

func write(p *page.Page, o options) error {
	path, err := p.Write()
	if err != nil {
		return err
	}
	fmt.Fprintln(o.stderr, "wrote", path)
	return nil
}

// drawFigure adds f to the page as file.
func drawFigure(p *page.Page, f plots.SaliencyFigure, alt, file string) error {
	fig, err := plots.Saliency(f)
	if err != nil {
		return err
	}
	return p.Image(alt, file, func(w io.Writer) error { return fig.WriteTo(w, "png") })
}

// ranked returns the indices of logits (or any values) by decreasing value.
func ranked(logits []float32) []int {
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	return idx
}

func scaled(x []float32, f float32) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = v * f
	}
	return y
}

func sum(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s
}

func negated(x []float32) []float32 { return scaled(x, -1) }

// deleted returns pixels [3,R,R] with the given positions (y*R+x) zeroed in every
// channel.
func deleted(px []float32, r int, pos []int) []float32 {
	y := slices.Clone(px)
	for _, p := range pos {
		for c := range 3 {
			y[c*r*r+p] = 0
		}
	}
	return y
}
