package cli

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/plots"
)

func init() {
	register(Command{
		Name:    "explain",
		Summary: "saliency figures: which pixels make an image its top zero-shot labels",
		Run:     runExplain,
	})
}

// runExplain implements `gorgoclip explain --weights DIR --labels FILE [--prompts SET]
// IMAGE...`: per image, the zero-shot probabilities over the labels and a figure
// (OUT/<image>.saliency.png and .svg) with, for each of the top labels, gradient x
// input of the label's logit on the pixels (and Grad-CAM on the last stage for
// ResNet towers), and for ViT towers the attention rollout of the class token.
func runExplain(env *Env, args []string) error {
	fs := newFlags(env, "explain", "--weights DIR --labels FILE [--prompts SET] [--top K] [--out DIR] [--device cuda] IMAGE...")
	weightsDir := fs.String("weights", "", "checkpoint directory (any layout embed accepts)")
	labelsFile := fs.String("labels", "", "text file of class names, one a line")
	promptSpec := fs.String("prompts", "photo", `prompt set: bare, photo ("a photo of a {}."), article, imagenet80, a literal template with {}, openai:PROMPTS.md#DATASET, or a templates file`)
	top := fs.Int("top", 3, "labels explained per image (the most probable)")
	outDir := fs.String("out", ".", "directory for the figures")
	vocab := fs.String("vocab", "", "BPE vocabulary (default: beside --weights, $GORGOCLIP_VOCAB, or the user cache)")
	device := fs.String("device", "cpu", deviceHelp)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *weightsDir == "":
		return Usagef("--weights DIR is required")
	case *labelsFile == "":
		return Usagef("--labels FILE is required")
	case len(files) == 0:
		return Usagef("give at least one image")
	case *top < 1:
		return Usagef("--top %d must be at least 1", *top)
	}
	set, err := experiments.ParsePromptSet(*promptSpec)
	if err != nil {
		return err
	}
	labels, err := readLabels(*labelsFile)
	if err != nil {
		return err
	}
	m, err := clip.Load(*weightsDir, clip.WithDevice(*device))
	if err != nil {
		return err
	}
	defer m.Close()
	tok, _, err := tokenizer.Open(*vocab, *weightsDir)
	if err != nil {
		return err
	}
	cfg := m.Config()
	cl, err := experiments.BuildClassifier(m, tok, labels, set, cfg.Text.ContextLength, cfg.EmbedDim)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	k := min(*top, len(labels))
	t := m.Transform()
	for _, path := range files {
		px := make([]float32, 3*t.Size*t.Size)
		if err := t.File(path, px); err != nil {
			return err
		}
		fig, summary, err := explainImage(m, px, cl.Weights, labels, k)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fig.Title = filepath.Base(path) + ": " + set.Name
		f, err := plots.Saliency(fig)
		if err != nil {
			return err
		}
		base := filepath.Join(*outDir, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+".saliency")
		if err := f.Save(base); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s: %s -> %s.png\n", path, summary, base)
	}
	return nil
}

// explainImage scores one image against the classifier, explains its k most
// probable labels, and lays the maps out for plots.Saliency; summary lists the
// labels with their probabilities.
func explainImage(m *clip.Model, px, weights []float32, labels []string, k int) (plots.SaliencyFigure, string, error) {
	cfg := m.Config()
	feats, err := m.EncodeImages(px, 1)
	if err != nil {
		return plots.SaliencyFigure{}, "", err
	}
	logits, err := m.Logits(feats, weights)
	if err != nil {
		return plots.SaliencyFigure{}, "", err
	}
	probs := make([]float64, len(logits))
	for i, l := range logits {
		probs[i] = float64(l)
	}
	softmax(probs)
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(probs[b], probs[a]) })
	sal, err := m.Explain(px, weights, order[:k])
	if err != nil {
		return plots.SaliencyFigure{}, "", err
	}
	r := cfg.Vision.ImageResolution
	fig := plots.SaliencyFigure{Image: clip.PixelImage(px, m.Transform())}
	var summary []string
	for _, s := range sal {
		heading := fmt.Sprintf("%s %.1f%%", labels[s.Class], 100*probs[s.Class])
		summary = append(summary, heading)
		col := plots.SaliencyColumn{Heading: heading, Maps: []plots.SaliencyMap{{Title: "gradient × input", Values: s.GradInput, Side: r}}}
		if s.GradCAM != nil {
			col.Maps = append(col.Maps, plots.SaliencyMap{Title: "Grad-CAM, layer4", Values: s.GradCAM, Side: s.CAMSide})
		}
		fig.Columns = append(fig.Columns, col)
	}
	if cfg.Vision.Kind == "vit" {
		st, err := m.ImageStages(px, 1, clip.StageAttention)
		if err != nil {
			return plots.SaliencyFigure{}, "", err
		}
		roll, err := clip.AttentionRollout(st[clip.StageAttention], cfg.Vision.Layers, cfg.Vision.Heads)
		if err != nil {
			return plots.SaliencyFigure{}, "", err
		}
		fig.Under = []plots.SaliencyMap{{Title: "attention rollout (class token)", Values: roll, Side: cfg.Vision.Grid(), Stretch: true}}
	}
	return fig, strings.Join(summary, ", "), nil
}

// withAttention returns stage, plus clip.StageAttention when path (an --attention
// flag) is set.
func withAttention(stage clip.Stage, path string) []clip.Stage {
	if path == "" {
		return []clip.Stage{stage}
	}
	return []clip.Stage{stage, clip.StageAttention}
}

// attentionMaps are a tower's attention weights as clip.StageAttention returns them:
// item-major [N, layers, heads, T, T].
type attentionMaps struct {
	data          []float32
	layers, heads int
}

// write saves the maps of n items as the layer-major [layers, N, heads, T, T] of
// `embed --attention` (the layout of PyTorch's per-block outputs stacked).
func (a attentionMaps) write(path string, n int) error {
	per := len(a.data) / max(n*a.layers, 1) // heads*T*T
	t := 1
	for t*t*a.heads < per {
		t++
	}
	if n == 0 || a.layers == 0 || t*t*a.heads != per {
		return fmt.Errorf("attention maps: %d values for %d items of %d layers and %d heads", len(a.data), n, a.layers, a.heads)
	}
	return npy.WriteFloat32(path, []int{a.layers, n, a.heads, t, t}, clip.LayerMajor(a.data, n, a.layers))
}
