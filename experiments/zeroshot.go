package experiments

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/download"
	"github.com/gorgoclip/gorgoclip/loaders/prompts"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/probes"
)

// TextEncoder is what zero-shot needs of a model; *clip.Model satisfies it.
type TextEncoder interface {
	EncodeTexts(tokens []int32, rows int) ([]float32, error)
}

var _ TextEncoder = (*clip.Model)(nil)

// PromptSet is a named list of templates, each with a "{}" or "{c}" placeholder.
type PromptSet struct {
	// Name labels the set in results and plots ("bare", "a photo of a {}.", ...).
	Name      string
	Templates []string
}

// ImageNet80 is the prompt-set spec of the CLIP paper's 80-template ImageNet ensemble,
// read from the JSON that `gorgoclip fetch templates` extracts from OpenAI's notebook
// (download.ImageNetTemplatesPath).
const ImageNet80 = "imagenet80"

// ParsePromptSet resolves a prompt spec: a built-in name ("bare" for the class name
// alone, "photo" for "a photo of a {}.", "article" for "a photo of a {}"), "imagenet80"
// for the 80-template ImageNet ensemble (fetched by `gorgoclip fetch templates`), a
// literal template containing "{}" or "{c}", "openai:PATH#DATASET" for one section of
// OpenAI's prompts.md, or a templates file. A relative PATH of openai: that is not in
// the working directory is looked for where `gorgoclip fetch templates` saves
// prompts.md (download.TemplatesPath).
func ParsePromptSet(spec string) (PromptSet, error) {
	if spec == ImageNet80 {
		return imageNet80()
	}
	if prompts.HasPlaceholder(spec) && !strings.HasPrefix(spec, "openai:") {
		return PromptSet{Name: spec, Templates: []string{spec}}, nil
	}
	load := spec
	if rest, ok := strings.CutPrefix(spec, "openai:"); ok {
		var err error
		if load, err = openAISpec(rest); err != nil {
			return PromptSet{}, fmt.Errorf("experiments: prompts %q: %w", spec, err)
		}
	}
	t, err := prompts.Load(load)
	if err != nil {
		return PromptSet{}, fmt.Errorf("experiments: prompts %q: %w", spec, err)
	}
	name := spec
	switch i := strings.LastIndex(spec, "#"); {
	case len(t) == 1:
		name = t[0]
		if name == "{}" {
			name = "bare labels"
		}
	case i >= 0:
		name = fmt.Sprintf("%s ensemble (%d templates)", spec[i+1:], len(t))
	default:
		name = fmt.Sprintf("%s (%d templates)", filepath.Base(spec), len(t))
	}
	return PromptSet{Name: name, Templates: t}, nil
}

// openAISpec resolves the PATH of "openai:PATH#DATASET" (rest is what follows
// "openai:"): as given when it exists, else in the folder fetch templates writes to.
func openAISpec(rest string) (string, error) {
	path, dataset, ok := strings.Cut(rest, "#")
	if !ok || path == "" || dataset == "" {
		return "", fmt.Errorf("want openai:PATH#DATASET, e.g. openai:prompts.md#CIFAR10")
	}
	if _, err := os.Stat(path); err == nil || filepath.IsAbs(path) {
		return "openai:" + rest, nil
	}
	cached, err := download.TemplatesPath()
	if err != nil {
		return "", err
	}
	alt := filepath.Join(filepath.Dir(cached), path)
	if _, err := os.Stat(alt); err != nil {
		return "", fmt.Errorf("%s is neither in the working directory nor in %s: run gorgoclip fetch templates", path, filepath.Dir(cached))
	}
	return "openai:" + alt + "#" + dataset, nil
}

// imageNet80 reads the cached ImageNet ensemble.
func imageNet80() (PromptSet, error) {
	path, err := download.ImageNetTemplatesPath()
	if err != nil {
		return PromptSet{}, fmt.Errorf("experiments: prompts %q: %w", ImageNet80, err)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return PromptSet{}, fmt.Errorf("experiments: prompts %q: %s not found: run gorgoclip fetch templates (or pass that JSON file's path as the prompt set)", ImageNet80, path)
	}
	t, err := prompts.ReadTemplates(path)
	if err != nil {
		return PromptSet{}, fmt.Errorf("experiments: prompts %q: %w (run gorgoclip fetch templates again)", ImageNet80, err)
	}
	return PromptSet{Name: fmt.Sprintf("ImageNet ensemble (%d templates)", len(t)), Templates: t}, nil
}

// Classifier is a zero-shot head: one unit-norm row per class.
type Classifier struct {
	// Weights holds [C,Dim] rows: per class, the mean of its L2-normalised template
	// embeddings, re-normalised.
	Weights []float32
	// RawNorm is the mean over classes of the L2 norm of the class's mean raw
	// (un-normalised) template embedding: the scale of the text tower's output, which
	// the unit Weights have lost and ZS-LP and CLAP start from (probes.Problem.TextNorm).
	RawNorm float64
	// PerTemplate holds, for each template, the [C,Dim] unit-norm rows of that
	// template alone (for per-template accuracy).
	PerTemplate [][]float32
	Dim         int
}

