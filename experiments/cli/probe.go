package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/probes"
	"github.com/gorgoclip/gorgoclip/probes/coop"
)

func init() {
	register(Command{
		Name:    "probe",
		Summary: "fit a linear probe or a few-shot method (zs-lp, clap, lp++, tip-adapter) on .npy features",
		Run:     runProbe,
	})
}

var probeUsage = `--train-features F --train-labels L --test-features F --test-labels L [--method M] [flags]

Fits a classifier on float32 [N,D] features with integer [N] labels (any integer
dtype) and writes CLIP_benchmark-style JSON (task linear_probe; metrics lp_acc1,
lp_acc5, lp_mean_per_class_recall; method, fewshot_k (-1 for the full set), seed,
n_train, n_val, the hyperparameters used) to -o, or to stdout. --logits-out writes the
test logits, float32 [M,K]. --train-features and --test-features may also name a split's
feature-cache directory, as gorgoclip extract prints it, which holds the labels. Progress
goes to stderr.

--method logreg (the default) is the CLIP paper's probe: --C has scikit-learn's meaning,
loss = C * sum of cross-entropies + ||W||^2/2 (intercept not penalised). --sweep chooses C
on a validation set: for a k-shot probe min(k, 4) images per class disjoint from the shots
(as for every method below); on the full set the paper's split of --val-fraction of each
class, then a refit on all. coop (CoOp) learns --n-ctx context vectors in front of each class name
(--ctx-init "a photo of a" starts from those words; --class-specific gives each class its
own) through the frozen text tower of --weights, for --class-names (one a line, label
order), with the paper's schedule: SGD (momentum 0.9, weight decay 5e-4), lr 0.002 with a
cosine decay after one warm-up epoch at 1e-5, batch 32, 50/100/200 epochs for 1/2-4/8-16
shots (--epochs overrides); it chooses nothing on a validation set. The other methods are
few-shot methods that use the zero-shot classifier --text-features W.npy (float32 [K,D]: per class the mean of the normalised
template embeddings, renormalised, as zeroshot builds it) and need --shots k; they
L2-normalise the features. Hyperparameters are chosen on the validation set, never on the
test set:

` + probes.MethodHelp()

