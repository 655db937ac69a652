package probes

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Protocol is one evaluation: the CLIP paper's linear probe, or a few-shot method.
// The zero value fits logistic regression at C = 1 on the whole training set.
type Protocol struct {
	// Method is the classifier to fit; nil means logistic regression configured by
	// Fit, Sweep and Grid (see LogReg), the only method run on the full training set.
	Method Method
	// Fit configures the default method's fits; with Sweep false its C is the one used.
	Fit Config
	// Sweep chooses the default method's C on a validation set (see SweepConfig;
	// Grid.Fit is ignored).
	Sweep bool
	Grid  SweepConfig
	// ValFraction is the share of each class held out for the sweep on the full
	// training set. Zero means DefaultValFraction.
	ValFraction float64
	// Shots is k for a k-shot problem (k examples per class); zero means all data.
	Shots int
	// Seed drives the choice of shots and the validation set.
	Seed uint64
	// Text, TextNorm and LogitScale are the zero-shot classifier, its raw norm and its
	// scale, as in Problem; methods other than logistic regression need Text.
	Text       []float32
	TextNorm   float64
	LogitScale float64
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// Outcome is the result of Run.
type Outcome struct {
	// Method is the method's name.
	Method string
	// Model is the final logistic-regression probe (nil for other methods) and C its
	// inverse L2 strength.
	Model *Model
	C     float64
	// Params are the hyperparameters used (see Fitted.Params).
	Params map[string]float64
	// Train is the number of examples the final classifier was fitted on; Val the
	// number of validation examples hyperparameters were chosen on (0 when none),
	// ValAccuracy the chosen setting's accuracy there (NaN when none).
	Train, Val  int
	ValAccuracy float64
	// Scores are the test logits, [N, K] row-major.
	Scores []float32
	// Metrics are measured on the test set.
	Metrics Metrics
	// Elapsed is the wall time of the fit, hyperparameter search included.
	Elapsed time.Duration
}

// Run fits a classifier on train and evaluates it on test.
//
// A k-shot problem (Shots > 0) draws k examples of each class with SampleShots and,
// for methods that choose hyperparameters (Method.NeedsValidation), min(k, 4) more of
// each class for validation with SampleValidation: CoOp's protocol, so that a k-shot
// result has used k + min(k, 4) labelled images per class and never the test set. The
// shots depend on Seed only, so every method sees the same shots.
//
// On the full training set (Shots == 0) only logistic regression runs, with the
// paper's protocol: with Sweep, a stratified split (ValFraction of each class, drawn
// from Seed) is held out, C is chosen on it, and the probe is refitted on all of
// train at that C.
func Run(train, test Dataset, numClasses int, p Protocol) (*Outcome, error) {
	if err := train.Check(numClasses); err != nil {
		return nil, fmt.Errorf("%w (training set)", err)
	}
	if err := test.Check(numClasses); err != nil {
		return nil, fmt.Errorf("%w (test set)", err)
	}
	if train.D != test.D {
		return nil, fmt.Errorf("probes: test features have dimension %d, training %d", test.D, train.D)
	}
	if p.Shots < 0 {
		return nil, fmt.Errorf("probes: %d shots", p.Shots)
	}
	m := p.Method
	if m == nil {
		m = &LogReg{Config: p.Fit, Sweep: p.Sweep, Grid: p.Grid}
	}
	prob := Problem{Classes: numClasses, Text: p.Text, TextNorm: p.TextNorm, LogitScale: p.LogitScale, Logf: p.Logf}
	start := time.Now()
	var (
		f   fitResult
		err error
	)
	if p.Shots == 0 {
		lr, ok := m.(*LogReg)
		if !ok {
			return nil, fmt.Errorf("probes: %s is a few-shot method; give the number of shots", m.Name())
		}
		f, err = runFull(train, lr, prob, p)
	} else {
		f, err = runShots(train, m, prob, p)
	}
	if err != nil {
		return nil, err
	}
	out := &Outcome{Method: m.Name(), Params: f.Params, Train: f.train, Val: f.val, ValAccuracy: f.ValAccuracy, Elapsed: time.Since(start)}
	if mod, ok := f.Classifier.(*Model); ok {
		out.Model, out.C = mod, mod.C
		prob.logf("fit: C=%.3g on %d examples: %d iterations, loss %.6g, max gradient %.2g, %.2fs (%s)",
			mod.C, out.Train, mod.Iterations, mod.Loss, mod.GradMax, mod.Elapsed.Seconds(), mod.Stop)
	} else {
		prob.logf("fit: %s on %d examples, %d validation: %s, %.2fs", out.Method, out.Train, out.Val, formatParams(out.Params), out.Elapsed.Seconds())
	}
	if out.Scores, err = f.Scores(test.X, test.N); err != nil {
		return nil, err
	}
	if out.Metrics, err = Evaluate(out.Scores, test.Y, numClasses); err != nil {
		return nil, err
	}
	return out, nil
}

// fitResult is a Fitted with the sizes of the sets it used.
type fitResult struct {
	*Fitted
	train, val int
}

// runShots draws the shots (and a validation set when m needs one) and fits m.
func runShots(train Dataset, m Method, prob Problem, p Protocol) (fitResult, error) {
	idx, err := SampleShots(train.Y, prob.Classes, p.Shots, p.Seed)
	if err != nil {
		return fitResult{}, err
	}
	prob.Train = train.Subset(idx)
	if m.NeedsValidation() {
		val, err := SampleValidation(train.Y, prob.Classes, idx, ValidationShots(p.Shots), p.Seed)
		if err != nil {
			return fitResult{}, err
		}
		prob.Val = train.Subset(val)
	}
	f, err := m.Fit(prob)
	return fitResult{f, prob.Train.N, prob.Val.N}, err
}

// runFull is the paper's protocol on the whole training set.
func runFull(train Dataset, m *LogReg, prob Problem, p Protocol) (fitResult, error) {
	if !m.Sweep {
		prob.Train = train
		f, err := m.Fit(prob)
		return fitResult{f, train.N, 0}, err
	}
	frac := p.ValFraction
	if frac == 0 {
		frac = DefaultValFraction
	}
	tr, va, err := SplitValidation(train.Y, prob.Classes, frac, p.Seed)
	if err != nil {
		return fitResult{}, err
	}
	prob.Train, prob.Val = train.Subset(tr), train.Subset(va)
	f, err := m.Fit(prob)
	if err != nil {
		return fitResult{}, err
	}
	cfg := m.Config
	cfg.C = f.Params["C"]
	final, err := Fit(train, prob.Classes, cfg, f.Classifier.(*Model))
	if err != nil {
		return fitResult{}, err
	}
	return fitResult{&Fitted{Classifier: final, Params: f.Params, ValAccuracy: f.ValAccuracy}, train.N, len(va)}, nil
}

// formatParams writes params as "name=value" pairs in name order.
func formatParams(params map[string]float64) string {
	if len(params) == 0 {
		return "no hyperparameters"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(params)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%.4g", k, params[k])
	}
	return b.String()
}
