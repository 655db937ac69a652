package experiments

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/internal/progress"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/datasets"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/plots"
	"github.com/gorgoclip/gorgoclip/probes"
)

// Config describes a zero-shot run or a zero-shot against linear-probe comparison.
// Zero values take the documented defaults.
type Config struct {
	// Weights is the model directory (any layout weights.Load reads).
	Weights string
	// Vocab is the BPE merges file; empty looks beside the weights, then in
	// $GORGOCLIP_VOCAB and the download cache, else uses the built-in vocabulary.
	Vocab string
	// Dataset is a dataset spec (see datasets.Open), e.g. "imagefolder:data/imagenette2-160".
	Dataset string
	// DatasetName names the dataset in results, as CLIP_benchmark names it
	// ("cifar10", "imagenet1k"). Default: the spec's last path element.
	DatasetName string
	// TrainLimit and TestLimit keep that many items of each split (0 = all), drawn
	// with LimitSeed: the training subset class-balanced (datasets.Options.Balanced),
	// the test subset a uniform draw.
	TrainLimit, TestLimit int
	LimitSeed             uint64
	// Prompts are prompt-set specs (see ParsePromptSet). Default: the dataset's own
	// templates when it ships some (a wds: dataset's
	// zeroshot_classification_templates.txt), else "bare" and "photo".
	Prompts []string
	// Shots are the k of the k-shot probes. Default: 1, 2, 4, 8, 16.
	Shots []int
	// Seeds is the number of k-shot draws per k. Default 3.
	Seeds int
	// NoFull skips the probe on the whole training set.
	NoFull bool
	// C fixes the probe's inverse L2 strength instead of sweeping it on a
	// validation split (the paper's protocol, the default).
	C float64
	// NoNormalize fits the probes on the projected image features as they are.
	// By default they are L2-normalised first, as CLIP_benchmark's linear probe does.
	NoNormalize bool
	// BatchSize is the number of images per model run (default 32).
	BatchSize int
	// Device runs the model: "cpu" (default) or "cuda" (a build with make cuda).
	Device string
	// Precision is the towers' number format: "fp32" (default) or "bf16" (see
	// clip.WithPrecision). bf16 features are cached apart from fp32 ones.
	Precision string
	// Workers decode and preprocess images (default: the number of CPUs).
	Workers int
	// CacheDir keeps image features between runs; empty means Out/cache.
	CacheDir string
	// SkipBad skips unreadable images (listed in the results) instead of failing.
	SkipBad bool
	// Out is the directory for results.json, the plots and report.md.
	Out string
	// Model and Pretrained label the results (default: the weights' config name and
	// the weights directory's name).
	Model, Pretrained string
	// Provenance goes into every results file; the run fills in what it lacks (the
	// weights' checksum, the version, the date; the command line from os.Args).
	Provenance results.Provenance
	// Log receives progress lines; nil for silence. A progress.Log keeps a terminal
	// status line below the other messages.
	Log io.Writer
}