// BuildClassifier encodes every class name in every template and averages per class.
func BuildClassifier(enc TextEncoder, tok *tokenizer.Tokenizer, classNames []string, set PromptSet, contextLength, dim int) (*Classifier, error) {
	if len(classNames) == 0 || len(set.Templates) == 0 {
		return nil, fmt.Errorf("experiments: zero-shot needs class names and templates (got %d and %d)", len(classNames), len(set.Templates))
	}
	// Row order: class-major, template-minor, so class c's prompts are contiguous.
	texts := make([]string, 0, len(classNames)*len(set.Templates))
	for _, name := range classNames {
		for _, t := range set.Templates {
			texts = append(texts, prompts.Apply(t, name))
		}
	}
	ids, err := tok.Tokenize(texts, contextLength, true)
	if err != nil {
		return nil, fmt.Errorf("experiments: tokenizing prompts: %w", err)
	}
	feats, err := enc.EncodeTexts(ids, len(texts))
	if err != nil {
		return nil, fmt.Errorf("experiments: encoding prompts: %w", err)
	}
	T := len(set.Templates)
	perClass := make([][]float32, len(classNames))
	for c := range classNames {
		perClass[c] = feats[c*T*dim : (c+1)*T*dim]
	}
	w, err := clip.ZeroShotWeights(perClass, dim)
	if err != nil {
		return nil, err
	}
	cl := &Classifier{Weights: w, Dim: dim, RawNorm: meanRawNorm(feats, len(classNames), T, dim)}
	if T > 1 {
		for t := 0; t < T; t++ {
			rows := make([]float32, len(classNames)*dim)
			for c := range classNames {
				copy(rows[c*dim:(c+1)*dim], feats[(c*T+t)*dim:(c*T+t+1)*dim])
			}
			clip.L2Normalize(rows, dim)
			cl.PerTemplate = append(cl.PerTemplate, rows)
		}
	}
	return cl, nil
}

// meanRawNorm returns the mean over classes of ||mean_t e_ct||, for the raw template
// embeddings e [classes*T, dim] in class-major order.
func meanRawNorm(e []float32, classes, T, dim int) float64 {
	mean := make([]float64, dim)
	var sum float64
	for c := 0; c < classes; c++ {
		clear(mean)
		for t := 0; t < T; t++ {
			for j, v := range e[(c*T+t)*dim : (c*T+t+1)*dim] {
				mean[j] += float64(v)
			}
		}
		var ss float64
		for _, v := range mean {
			ss += v * v
		}
		sum += math.Sqrt(ss) / float64(T)
	}
	return sum / float64(classes)
}

// ZeroShot classifies test features with cl and returns CLIP_benchmark metrics
// (acc1, acc5, mean_per_class_recall, and acc1's 95% Wilson interval) with per-class
// accuracy and the confusion matrix. scale is exp(logit_scale); it does not change
// the ranking.
func ZeroShot(test *Features, cl *Classifier, classNames []string, set PromptSet, scale float32) (results.Result, error) {
	// Normalise the image features once for the ensemble and every single template.
	img := append([]float32(nil), test.X...)
	clip.L2Normalize(img, cl.Dim)
	m, err := zeroShotMetrics(img, test.Y, cl.Weights, cl.Dim, len(classNames), scale)
	if err != nil {
		return results.Result{}, err
	}
	r := results.Result{
		Task: results.TaskZeroShot, Prompts: set.Name, Test: test.N, ClassNames: classNames,
		Language: results.LanguageEnglish,
		Metrics: map[string]results.Float{
			"acc1": results.Float(m.Top1), "acc5": results.Float(m.Top5),
			"mean_per_class_recall": results.Float(m.MeanPerClassRecall),
		},
		PerClassAccuracy: floats(m.PerClass),
		Confusion:        m.Confusion,
		Skipped:          test.Skipped,
	}
	right := 0
	for c, row := range m.Confusion {
		right += row[c]
	}
	lo, hi := Wilson(right, test.N)
	r.Metrics[results.MetricAcc1Low], r.Metrics[results.MetricAcc1High] = results.Float(lo), results.Float(hi)
	for t, w := range cl.PerTemplate {
		mt, err := zeroShotMetrics(img, test.Y, w, cl.Dim, len(classNames), scale)
		if err != nil {
			return results.Result{}, err
		}
		r.PerTemplate = append(r.PerTemplate, results.TemplateAccuracy{Template: set.Templates[t], Acc1: results.Float(mt.Top1)})
	}
	return r, nil
}

// zeroShotMetrics scores unit-norm image features img [N,dim] against class rows w.
func zeroShotMetrics(img []float32, labels []int, w []float32, dim, classes int, scale float32) (probes.Metrics, error) {
	logits, err := clip.Logits(img, w, dim, scale)
	if err != nil {
		return probes.Metrics{}, err
	}
	return probes.Evaluate(logits, labels, classes)
}

// wilsonZ is the standard normal quantile of a two-sided 95% interval.
const wilsonZ = 1.959963984540054

// Wilson returns the 95% Wilson score interval of an accuracy of k right out of n
// (Wilson 1927): unlike the normal approximation it stays inside [0, 1] and is sound
// near 0% and 100%. n = 0 gives NaN.
func Wilson(k, n int) (lo, hi float64) {
	if n <= 0 {
		return math.NaN(), math.NaN()
	}
	p, fn, z2 := float64(k)/float64(n), float64(n), wilsonZ*wilsonZ
	centre := (p + z2/(2*fn)) / (1 + z2/fn)
	half := wilsonZ * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn)) / (1 + z2/fn)
	return math.Max(0, centre-half), math.Min(1, centre+half)
}

func floats(xs []float64) []results.Float {
	out := make([]results.Float, len(xs))
	for i, v := range xs {
		out[i] = results.Float(v)
	}
	return out
}

func expf(x float32) float64 { return math.Exp(float64(x)) }
