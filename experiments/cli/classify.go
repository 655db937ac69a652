package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

const classifyHelp = `--weights DIR --labels FILE [--prompts SET] [--top K] [--json] IMAGE...

Zero-shot classification of images with labels of your choice: each label is put in
the prompt set's templates (default "a photo of a {}."), the class embedding is the
mean of its normalised template embeddings, normalised again, and each image gets
the softmax of exp(logit_scale) * cosine similarity over the labels, what
transformers' zero-shot-image-classification pipeline and open_clip's text_probs
give. Prints the top K labels of each image with their probabilities; --json prints
one JSON line per image, {"image": PATH, "labels": [...], "probs": [...]}, labels
ordered by probability.

FILE holds one label a line; blank lines are skipped. The prompt sets are those of
gorgoclip zeroshot: bare, photo, article, imagenet80, a literal template with {},
openai:prompts.md#DATASET or a templates file.`

func init() {
	register(Command{Name: "classify", Summary: "zero-shot classify images with your own labels: top labels and probabilities", Run: runClassify})
}

// Prediction is one image's top labels, as classify --json prints it.
type Prediction struct {
	Image  string    `json:"image"`
	Labels []string  `json:"labels"`
	Probs  []float64 `json:"probs"`
}

func runClassify(env *Env, args []string) error {
	fs := newFlags(env, "classify", classifyHelp)
	weightsDir := fs.String("weights", "", "model directory: OpenAI .npy, Hugging Face (safetensors or pytorch_model.bin) or converted (required)")
	labelsPath := fs.String("labels", "", "text file of labels, one a line (required)")
	promptSet := fs.String("prompts", "photo", `prompt set: bare, photo ("a photo of a {}."), article, imagenet80, a template with {}, openai:prompts.md#DATASET or a templates file`)
	top := fs.Int("top", 5, "labels to print per image (all when there are fewer)")
	asJSON := fs.Bool("json", false, `print one JSON line per image: {"image","labels","probs"}`)
	vocab := fs.String("vocab", "", "BPE vocabulary (default: beside --weights, $GORGOCLIP_VOCAB, the user cache, else the built-in one)")
	batch := fs.Int("batch", clip.DefaultBatchSize, "images or prompts per graph run")
	device := fs.String("device", "cpu", deviceHelp)
	precision := fs.String("precision", "fp32", precisionHelp)
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "images decoded in parallel")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *weightsDir == "":
		return Usagef("--weights DIR is required")
	case *labelsPath == "":
		return Usagef("--labels FILE is required (one label a line)")
	case len(paths) == 0:
		return Usagef("give the images to classify as arguments")
	case *top < 1:
		return Usagef("--top %d: want at least 1", *top)
	case *batch < 1 || *workers < 1:
		return Usagef("--batch and --workers want at least 1")
	}
	prec, err := parsePrecision(*precision)
	if err != nil {
		return err
	}
	labels, err := readLabels(*labelsPath)
	if err != nil {
		return err
	}
	set, err := experiments.ParsePromptSet(*promptSet)
	if err != nil {
		return err
	}
	tok, _, err := tokenizer.Open(*vocab, *weightsDir)
	if err != nil {
		return err
	}
	m, err := clip.Load(*weightsDir, clip.WithBatchSize(*batch), clip.WithDevice(*device), clip.WithPrecision(prec))
	if err != nil {
		return err
	}
	defer m.Close()
	preds, err := classify(m, tok, labels, set, paths, *top, *workers)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(env.Stdout)
	for _, p := range preds {
		if *asJSON {
			b, err := json.Marshal(p)
			if err != nil {
				return err
			}
			out.Write(append(b, '\n'))
			continue
		}
		fmt.Fprintln(out, p.Image)
		for i, l := range p.Labels {
			fmt.Fprintf(out, "  %6.2f%%  %s\n", 100*p.Probs[i], l)
		}
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("writing stdout: %w", err)
	}
	return nil
}

// classify returns, per image, the top labels by softmax(exp(logit_scale) * cosine).
func classify(m *clip.Model, tok *tokenizer.Tokenizer, labels []string, set experiments.PromptSet, paths []string, top, workers int) ([]Prediction, error) {
	cfg := m.Config()
	dim := cfg.EmbedDim
	cl, err := experiments.BuildClassifier(m, tok, labels, set, cfg.Text.ContextLength, dim)
	if err != nil {
		return nil, err
	}
	pixels, err := m.Transform().Files(paths, workers)
	if err != nil {
		return nil, err
	}
	feats, err := m.EncodeImages(pixels, len(paths))
	if err != nil {
		return nil, err
	}
	clip.L2Normalize(feats, dim)
	scale := math.Exp(float64(m.LogitScale()))
	preds := make([]Prediction, len(paths))
	order := make([]int, len(labels))
	probs := make([]float64, len(labels))
	for i, path := range paths {
		img := feats[i*dim : (i+1)*dim]
		for c := range labels {
			var dot float64
			for k, w := range cl.Weights[c*dim : (c+1)*dim] {
				dot += float64(w) * float64(img[k])
			}
			probs[c] = scale * dot
		}
		softmax(probs)
		for c := range order {
			order[c] = c
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case probs[a] > probs[b]:
				return -1
			case probs[a] < probs[b]:
				return 1
			}
			return 0
		})
		p := Prediction{Image: path}
		for _, c := range order[:min(top, len(labels))] {
			p.Labels = append(p.Labels, labels[c])
			p.Probs = append(p.Probs, probs[c])
		}
		preds[i] = p
	}
	return preds, nil
}

// softmax replaces x by its softmax, shifted by the maximum for stability.
func softmax(x []float64) {
	hi := slices.Max(x)
	var sum float64
	for i, v := range x {
		x[i] = math.Exp(v - hi)
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

// readLabels reads one label a line, surrounding blanks trimmed and blank lines
// skipped; a label given twice is an error naming both lines.
func readLabels(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var labels []string
	line := map[string]int{}
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if first, dup := line[l]; dup {
			return nil, fmt.Errorf("%s:%d: label %q is already on line %d", path, i+1, l, first)
		}
		line[l] = i + 1
		labels = append(labels, l)
	}
	if len(labels) < 2 {
		return nil, fmt.Errorf("%s: %d label(s); classify needs at least 2, one a line", path, len(labels))
	}
	return labels, nil
}
