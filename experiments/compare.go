package experiments

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
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
	"github.com/gorgoclip/gorgoclip/probes/coop"
)

// Config describes a zero-shot run or a zero-shot against linear-probe comparison.
// Zero values take the documented defaults.
type Config struct {
	// Weights is the model directory (any layout weights.Load reads).
	Weights string
	// Vocab is the BPE merges file; empty looks beside the weights, then in
	// $GORGOCLIP_VOCAB and the download cache (tokenizer.Open).
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
	// Methods names the classifiers fitted at every k, over the same seeds and so on
	// the same shots (see MethodNames). Default: every method that fits from the
	// cached features (probes.MethodNames), in the registry's order; MethodsAll adds
	// CoOp, which trains prompts through the text tower (minutes a fit with ViT-B/32
	// on two cores, an hour for the default k and seeds), so it is asked for by name.
	// logreg, the CLIP paper's probe, is the only one also fitted on the whole
	// training set.
	Methods []string
	// CoOp configures CoOp's training (zero: the paper's settings).
	CoOp coop.Options
	// PriorPrompts is the prompt-set spec (see ParsePromptSet) of the zero-shot
	// classifier that the methods other than logreg start from, used with the model's
	// exp(logit_scale) and the measured norm of its raw class embeddings
	// (Classifier.RawNorm). It is fixed before any test result is seen, never chosen
	// as the best set on test: default the dataset's own templates when it ships some
	// (as for Prompts), else "photo" ("a photo of a {}."). It is evaluated zero-shot
	// beside Prompts.
	PriorPrompts string
	// NoFull skips logreg on the whole training set.
	NoFull bool
	// C fixes logreg's inverse L2 strength instead of sweeping it on a validation
	// split (the paper's protocol, the default).
	C float64
	// NoNormalize fits logreg on the projected image features as they are. By
	// default they are L2-normalised first, as CLIP_benchmark's linear probe does;
	// the other methods always normalise them.
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

// priorPrompts returns the prompt-set spec of the few-shot methods' zero-shot
// classifier: PriorPrompts or its default.
func (c *Config) priorPrompts() string {
	if c.PriorPrompts != "" {
		return c.PriorPrompts
	}
	if p, ok := datasets.TemplatesFile(c.Dataset); ok {
		return p
	}
	return "photo"
}

// CheckMethods reports what is wrong with c.Methods before anything runs: unknown
// names (every one of them, with the known ones), a name given twice, or an option
// that only methods left out would use (C without logreg, PriorPrompts with logreg
// alone), or CoOp with 16-bit weights.
func (c *Config) CheckMethods() error {
	_, err := c.methods()
	return err
}

// MethodNames lists every method compare can fit: the feature-only methods of
// probes.MethodNames, then CoOp (coop.Name), which trains prompts through the model's
// text tower.
func MethodNames() []string { return append(probes.MethodNames(), coop.Name) }

// MethodsAll is the Methods value that selects every method, CoOp included.
const MethodsAll = "all"

// method makes the method called name with its defaults, logreg configured by C.
// Every fit gets a new one, so that no state passes between fits. CoOp comes without
// its model, tokenizer and class names: the fitting stage gives it those.
func (c *Config) method(name string) (probes.Method, error) {
	if name == coop.Name {
		return &coop.Method{Options: c.CoOp}, nil
	}
	m, err := probes.NewMethod(name)
	if lr, ok := m.(*probes.LogReg); ok {
		lr.Config.C, lr.Sweep = c.C, c.C == 0
	}
	return m, err
}

// methods makes the methods of c.Methods: every feature-only method when empty, every
// method with MethodsAll.
func (c *Config) methods() ([]probes.Method, error) {
	names := c.Methods
	switch {
	case len(names) == 0:
		names = probes.MethodNames()
	case len(names) == 1 && names[0] == MethodsAll:
		names = MethodNames()
	}
	var ms []probes.Method
	var unknown []string
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			return nil, fmt.Errorf("experiments: method %q is given twice", name)
		}
		m, err := c.method(name)
		if err != nil {
			unknown = append(unknown, strconv.Quote(name))
			continue
		}
		ms = append(ms, m)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("experiments: unknown method%s %s (known: %s, or %s for every one)", plural(len(unknown)), strings.Join(unknown, ", "),
			strings.Join(MethodNames(), ", "), MethodsAll)
	}
	switch {
	case c.C != 0 && !slices.ContainsFunc(ms, isLogReg):
		return nil, fmt.Errorf("experiments: C fixes logreg's L2 strength, but the methods (%s) leave logreg out", strings.Join(names, ", "))
	case c.PriorPrompts != "" && !slices.ContainsFunc(ms, usesText):
		return nil, fmt.Errorf("experiments: prior prompts %q are for the few-shot methods that start from the zero-shot classifier; %s do not use them",
			c.PriorPrompts, strings.Join(names, ", "))
	case slices.Contains(names, coop.Name) && (c.Precision == "bf16" || c.Precision == "fp16"):
		return nil, fmt.Errorf("experiments: %s trains through the text tower's gradients, which need float32 weights: run it with precision fp32, not %s", coop.Name, c.Precision)
	}
	return ms, nil
}