func (c *Config) defaults() {
	if len(c.Prompts) == 0 {
		c.Prompts = []string{"bare", "photo"}
		if p, ok := datasets.TemplatesFile(c.Dataset); ok {
			c.Prompts = []string{p}
		}
	}
	if c.DatasetName == "" {
		c.DatasetName = plots.DatasetLabel(c.Dataset)
	}
	if c.Log != nil {
		c.Log = progress.NewLog(c.Log)
	}
	if c.Shots == nil {
		c.Shots = []int{1, 2, 4, 8, 16}
	}
	if c.Seeds <= 0 {
		c.Seeds = 3
	}
	if c.CacheDir == "" && c.Out != "" {
		c.CacheDir = filepath.Join(c.Out, "cache")
	}
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// session holds what a run loads once: model, tokenizer, dataset splits' features.
type session struct {
	cfg     *Config
	model   *clip.Model
	tok     *tokenizer.Tokenizer
	modelID string
}

func open(cfg *Config) (*session, error) {
	if cfg.Weights == "" || cfg.Dataset == "" {
		return nil, fmt.Errorf("experiments: weights and dataset are required")
	}
	tok, _, err := tokenizer.Open(cfg.Vocab, cfg.Weights)
	if err != nil {
		return nil, err
	}
	m, err := loadModel(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Model == "" {
		cfg.Model = m.Config().Name
		if cfg.Model == "" {
			cfg.Model = "CLIP"
		}
	}
	if cfg.Pretrained == "" {
		abs, _ := filepath.Abs(cfg.Weights)
		cfg.Pretrained = filepath.Base(abs)
	}
	if cfg.Provenance.WeightsSHA256 == "" {
		if cfg.Provenance.WeightsSHA256, err = WeightsSHA256(cfg.Weights); err != nil {
			m.Close()
			return nil, err
		}
	}
	cfg.Provenance.Stamp()
	return &session{cfg: cfg, model: m, tok: tok, modelID: cacheModelID(cfg, m)}, nil
}

// loadModel loads cfg's weights for cfg's batch size, device and precision.
func loadModel(cfg *Config) (*clip.Model, error) {
	bs := cfg.BatchSize
	if bs <= 0 {
		bs = clip.DefaultBatchSize
	}
	prec := graph.FP32
	if cfg.Precision != "" {
		var err error
		if prec, err = graph.ParsePrecision(cfg.Precision); err != nil {
			return nil, fmt.Errorf("experiments: %w", err)
		}
	}
	return clip.Load(cfg.Weights, clip.WithBatchSize(bs), clip.WithDevice(cfg.Device), clip.WithPrecision(prec))
}

// cacheModelID names m's features in the cache: the weights (ModelID), and the
// precision when it is not fp32, so that bf16 features never stand in for fp32 ones.
func cacheModelID(cfg *Config, m *clip.Model) string {
	id := ModelID(cfg.Weights)
	if p := m.Precision(); p != graph.FP32 {
		id += " " + p.String()
	}
	return id
}

func (s *session) features(split string, limit int) (datasets.Dataset, *Features, error) {
	x := s.cfg.extraction(s.model, s.modelID, split, limit)
	ds, err := x.openDataset()
	if err != nil {
		return nil, nil, err
	}
	f, err := ImageFeatures(s.model, ds, x)
	if err != nil {
		return nil, nil, err
	}
	if len(f.Skipped) > 0 {
		s.cfg.logf("skipped %d unreadable images of %s (listed in the results)", len(f.Skipped), ds.Name())
	}
	return ds, f, nil
}

// zeroShot evaluates every prompt set on test. It also returns the classifier of
// each set, for the similarity figure.
func (s *session) zeroShot(classNames []string, test *Features) ([]results.Result, []*Classifier, error) {
	mc := s.model.Config()
	scale := float32(expf(s.model.LogitScale()))
	var out []results.Result
	var cls []*Classifier
	for _, spec := range s.cfg.Prompts {
		set, err := ParsePromptSet(spec)
		if err != nil {
			return nil, nil, err
		}
		cl, err := BuildClassifier(s.model, s.tok, classNames, set, mc.Text.ContextLength, mc.EmbedDim)
		if err != nil {
			return nil, nil, err
		}
		cls = append(cls, cl)
		r, err := ZeroShot(test, cl, classNames, set, scale)
		if err != nil {
			return nil, nil, err
		}
		s.label(&r)
		r.Seed = int64(s.cfg.LimitSeed)
		s.cfg.logf("zero-shot %-28q top-1 %.2f%% (95%% interval %.2f-%.2f)  top-5 %.2f%%  mean per-class recall %.2f%%",
			set.Name, 100*r.Metrics["acc1"], 100*r.Metrics[results.MetricAcc1Low], 100*r.Metrics[results.MetricAcc1High],
			100*r.Metrics["acc5"], 100*r.Metrics["mean_per_class_recall"])
		out = append(out, r)
	}
	return out, cls, nil
}

func (s *session) label(r *results.Result) {
	r.Dataset, r.Model, r.Pretrained, r.Language = s.cfg.DatasetName, s.cfg.Model, s.cfg.Pretrained, results.LanguageEnglish
}

// comparison returns the results file's header: what was run on what, by whom.
func (s *session) comparison(names []string) *results.Comparison {
	return &results.Comparison{Dataset: s.cfg.DatasetName, DatasetSpec: canonicalSpec(s.cfg.Dataset),
		Model: s.cfg.Model, Pretrained: s.cfg.Pretrained, Language: results.LanguageEnglish,
		ClassNames: names, Provenance: s.cfg.Provenance}
}

// ZeroShotFile is the name of the results file ZeroShotRun writes.
const ZeroShotFile = "zeroshot.json"

// ZeroShotRun evaluates the prompt sets on the test split and, with an Out
// directory, writes Out/ZeroShotFile (a Comparison without probes, which gorgoclip
// report draws) and the CLIP_benchmark export (results.WriteCLIPBenchmark).
func ZeroShotRun(cfg Config) (*results.Comparison, error) {
	cfg.defaults()
	if cfg.Out != "" {
		if err := checkWritable(cfg.Out, "output"); err != nil {
			return nil, err
		}
	}
	s, err := open(&cfg)
	if err != nil {
		return nil, err
	}
	defer s.model.Close()
	ds, test, err := s.features("test", cfg.TestLimit)
	if err != nil {
		return nil, err
	}
	cmp := s.comparison(ds.ClassNames())
	if cmp.ZeroShot, _, err = s.zeroShot(ds.ClassNames(), test); err != nil {
		return nil, err
	}
	if len(test.Skipped) > 0 {
		cmp.Skipped = map[string][]string{"test": test.Skipped}
	}
	if cfg.Out != "" {
		if err := results.Save(filepath.Join(cfg.Out, ZeroShotFile), cmp); err != nil {
			return nil, err
		}
		if _, err := results.WriteCLIPBenchmark(cfg.Out, cmp); err != nil {
			return nil, err
		}
	}
	return cmp, nil
}

// Compare runs zero-shot with every prompt set and linear probes at every k (over
// Seeds draws) and on the full training set, all on the same cached image features,
// then writes Out/results.json, the CLIP_benchmark export (results.WriteCLIPBenchmark),
// the plots and Out/report.md.
func Compare(cfg Config) (*results.Comparison, error) {
	cfg.defaults()
	if cfg.Out == "" {
		return nil, fmt.Errorf("experiments: compare needs an output directory")
	}
	// Fail before the hours of feature extraction, not after.
	if err := checkWritable(cfg.Out, "output"); err != nil {
		return nil, err
	}
	s, err := open(&cfg)
	if err != nil {
		return nil, err
	}
	defer s.model.Close()
	testDS, test, err := s.features("test", cfg.TestLimit)
	if err != nil {
		return nil, err
	}
	_, train, err := s.features("train", cfg.TrainLimit)
	if err != nil {
		return nil, err
	}
	names := testDS.ClassNames()
	cmp := s.comparison(names)
	cmp.Features = "projected (encode_image output), L2-normalised as CLIP_benchmark's linear probe does"
	if cfg.NoNormalize {
		cmp.Features = "projected (encode_image output), not normalised (CLIP_benchmark normalises them)"
	}
	for split, f := range map[string]*Features{"train": train, "test": test} {
		if len(f.Skipped) > 0 {
			if cmp.Skipped == nil {
				cmp.Skipped = map[string][]string{}
			}
			cmp.Skipped[split] = f.Skipped
		}
	}
	var cls []*Classifier
	if cmp.ZeroShot, cls, err = s.zeroShot(names, test); err != nil {
		return nil, err
	}
	if cmp.Probes, cmp.SkippedShots, err = s.probes(train, test, names); err != nil {
		return nil, err
	}
	cmp.Summary = summarize(cmp.Probes)
	if err := results.Save(filepath.Join(cfg.Out, "results.json"), cmp); err != nil {
		return nil, err
	}
	if _, err := results.WriteCLIPBenchmark(cfg.Out, cmp); err != nil {
		return nil, err
	}
	if best, ok := plots.BestZeroShot(cmp.ZeroShot); ok {
		sim := similarity{ds: testDS, test: test, cl: cls[best], names: names, prompts: cmp.ZeroShot[best].Prompts,
			title: plots.DatasetLabel(cmp.Dataset) + ", " + plots.ModelName(cmp.Model, cmp.Pretrained)}
		if err := sim.save(filepath.Join(cfg.Out, plots.FileSimilarity)); err != nil {
			return nil, err
		}
	}
	if err := plots.Report(cmp, cfg.Out); err != nil {
		return nil, err
	}
	cfg.logf("wrote %s, %s and %s", filepath.Join(cfg.Out, "results.json"), filepath.Join(cfg.Out, results.CLIPBenchmarkDir),
		filepath.Join(cfg.Out, "report.md"))
	return cmp, nil
}

// probes fits the k-shot probes over the seeds and the full-data probe, showing
// their progress, and returns their results and the k that the data could not give.
func (s *session) probes(train, test *Features, names []string) ([]results.Result, []int, error) {
	cfg := s.cfg
	trainD := probes.Dataset{X: train.X, Y: train.Y, N: train.N, D: train.Dim}
	testD := probes.Dataset{X: test.X, Y: test.Y, N: test.N, D: test.Dim}
	if !cfg.NoNormalize {
		trainD.X, testD.X = slices.Clone(train.X), slices.Clone(test.X)
		clip.L2Normalize(trainD.X, train.Dim)
		clip.L2Normalize(testD.X, test.Dim)
	}
	type run struct{ shots, seed int }
	var runs []run
	for _, k := range cfg.Shots {
		for seed := 0; seed < cfg.Seeds; seed++ {
			runs = append(runs, run{k, seed})
		}
	}
	if !cfg.NoFull {
		runs = append(runs, run{0, 0})
	}
	bar := progress.New(cfg.Log, "probes", len(runs), "fits")
	var out []results.Result
	var skipped []int
	for _, r := range runs {
		t0 := time.Now()
		k := fmt.Sprint(r.shots)
		if r.shots == 0 {
			k = "full"
		}
		p := probes.Protocol{Sweep: cfg.C == 0, Fit: probes.Config{C: cfg.C}, Shots: r.shots, Seed: uint64(r.seed),
			Logf: func(format string, args ...any) {
				bar.Detail("k=%s seed=%d: %s", k, r.seed, fmt.Sprintf(format, args...))
			}}
		o, err := probes.Run(trainD, testD, len(names), p)
		bar.Add(1)
		if errors.Is(err, probes.ErrTooFewExamples) {
			// A small --train-limit cannot give every k: the curve stops where the data does.
			cfg.logf("probe k=%d seed=%d skipped: %v", r.shots, r.seed, err)
			if !slices.Contains(skipped, r.shots) {
				skipped = append(skipped, r.shots)
			}
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("experiments: probe k=%d seed=%d: %w", r.shots, r.seed, err)
		}
		res := results.Result{Task: results.TaskLinearProbe, Shots: r.shots, Seed: int64(r.seed), C: o.C,
			Train: o.Train, Test: test.N, ClassNames: names,
			Metrics: map[string]results.Float{
				"lp_acc1": results.Float(o.Metrics.Top1), "lp_acc5": results.Float(o.Metrics.Top5),
				"lp_mean_per_class_recall": results.Float(o.Metrics.MeanPerClassRecall),
			},
			PerClassAccuracy: floats(o.Metrics.PerClass), Confusion: o.Metrics.Confusion,
		}
		s.label(&res)
		cfg.logf("probe k=%-4s seed=%d C=%-9.3g top-1 %.2f%% (%d train, %.1fs)", k, r.seed, o.C, 100*o.Metrics.Top1, o.Train, time.Since(t0).Seconds())
		out = append(out, res)
	}
	bar.Done()
	return out, skipped, nil
}

// summarize gives mean and sample standard deviation of lp_acc1 over seeds per k.
func summarize(rs []results.Result) []results.ShotSummary {
	var order []int
	by := map[int][]float64{}
	for _, r := range rs {
		if _, ok := by[r.Shots]; !ok {
			order = append(order, r.Shots)
		}
		by[r.Shots] = append(by[r.Shots], float64(r.Metrics["lp_acc1"]))
	}
	out := make([]results.ShotSummary, 0, len(order))
	for _, k := range order {
		m, sd := probes.MeanStd(by[k])
		out = append(out, results.ShotSummary{Shots: k, Seeds: len(by[k]), Mean: results.Float(m), Std: results.Float(sd)})
	}
	return out
}

// canonicalSpec makes a dataset spec's path absolute ("imagefolder:ds" run from /a
// becomes "imagefolder:/a/ds").
func canonicalSpec(spec string) string {
	kind, path, ok := strings.Cut(spec, ":")
	if !ok {
		return spec
	}
	if abs, err := filepath.Abs(path); err == nil {
		return kind + ":" + abs
	}
	return spec
}

// similarity is the cosine similarity between one test image per class (the first
// of each of up to plots.MaxSimilarityClasses classes) and those classes' zero-shot
// embeddings with one prompt set, drawn with thumbnails as in OpenAI's CLIP notebook.
type similarity struct {
	ds      datasets.Dataset
	test    *Features
	cl      *Classifier
	names   []string
	prompts string // the prompt set's name
	title   string // dataset and model
}

// save draws the figure to base (without extension).
func (s similarity) save(base string) error {
	var classes, rows []int
	seen := map[int]bool{}
	for r, y := range s.test.Y {
		if !seen[y] && len(classes) < plots.MaxSimilarityClasses {
			seen[y] = true
			classes, rows = append(classes, y), append(rows, r)
		}
	}
	if len(classes) == 0 {
		return nil
	}
	sort.Sort(byClass{classes, rows})
	dim := s.test.Dim
	fig := plots.Similarity{
		Title: fmt.Sprintf("%s: cosine similarity of images and class prompts, %q", s.title, s.prompts),
		Subtitle: fmt.Sprintf("the first test image of %d of the %d classes (at most %d drawn), captioned with its true class",
			len(classes), len(s.names), plots.MaxSimilarityClasses),
	}
	for _, c := range classes {
		fig.Texts = append(fig.Texts, s.names[c])
		fig.Values = append(fig.Values, make([]float64, len(rows)))
	}
	for j, r := range rows {
		img := append([]float32(nil), s.test.X[r*dim:(r+1)*dim]...)
		clip.L2Normalize(img, dim)
		for i, c := range classes {
			var dot float64
			for k, v := range s.cl.Weights[c*dim : (c+1)*dim] {
				dot += float64(v) * float64(img[k])
			}
			fig.Values[i][j] = dot
		}
		it, err := s.ds.Item(s.test.Index[r])
		if err != nil {
			return err
		}
		m, err := it.Decode()
		if err != nil {
			return err
		}
		fig.Images = append(fig.Images, m)
		fig.Captions = append(fig.Captions, s.names[s.test.Y[r]])
	}
	f, err := plots.SimilarityFigure(fig)
	if err != nil {
		return err
	}
	return f.Save(base)
}

// byClass sorts the chosen classes and their rows together.
type byClass struct{ classes, rows []int }

func (b byClass) Len() int           { return len(b.classes) }
func (b byClass) Less(i, j int) bool { return b.classes[i] < b.classes[j] }
func (b byClass) Swap(i, j int) {
	b.classes[i], b.classes[j] = b.classes[j], b.classes[i]
	b.rows[i], b.rows[j] = b.rows[j], b.rows[i]
}