func runProbe(env *Env, args []string) error {
	fs := newFlags(env, "probe", probeUsage)
	trainX := fs.String("train-features", "", "training features, float32 [N,D] .npy")
	trainY := fs.String("train-labels", "", "training labels, integer [N] .npy")
	testX := fs.String("test-features", "", "test features, float32 [M,D] .npy")
	testY := fs.String("test-labels", "", "test labels, integer [M] .npy")
	method := fs.String("method", "logreg", "classifier: "+strings.Join(experiments.MethodNames(), ", "))
	textPath := fs.String("text-features", "", "zero-shot classifier, float32 [K,D] .npy (all methods but logreg)")
	logitScale := fs.Float64("logit-scale", probes.DefaultLogitScale, "exp(logit_scale) of the CLIP model, the zero-shot logits' scale")
	alpha := fs.Float64("alpha", 0, "Tip-Adapter's residual ratio (with --beta: fixes both instead of searching)")
	beta := fs.Float64("beta", 0, "Tip-Adapter's sharpness (with --alpha)")
	initNorm := fs.Float64("init-norm", probes.DefaultInitNorm, "norm of ZS-LP's and CLAP's initial prototypes and anchors")
	logitsOut := fs.String("logits-out", "", "write the test logits, float32 [M,K] .npy")
	c := fs.Float64("C", 0, "inverse L2 strength (default 1; excludes --sweep)")
	sweep := fs.Bool("sweep", false, "choose C on a validation set")
	shots := fs.Int("shots", 0, "k examples per class for a k-shot problem (0: all)")
	seed := fs.Uint64("seed", 0, "seed of the shots and of the validation set")
	valFrac := fs.Float64("val-fraction", probes.DefaultValFraction, "share of each class held out for --sweep on the full training set")
	numClasses := fs.Int("classes", 0, "number of classes (default: the zero-shot classifier's rows, or largest label + 1)")
	maxIter := fs.Int("max-iter", probes.DefaultMaxIter, "L-BFGS iteration limit")
	tol := fs.Float64("tol", probes.DefaultTol, "stop when every gradient component of loss/C is below this")
	threads := fs.Int("threads", runtime.GOMAXPROCS(0), "goroutines per loss evaluation")
	every := fs.Int("log-every", 100, "print optimiser progress every this many iterations (0: never)")
	dataset := fs.String("dataset", "", "dataset name for the results")
	model := fs.String("model", "", "model name for the results (e.g. ViT-B-32)")
	pretrained := fs.String("pretrained", "", "weights name for the results (e.g. openai)")
	weightsDir := fs.String("weights", "", "CLIP model whose text tower CoOp trains prompts through (coop)")
	classNames := fs.String("class-names", "", "class names, one a line in label order (coop)")
	device := fs.String("device", "cpu", deviceHelp+" (coop)")
	nCtx := fs.Int("n-ctx", 0, fmt.Sprintf("CoOp's context vectors (default %d; with --ctx-init, its number of tokens)", coop.DefaultNCtx))
	ctxInit := fs.String("ctx-init", "", `words CoOp's context starts from, e.g. "a photo of a" (default: random)`)
	classSpecific := fs.Bool("class-specific", false, "one CoOp context per class (CSC) instead of one shared")
	epochs := fs.Int("epochs", 0, "CoOp's epochs (default: 50, 100 or 200 by shots, as the paper)")
	out := fs.String("o", "", "write the results JSON here instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var m probes.Method
	if *method == coop.Name {
		m = &coop.Method{Options: coop.Options{NCtx: *nCtx, Init: *ctxInit, ClassSpecific: *classSpecific, Epochs: *epochs, Seed: *seed}}
	} else if pm, err := probes.NewMethod(*method); err != nil {
		return Usagef("--method: %v (or %s)", err, coop.Name)
	} else {
		m = pm
	}
	isCoOp := m.Name() == coop.Name
	isLogReg := m.Name() == "logreg"
	switch {
	case fs.NArg() > 0:
		return Usagef("unexpected argument %q", fs.Arg(0))
	case *trainX == "" || *testX == "":
		return Usagef("--train-features and --test-features are required, with --train-labels and --test-labels for .npy files")
	case *sweep && *c != 0:
		return Usagef("--C and --sweep exclude each other")
	case *c < 0 || math.IsNaN(*c) || math.IsInf(*c, 0):
		return Usagef("--C %v: need a positive finite value", *c)
	case *shots < 0:
		return Usagef("--shots %d: need >= 0", *shots)
	case *sweep && !(*valFrac > 0 && *valFrac < 1):
		return Usagef("--val-fraction %v: need a value in (0, 1)", *valFrac)
	case *maxIter < 1 || *threads < 1 || *every < 0 || !(*tol >= 0) || *numClasses < 0:
		return Usagef("--max-iter and --threads need >= 1, --log-every, --tol and --classes >= 0")
	case !(*logitScale > 0) || math.IsInf(*logitScale, 0):
		return Usagef("--logit-scale %v: need a positive finite value", *logitScale)
	case !(*initNorm > 0) || math.IsInf(*initNorm, 0):
		return Usagef("--init-norm %v: need a positive finite value", *initNorm)
	case set["alpha"] != set["beta"]:
		return Usagef("--alpha and --beta fix Tip-Adapter's two values together; give both or neither")
	case set["alpha"] && !(*alpha > 0 && *beta > 0 && !math.IsInf(*alpha+*beta, 0)):
		return Usagef("--alpha %v --beta %v: need positive finite values", *alpha, *beta)
	case set["val-fraction"] && (*shots > 0 || !*sweep):
		return Usagef("--val-fraction applies to --sweep on the full training set; a k-shot problem validates on min(k, %d) images per class", probes.MaxValidationShots)
	case !isLogReg && !isCoOp && *textPath == "":
		return Usagef("--method %s needs --text-features (the zero-shot classifier)", m.Name())
	case isCoOp && (*weightsDir == "" || *classNames == ""):
		return Usagef("--method coop needs --weights (the model whose text tower it trains through) and --class-names")
	case *nCtx < 0 || *epochs < 0:
		return Usagef("--n-ctx %d and --epochs %d: need >= 0", *nCtx, *epochs)
	case !isLogReg && *shots == 0:
		return Usagef("--method %s is a few-shot method: give --shots k", m.Name())
	}
	if err := refuseFlags(m.Name(), set); err != nil {
		return err
	}
	switch m := m.(type) {
	case *probes.LogReg:
		m.Config = probes.Config{C: *c, MaxIter: *maxIter, Tol: *tol, Threads: *threads}
		m.Sweep = *sweep
	case *probes.ZSLP:
		m.InitNorm = *initNorm
	case *probes.CLAP:
		m.InitNorm = *initNorm
	case *probes.TipAdapter:
		m.Alpha, m.Beta = *alpha, *beta
	case *probes.TipAdapterF:
		m.Alpha, m.Beta = *alpha, *beta
	}
	inputs := []string{*trainX, *trainY, *testX, *testY, *textPath}
	for _, o := range []struct{ flag, path string }{{"-o", *out}, {"--logits-out", *logitsOut}} {
		if err := refuseOverwrite(o.flag, o.path, inputs); err != nil {
			return err
		}
	}
	if *out != "" && *logitsOut != "" && filepath.Clean(*out) == filepath.Clean(*logitsOut) {
		return Usagef("-o and --logits-out name the same file %s", *out)
	}

	train, err := loadLabelled(*trainX, *trainY)
	if err != nil {
		return err
	}
	test, err := loadLabelled(*testX, *testY)
	if err != nil {
		return err
	}
	if train.D != test.D {
		return fmt.Errorf("probe: training features %s have dimension %d but test features %s have %d", *trainX, train.D, *testX, test.D)
	}
	var text []float32
	if *textPath != "" {
		if text, err = loadText(*textPath, train.D, *numClasses); err != nil {
			return err
		}
	}
	k, err := probeClasses(train, test, *trainY, *testY, *numClasses, len(text)/train.D)
	if err != nil {
		return err
	}

	if cm, ok := m.(*coop.Method); ok {
		if cm.ClassNames, err = readLabels(*classNames); err != nil {
			return err
		}
		if len(cm.ClassNames) != k {
			return fmt.Errorf("probe: %s has %d class names, the labels %d classes", *classNames, len(cm.ClassNames), k)
		}
		if cm.Model, err = clip.Load(*weightsDir, clip.WithDevice(*device)); err != nil {
			return err
		}
		defer cm.Model.Close()
		if cm.Tokenizer, _, err = tokenizer.Open("", *weightsDir); err != nil {
			return err
		}
	}
	logf := func(format string, args ...any) { fmt.Fprintf(env.Stderr, "probe: "+format+"\n", args...) }
	if lr, ok := m.(*probes.LogReg); ok && *every > 0 {
		lr.Config.Progress = func(p probes.Progress) {
			if p.Iter%*every == 0 {
				logf("iter %d: loss/C %.8g, max gradient %.3g, %d evaluations, %.2fs", p.Iter, p.Loss, p.GradMax, p.Evals, p.Elapsed.Seconds())
			}
		}
	}
	logf("%s: %d training and %d test examples, %d features, %d classes (BLAS: %s)", m.Name(), train.N, test.N, train.D, k, probes.BLAS)
	o, err := probes.Run(train, test, k, probes.Protocol{
		Method: m, ValFraction: *valFrac, Shots: *shots, Seed: *seed,
		Text: text, LogitScale: *logitScale, Logf: logf,
	})
	if err != nil {
		return err
	}
	met := o.Metrics
	logf("test: acc1 %.4f, acc5 %.4f, mean per-class recall %.4f (%d training, %d validation examples)", met.Top1, met.Top5, met.MeanPerClassRecall, o.Train, o.Val)

	if *logitsOut != "" {
		if err := npy.WriteFloat32(*logitsOut, []int{test.N, k}, o.Scores); err != nil {
			return fmt.Errorf("probe: --logits-out: %w", err)
		}
	}
	r := results.Result{
		Dataset: *dataset, Model: *model, Pretrained: *pretrained,
		Task: results.TaskLinearProbe,
		Metrics: map[string]results.Float{
			"lp_acc1":                  results.Float(met.Top1),
			"lp_acc5":                  results.Float(met.Top5),
			"lp_mean_per_class_recall": results.Float(met.MeanPerClassRecall),
		},
		Method: o.Method, Shots: *shots, Seed: int64(*seed),
		C: o.C, Train: o.Train, Val: o.Val, Test: test.N,
		Confusion: met.Confusion,
	}
	for name, v := range o.Params {
		if name != "C" { // C has its own field
			if r.Hyperparameters == nil {
				r.Hyperparameters = map[string]float64{}
			}
			r.Hyperparameters[name] = v
		}
	}
	for _, v := range met.PerClass {
		r.PerClassAccuracy = append(r.PerClassAccuracy, results.Float(v))
	}
	if *out != "" {
		return results.Save(*out, r)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if _, err = fmt.Fprintf(env.Stdout, "%s\n", b); err != nil {
		return fmt.Errorf("probe: writing the results to stdout: %w", err)
	}
	return nil
}

// probeFlagOwners lists the flags that only some methods use; giving one to another
// method is refused rather than ignored.
var probeFlagOwners = map[string][]string{
	"C":              {"logreg"},
	"sweep":          {"logreg"},
	"max-iter":       {"logreg"},
	"tol":            {"logreg"},
	"threads":        {"logreg"},
	"log-every":      {"logreg"},
	"val-fraction":   {"logreg"},
	"text-features":  {"zs-lp", "clap", "lp++", "tip-adapter", "tip-adapter-f"},
	"logit-scale":    {"zs-lp", "clap", "lp++", "tip-adapter", "tip-adapter-f"},
	"init-norm":      {"zs-lp", "clap"},
	"alpha":          {"tip-adapter", "tip-adapter-f"},
	"beta":           {"tip-adapter", "tip-adapter-f"},
	"weights":        {coop.Name},
	"class-names":    {coop.Name},
	"n-ctx":          {coop.Name},
	"ctx-init":       {coop.Name},
	"class-specific": {coop.Name},
	"epochs":         {coop.Name},
	"device":         {coop.Name},
}

// refuseFlags returns a usage error naming the first flag in set that method does not use.
func refuseFlags(method string, set map[string]bool) error {
	for _, name := range slices.Sorted(maps.Keys(set)) {
		if owners, ok := probeFlagOwners[name]; ok && !slices.Contains(owners, method) {
			return Usagef("--%s does not apply to --method %s (only to %s)", name, method, strings.Join(owners, ", "))
		}
	}
	return nil
}

// refuseOverwrite returns a usage error when out (given with flag) names one of the
// input files, which writing the results would destroy.
func refuseOverwrite(flag, out string, inputs []string) error {
	if out == "" {
		return nil
	}
	so, err := os.Stat(out)
	for _, in := range inputs {
		if in == "" {
			continue
		}
		if filepath.Clean(in) == filepath.Clean(out) {
			return Usagef("%s %s is one of the inputs; refusing to overwrite it", flag, out)
		}
		if err != nil {
			continue // out does not exist yet (or cannot be read): it is no input
		}
		if si, err := os.Stat(in); err == nil && os.SameFile(so, si) {
			return Usagef("%s %s is the input %s; refusing to overwrite it", flag, out, in)
		}
	}
	return nil
}

// probeClasses returns the number of classes: --classes, the zero-shot classifier's
// rows (textRows, 0 without one) or the largest label + 1. It is checked against what
// the inputs imply before anything of that size is allocated: every label below it,
// no more classes than examples (labels must be class indices), and agreement with
// the classifier.
func probeClasses(train, test probes.Dataset, trainY, testY string, flagK, textRows int) (int, error) {
	maxY, path := slices.Max(train.Y), trainY
	if y := slices.Max(test.Y); y > maxY {
		maxY, path = y, testY
	}
	k := flagK
	switch {
	case k == 0 && textRows > 0:
		k = textRows
	case k == 0:
		k = maxY + 1
	}
	// More classes than examples means a number that is not a class count (and a
	// weight matrix that might not fit in memory).
	if n := train.N + test.N; k > n {
		switch {
		case flagK != 0:
			return 0, fmt.Errorf("probe: --classes %d is more than the %d examples of %s and %s", k, n, trainY, testY)
		case textRows > 0:
			return 0, fmt.Errorf("probe: the zero-shot classifier's %d classes are more than the %d examples of %s and %s", k, n, trainY, testY)
		}
		return 0, fmt.Errorf("probe: %s: label %d implies %d classes for %d examples; labels must be class indices 0..K-1", path, maxY, k, n)
	}
	for _, s := range []struct {
		d    probes.Dataset
		path string
	}{{train, trainY}, {test, testY}} {
		for i, y := range s.d.Y {
			if y >= k {
				return 0, fmt.Errorf("probe: %s: label %d of example %d is outside [0, %d)", s.path, y, i, k)
			}
		}
	}
	if k < 2 {
		return 0, fmt.Errorf("probe: %s: labels have %d class; need at least 2", trainY, k)
	}
	return k, nil
}

// loadText reads the zero-shot classifier [K, dim], checking it against the features'
// dimension and --classes (flagK, 0 when not given).
func loadText(path string, dim, flagK int) ([]float32, error) {
	w, err := npy.ReadFloat32(path)
	if err != nil {
		return nil, fmt.Errorf("probe: --text-features: %w", err)
	}
	if len(w.Shape) != 2 || w.Shape[0] == 0 || w.Shape[1] != dim {
		return nil, fmt.Errorf("probe: %s: zero-shot classifier has shape %v; want [K,%d] (the features' dimension)", path, w.Shape, dim)
	}
	if flagK != 0 && w.Shape[0] != flagK {
		return nil, fmt.Errorf("probe: %s has %d classes but --classes is %d", path, w.Shape[0], flagK)
	}
	if err := finite(path, "value", "class", w.Data, dim); err != nil {
		return nil, err
	}
	return w.Data, nil
}

// finite returns an error naming the first NaN or infinite value of data (rows of
// dim values) in path, as "<what> j of <row> i".
func finite(path, what, row string, data []float32, dim int) error {
	for i, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("probe: %s: %s %d of %s %d is %v", path, what, i%dim, row, i/dim, v)
		}
	}
	return nil
}

