package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"

	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/probes"
)

func init() {
	register(Command{
		Name:    "probe",
		Summary: "fit a linear probe (L-BFGS logistic regression) on .npy features",
		Run:     runProbe,
	})
}

const probeUsage = `--train-features F --train-labels L --test-features F --test-labels L [--C c | --sweep] [--shots k --seed s] [-o results.json]

Fits multinomial logistic regression on float32 [N,D] features with integer [N]
labels (any integer dtype) and writes CLIP_benchmark-style JSON (task linear_probe;
metrics lp_acc1, lp_acc5, lp_mean_per_class_recall; the chosen C, shots and seed) to
-o, or to stdout. --train-features and --test-features may also name a split's
feature-cache directory, as gorgoclip extract prints it, which holds the labels. --C has scikit-learn's meaning: loss = C * sum of cross-entropies +
||W||^2/2 (intercept not penalised). --sweep chooses C as the CLIP paper does (1e-6..1e6,
8 steps per decade) on a validation split held out of the training set; k-shot
probes draw their shots from the rest. Progress goes to stderr.`

func runProbe(env *Env, args []string) error {
	fs := newFlags(env, "probe", probeUsage)
	trainX := fs.String("train-features", "", "training features, float32 [N,D] .npy")
	trainY := fs.String("train-labels", "", "training labels, integer [N] .npy")
	testX := fs.String("test-features", "", "test features, float32 [M,D] .npy")
	testY := fs.String("test-labels", "", "test labels, integer [M] .npy")
	c := fs.Float64("C", 0, "inverse L2 strength (default 1; excludes --sweep)")
	sweep := fs.Bool("sweep", false, "choose C on a validation split (CLIP paper protocol)")
	shots := fs.Int("shots", 0, "k examples per class for a k-shot probe (0: all)")
	seed := fs.Uint64("seed", 0, "seed of the shots and of the validation split")
	valFrac := fs.Float64("val-fraction", probes.DefaultValFraction, "share of each class held out for --sweep")
	numClasses := fs.Int("classes", 0, "number of classes (default: largest label + 1)")
	maxIter := fs.Int("max-iter", probes.DefaultMaxIter, "L-BFGS iteration limit")
	tol := fs.Float64("tol", probes.DefaultTol, "stop when every gradient component of loss/C is below this")
	threads := fs.Int("threads", runtime.GOMAXPROCS(0), "goroutines per loss evaluation")
	every := fs.Int("log-every", 100, "print optimiser progress every this many iterations (0: never)")
	dataset := fs.String("dataset", "", "dataset name for the results")
	model := fs.String("model", "", "model name for the results (e.g. ViT-B-32)")
	pretrained := fs.String("pretrained", "", "weights name for the results (e.g. openai)")
	out := fs.String("o", "", "write the results JSON here instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
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
	if train.N == 0 || test.N == 0 {
		return fmt.Errorf("probe: no examples in %s or %s", *trainY, *testY)
	}
	k := *numClasses
	if k == 0 {
		k = max(slices.Max(train.Y), slices.Max(test.Y)) + 1
		// Labels are class indices: more classes than examples means a label file
		// that is not one (and the weight matrix would not fit in memory).
		if k > train.N+test.N {
			path, y := *trainY, slices.Max(train.Y)
			if slices.Max(test.Y) > y {
				path, y = *testY, slices.Max(test.Y)
			}
			return fmt.Errorf("probe: %s: label %d implies %d classes for %d examples; labels must be class indices 0..K-1 (give --classes K if that is intended)", path, y, k, train.N+test.N)
		}
	}
	for _, s := range []struct {
		d    probes.Dataset
		path string
	}{{train, *trainY}, {test, *testY}} {
		for i, y := range s.d.Y {
			if y < 0 || y >= k {
				return fmt.Errorf("probe: %s: label %d of example %d is outside [0, %d)", s.path, y, i, k)
			}
		}
	}
	if k < 2 {
		return fmt.Errorf("probe: %s: labels have %d class; need at least 2", *trainY, k)
	}

	logf := func(format string, args ...any) { fmt.Fprintf(env.Stderr, "probe: "+format+"\n", args...) }
	cfg := probes.Config{C: *c, MaxIter: *maxIter, Tol: *tol, Threads: *threads}
	if *every > 0 {
		cfg.Progress = func(p probes.Progress) {
			if p.Iter%*every == 0 {
				logf("iter %d: loss/C %.8g, max gradient %.3g, %d evaluations, %.2fs", p.Iter, p.Loss, p.GradMax, p.Evals, p.Elapsed.Seconds())
			}
		}
	}
	logf("%d training and %d test examples, %d features, %d classes (BLAS: %s)", train.N, test.N, train.D, k, probes.BLAS)
	o, err := probes.Run(train, test, k, probes.Protocol{
		Fit: cfg, Sweep: *sweep, ValFraction: *valFrac, Shots: *shots, Seed: *seed, Logf: logf,
	})
	if err != nil {
		return err
	}
	m := o.Metrics
	logf("test: acc1 %.4f, acc5 %.4f, mean per-class recall %.4f (C=%.3g)", m.Top1, m.Top5, m.MeanPerClassRecall, o.C)

	r := results.Result{
		Dataset: *dataset, Model: *model, Pretrained: *pretrained,
		Task: results.TaskLinearProbe,
		Metrics: map[string]results.Float{
			"lp_acc1":                  results.Float(m.Top1),
			"lp_acc5":                  results.Float(m.Top5),
			"lp_mean_per_class_recall": results.Float(m.MeanPerClassRecall),
		},
		Shots: *shots, C: o.C, Train: o.Train, Test: test.N,
		Confusion: m.Confusion,
	}
	if *shots > 0 || *sweep {
		r.Seed = int64(*seed)
	}
	for _, v := range m.PerClass {
		r.PerClassAccuracy = append(r.PerClassAccuracy, results.Float(v))
	}
	if *out != "" {
		return results.Save(*out, r)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
	return err
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
	for i, v := range x.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return probes.Dataset{}, fmt.Errorf("probe: %s: feature %d of example %d is %v", featPath, i%x.Shape[1], i/x.Shape[1], v)
		}
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