func isLogReg(m probes.Method) bool { _, ok := m.(*probes.LogReg); return ok }

// usesText reports whether m starts from the zero-shot classifier
// (probes.Problem.Text): every method but the paper's probe and CoOp, which learns its
// prompts from words of its own.
func usesText(m probes.Method) bool {
	_, isCoOp := m.(*coop.Method)
	return !isLogReg(m) && !isCoOp
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
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

// Compare runs zero-shot with every prompt set, and every method of Methods at every
// k over Seeds draws of the shots (the same shots for every method: they depend on
// the seed only) and logreg on the full training set, all on the same cached image
// features, then writes Out/results.json (one result per method, k and seed, and a
// summary per method and k), the CLIP_benchmark export (results.WriteCLIPBenchmark),
// the plots and Out/report.md. A method that some class has too few training images
// for at a k (the shots plus its validation set) is skipped there and listed in
// Comparison.SkippedShots.
func Compare(cfg Config) (*results.Comparison, error) {
	cfg.defaults()
	if cfg.Out == "" {
		return nil, fmt.Errorf("experiments: compare needs an output directory")
	}
	// Fail before the hours of feature extraction, not after.
	methods, err := cfg.methods()
	if err != nil {
		return nil, err
	}
	priorSpec := ""
	if slices.ContainsFunc(methods, usesText) {
		priorSpec = cfg.priorPrompts()
		if _, err := ParsePromptSet(priorSpec); err != nil {
			return nil, fmt.Errorf("%w (the few-shot methods' prior)", err)
		}
		if !slices.Contains(cfg.Prompts, priorSpec) {
			cfg.Prompts = append(slices.Clip(cfg.Prompts), priorSpec)
		}
	}
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
		cmp.Features = "projected (encode_image output), not normalised for logreg (CLIP_benchmark normalises them; the few-shot methods always do)"
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
	run := probeRun{cfg: &cfg, methods: methods, train: train, test: test, names: names, model: s.model, tok: s.tok}
	if priorSpec != "" {
		i := slices.Index(cfg.Prompts, priorSpec)
		run.prior = &prior{cl: cls[i], prompts: cmp.ZeroShot[i].Prompts, logitScale: expf(s.model.LogitScale())}
		cfg.logf("few-shot prior: the zero-shot classifier of %q (top-1 %.2f%%), raw class-embedding norm %.4g, logit scale %.4g",
			run.prior.prompts, 100*cmp.ZeroShot[i].Metrics["acc1"], run.prior.cl.RawNorm, run.prior.logitScale)
	}
	if cmp.Probes, cmp.SkippedShots, err = run.fit(); err != nil {
		return nil, err
	}
	for i := range cmp.Probes {
		s.label(&cmp.Probes[i])
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

// prior is the zero-shot classifier the few-shot methods start from.
type prior struct {
	cl *Classifier
	// prompts names its prompt set, as its zero-shot result does.
	prompts    string
	logitScale float64
}

// probeRun is compare's fitting stage: every method at every k over the seeds, all
// on the same features, and logreg on the full training set.
type probeRun struct {
	cfg     *Config
	methods []probes.Method
	// model and tok train CoOp's prompts.
	model       *clip.Model
	tok         *tokenizer.Tokenizer
	train, test *Features
	names       []string
	// prior is nil when only logreg runs.
	prior *prior
}

// fit fits the methods, showing progress, and returns their results (method-major,
// then k, then seed, and logreg's full-data fit last; unlabelled) and the k each
// method could not be fitted at.
func (r probeRun) fit() ([]results.Result, results.SkippedShots, error) {
	cfg := r.cfg
	train, test := r.train, r.test
	trainD := probes.Dataset{X: train.X, Y: train.Y, N: train.N, D: train.Dim}
	testD := probes.Dataset{X: test.X, Y: test.Y, N: test.N, D: test.Dim}
	if !cfg.NoNormalize {
		trainD.X, testD.X = slices.Clone(train.X), slices.Clone(test.X)
		clip.L2Normalize(trainD.X, train.Dim)
		clip.L2Normalize(testD.X, test.Dim)
	}
	type fit struct {
		m           probes.Method
		shots, seed int
	}
	var fits []fit
	for _, m := range r.methods {
		for _, k := range cfg.Shots {
			for seed := 0; seed < cfg.Seeds; seed++ {
				fits = append(fits, fit{m, k, seed})
			}
		}
	}
	// The paper's probe on the full training set comes last, as it always has.
	if i := slices.IndexFunc(r.methods, isLogReg); i >= 0 && !cfg.NoFull {
		fits = append(fits, fit{r.methods[i], 0, 0})
	}
	bar := progress.New(cfg.Log, "probes", len(fits), "fits")
	var out []results.Result
	var skipped results.SkippedShots
	elapsed := map[string]time.Duration{}
	for _, f := range fits {
		name := f.m.Name()
		m, err := cfg.method(name)
		if err != nil {
			return nil, nil, err
		}
		if cm, ok := m.(*coop.Method); ok {
			cm.Model, cm.Tokenizer, cm.ClassNames = r.model, r.tok, r.names
			cm.Options.Seed += uint64(f.seed)
		}
		k := fmt.Sprint(f.shots)
		if f.shots == 0 {
			k = "full"
		}
		p := probes.Protocol{Method: m, Shots: f.shots, Seed: uint64(f.seed),
			Logf: func(format string, args ...any) {
				bar.Detail("%s k=%s seed=%d: %s", name, k, f.seed, fmt.Sprintf(format, args...))
			}}
		if usesText(f.m) {
			p.Text, p.TextNorm, p.LogitScale = r.prior.cl.Weights, r.prior.cl.RawNorm, r.prior.logitScale
		}
		t0 := time.Now()
		o, err := probes.Run(trainD, testD, len(r.names), p)
		elapsed[name] += time.Since(t0)
		bar.Add(1)
		if errors.Is(err, probes.ErrTooFewExamples) {
			// A small --train-limit cannot give every k: the curve stops where the data does.
			cfg.logf("probe %s k=%d seed=%d skipped: %v", name, f.shots, f.seed, err)
			if skipped == nil {
				skipped = results.SkippedShots{}
			}
			if !slices.Contains(skipped[name], f.shots) {
				skipped[name] = append(skipped[name], f.shots)
			}
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("experiments: %s k=%s seed=%d: %w", name, k, f.seed, err)
		}
		hp := maps.Clone(o.Params)
		delete(hp, "C") // C has its own field
		if len(hp) == 0 {
			hp = nil
		}
		res := results.Result{Task: results.TaskLinearProbe, Method: name, Shots: f.shots, Seed: int64(f.seed), C: o.C,
			Train: o.Train, Val: o.Val, Test: test.N, Hyperparameters: hp, ClassNames: r.names,
			Metrics: map[string]results.Float{
				"lp_acc1": results.Float(o.Metrics.Top1), "lp_acc5": results.Float(o.Metrics.Top5),
				"lp_mean_per_class_recall": results.Float(o.Metrics.MeanPerClassRecall),
			},
			PerClassAccuracy: floats(o.Metrics.PerClass), Confusion: o.Metrics.Confusion,
		}
		if usesText(f.m) {
			res.Prompts = r.prior.prompts
		}
		cfg.logf("probe %-13s k=%-4s seed=%d top-1 %6.2f%%  %s (%d train, %d validation, %.1fs)",
			name, k, f.seed, 100*o.Metrics.Top1, paramsText(o.Params), o.Train, o.Val, time.Since(t0).Seconds())
		out = append(out, res)
	}
	bar.Done()
	var times []string
	for _, m := range r.methods {
		times = append(times, fmt.Sprintf("%s %.1fs", m.Name(), elapsed[m.Name()].Seconds()))
	}
	cfg.logf("fit and test time per method: %s", strings.Join(times, ", "))
	return out, skipped, nil
}

// paramsText writes hyperparameters as "name=value" pairs in name order.
func paramsText(params map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		parts = append(parts, fmt.Sprintf("%s=%.4g", k, params[k]))
	}
	return strings.Join(parts, " ")
}

// summarize gives, per method and k in the order of rs, the mean and sample
// standard deviation of lp_acc1 over seeds.
func summarize(rs []results.Result) []results.ShotSummary {
	type key struct {
		method string
		shots  int
	}
	var order []key
	by := map[key][]results.Result{}
	for _, r := range rs {
		k := key{r.Method, r.Shots}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], r)
	}
	out := make([]results.ShotSummary, 0, len(order))
	for _, k := range order {
		acc := make([]float64, len(by[k]))
		val := 0
		for i, r := range by[k] {
			acc[i] = float64(r.Metrics["lp_acc1"])
			val = max(val, r.Val)
		}
		m, sd := probes.MeanStd(acc)
		out = append(out, results.ShotSummary{Method: k.method, Shots: k.shots, Seeds: len(acc), Mean: results.Float(m), Std: results.Float(sd), Val: val})
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
