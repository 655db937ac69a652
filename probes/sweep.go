package probes

import (
	"fmt"
	"math"
)

// Sweep defaults, from the CLIP paper (appendix A.3): "a hyperparameter sweep on the
// validation sets over the range between 1e-6 and 1e6, with 96 logarithmically
// spaced steps ... a parametric binary search that starts with [1e-6, 1e-4, 1e-2, 1,
// 1e2, 1e4, 1e6] and iteratively halves the interval around the peak until it
// reaches a resolution of 8 steps per decade". The paper sweeps the penalty lambda;
// the grid is symmetric, so sweeping C = 1/lambda visits the same values.
const (
	DefaultMinC           = 1e-6
	DefaultMaxC           = 1e6
	DefaultStepsPerDecade = 8
	// DefaultValFraction is the share of each class held out for the sweep.
	DefaultValFraction = 0.2
)

// SweepConfig controls the search over C. The zero value is the paper's sweep.
type SweepConfig struct {
	// Fit configures each fit; its C is ignored.
	Fit Config
	// MinC and MaxC bound the grid. Zero means DefaultMinC and DefaultMaxC.
	MinC, MaxC float64
	// StepsPerDecade is the final resolution. Zero means DefaultStepsPerDecade.
	StepsPerDecade int
	// Logf, if set, receives one line per fit.
	Logf func(format string, args ...any)
}

// SweepPoint is one fit of the sweep.
type SweepPoint struct {
	C, ValAccuracy float64
	Iterations     int
}

// SweepResult is the outcome of Sweep.
type SweepResult struct {
	// C is the chosen value: the best validation accuracy, ties going to the smaller C
	// (the stronger penalty).
	C float64
	// Model is the fit at C on the sweep's training set, ValAccuracy its accuracy
	// on the validation set.
	Model       *Model
	ValAccuracy float64
	// Points lists every fit in the order made.
	Points []SweepPoint
}

// Sweep chooses C by validation accuracy: fits on train at every second decade of the
// grid, then halves the step around the best point until the grid resolution. Each
// fit starts from the model at the nearest C already fitted (warm start).
func Sweep(train, val Dataset, numClasses int, cfg SweepConfig) (*SweepResult, error) {
	if cfg.MinC == 0 {
		cfg.MinC = DefaultMinC
	}
	if cfg.MaxC == 0 {
		cfg.MaxC = DefaultMaxC
	}
	if cfg.StepsPerDecade == 0 {
		cfg.StepsPerDecade = DefaultStepsPerDecade
	}
	if !(cfg.MinC > 0 && cfg.MaxC >= cfg.MinC) || math.IsInf(cfg.MaxC, 0) || cfg.StepsPerDecade < 1 {
		return nil, fmt.Errorf("probes: bad sweep grid %g..%g with %d steps per decade", cfg.MinC, cfg.MaxC, cfg.StepsPerDecade)
	}
	if err := val.Check(numClasses); err != nil {
		return nil, fmt.Errorf("%w (validation set)", err)
	}
	if val.D != train.D {
		return nil, fmt.Errorf("probes: validation features have dimension %d, training %d", val.D, train.D)
	}
	spd := cfg.StepsPerDecade
	last := int(math.Round(math.Log10(cfg.MaxC/cfg.MinC) * float64(spd)))
	cAt := func(i int) float64 { return cfg.MinC * math.Pow(10, float64(i)/float64(spd)) }

	res := &SweepResult{}
	models := map[int]*Model{}
	acc := map[int]float64{}
	best := -1
	try := func(i int) error {
		if _, done := models[i]; done || i < 0 || i > last {
			return nil
		}
		var warm *Model
		for d := 1; d <= last && warm == nil; d++ { // nearest fitted neighbour, lower C first
			if m := models[i-d]; m != nil {
				warm = m
			} else if m := models[i+d]; m != nil {
				warm = m
			}
		}
		fc := cfg.Fit
		fc.C = cAt(i)
		m, err := Fit(train, numClasses, fc, warm)
		if err != nil {
			return err
		}
		pred, err := m.Predict(val.X, val.N)
		if err != nil {
			return err
		}
		a := Accuracy(pred, val.Y)
		models[i], acc[i] = m, a
		res.Points = append(res.Points, SweepPoint{C: fc.C, ValAccuracy: a, Iterations: m.Iterations})
		if cfg.Logf != nil {
			cfg.Logf("sweep: C=%.3g val acc %.4f (%d iterations, %.2fs, %s)", fc.C, a, m.Iterations, m.Elapsed.Seconds(), m.Stop)
		}
		if best < 0 || a > acc[best] || (a == acc[best] && i < best) {
			best = i
		}
		return nil
	}
	coarse := 2 * spd // every second decade
	for i := 0; i <= last; i += coarse {
		if err := try(i); err != nil {
			return nil, err
		}
	}
	if err := try(last); err != nil {
		return nil, err
	}
	for step := coarse / 2; step >= 1; step /= 2 {
		b := best
		if err := try(b - step); err != nil {
			return nil, err
		}
		if err := try(b + step); err != nil {
			return nil, err
		}
	}
	res.C, res.Model, res.ValAccuracy = cAt(best), models[best], acc[best]
	return res, nil
}