// loadLabelled reads float32 [N,D] features and integer [N] labels, naming both files
// when they disagree.
func loadLabelled(featPath, labelPath string) (probes.Dataset, error) {
	if st, err := os.Stat(featPath); err == nil && st.IsDir() {
		if labelPath != "" {
			return probes.Dataset{}, Usagef("probe: %s is a feature cache directory, which holds its labels: give no labels file (%s)", featPath, labelPath)
		}
		return loadCached(featPath)
	}
	if labelPath == "" {
		return probes.Dataset{}, Usagef("probe: features %s need their labels: give --train-labels and --test-labels", featPath)
	}
	x, err := npy.ReadFloat32(featPath)
	if err != nil {
		return probes.Dataset{}, fmt.Errorf("probe: %w", err)
	}
	if len(x.Shape) != 2 || x.Shape[0] == 0 || x.Shape[1] == 0 {
		return probes.Dataset{}, fmt.Errorf("probe: %s: features have shape %v; want [N,D] with N, D > 0", featPath, x.Shape)
	}
	y, err := npy.ReadInt64(labelPath)
	if err != nil {
		return probes.Dataset{}, fmt.Errorf("probe: %w", err)
	}
	if len(y.Shape) != 1 {
		return probes.Dataset{}, fmt.Errorf("probe: %s: labels have shape %v; want [N]", labelPath, y.Shape)
	}
	if y.Shape[0] != x.Shape[0] {
		return probes.Dataset{}, fmt.Errorf("probe: %s has %d examples but %s has %d labels", featPath, x.Shape[0], labelPath, y.Shape[0])
	}
	if err := finite(featPath, "feature", "example", x.Data, x.Shape[1]); err != nil {
		return probes.Dataset{}, err
	}
	d := probes.Dataset{X: x.Data, Y: make([]int, len(y.Data)), N: x.Shape[0], D: x.Shape[1]}
	for i, v := range y.Data {
		if v < 0 || v > math.MaxInt32 {
			return probes.Dataset{}, fmt.Errorf("probe: %s: label %d of example %d is negative or too large", labelPath, v, i)
		}
		d.Y[i] = int(v)
	}
	return d, nil
}
