package probes

import "fmt"

// Protocol is one linear-probe evaluation as in the CLIP paper. The zero value fits
// at C = 1 on the whole training set.
type Protocol struct {
	// Fit configures the fits; with Sweep false its C is the one used.
	Fit Config
	// Sweep chooses C on a validation split (see SweepConfig; Grid.Fit is ignored).
	Sweep bool
	Grid  SweepConfig
	// ValFraction is the share of each class held out for the sweep. Zero means
	// DefaultValFraction.
	ValFraction float64
	// Shots is k for a k-shot probe (k examples per class); zero means all data.
	Shots int
	// Seed drives the validation split and the choice of shots.
	Seed uint64
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// Outcome is the result of Run.
type Outcome struct {
	// Model is the final probe and C its inverse L2 strength.
	Model *Model
	C     float64
	// Train is the number of examples the final probe was fitted on.
	Train int
	// Metrics are measured on the test set.
	Metrics Metrics
	// Sweep is the search over C, when one was made.
	Sweep *SweepResult
}

// Run fits a probe on train and evaluates it on test.
//
// With Sweep, a stratified validation split (ValFraction of each class, drawn from
// Seed) is held out of train first, as the paper does, and C is chosen on it. The
// full-data probe is then refitted on all of train at that C. A k-shot probe draws its
// shots from the examples left after the split, so validation images never appear
// among the shots, and the fit on the shots made during the sweep is the final probe.
// The validation split thus uses more labelled examples than the k shots, as in the
// paper's protocol; without Sweep no validation split is made.
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
	logf := func(format string, args ...any) {
		if p.Logf != nil {
			p.Logf(format, args...)
		}
	}
	out := &Outcome{}
	pool := train // where shots come from
	if p.Sweep {
		frac := p.ValFraction
		if frac == 0 {
			frac = DefaultValFraction
		}
		tr, va, err := SplitValidation(train.Y, numClasses, frac, p.Seed)
		if err != nil {
			return nil, err
		}
		pool = train.Subset(tr)
		val := train.Subset(va)
		fitSet := pool
		if p.Shots > 0 {
			if fitSet, err = shots(pool, numClasses, p.Shots, p.Seed); err != nil {
				return nil, err
			}
		}
		logf("sweep: %d training and %d validation examples", fitSet.N, val.N)
		g := p.Grid
		g.Fit = p.Fit
		if g.Logf == nil {
			g.Logf = p.Logf
		}
		sw, err := Sweep(fitSet, val, numClasses, g)
		if err != nil {
			return nil, err
		}
		out.Sweep, out.C = sw, sw.C
		if p.Shots > 0 {
			out.Model, out.Train = sw.Model, fitSet.N
		} else {
			cfg := p.Fit
			cfg.C = sw.C
			m, err := Fit(train, numClasses, cfg, sw.Model)
			if err != nil {
				return nil, err
			}
			out.Model, out.Train = m, train.N
		}
	} else {
		fitSet := train
		if p.Shots > 0 {
			var err error
			if fitSet, err = shots(train, numClasses, p.Shots, p.Seed); err != nil {
				return nil, err
			}
		}
		m, err := Fit(fitSet, numClasses, p.Fit, nil)
		if err != nil {
			return nil, err
		}
		out.Model, out.C, out.Train = m, m.C, fitSet.N
	}
	logf("fit: C=%.3g on %d examples: %d iterations, loss %.6g, max gradient %.2g, %.2fs (%s)",
		out.C, out.Train, out.Model.Iterations, out.Model.Loss, out.Model.GradMax, out.Model.Elapsed.Seconds(), out.Model.Stop)
	scores, err := out.Model.Scores(test.X, test.N)
	if err != nil {
		return nil, err
	}
	if out.Metrics, err = Evaluate(scores, test.Y, numClasses); err != nil {
		return nil, err
	}
	return out, nil
}

// shots returns k examples of each class of d, drawn from seed.
func shots(d Dataset, numClasses, k int, seed uint64) (Dataset, error) {
	idx, err := SampleShots(d.Y, numClasses, k, seed)
	if err != nil {
		return Dataset{}, err
	}
	return d.Subset(idx), nil
}
