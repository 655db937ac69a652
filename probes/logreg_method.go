package probes

import "math"

// LogReg is the CLIP paper's linear probe as a Method: multinomial logistic
// regression by L-BFGS (Fit) on the features as extracted, not normalised, with an
// intercept. Without Sweep it fits at Config.C; with Sweep it chooses C on the
// validation set over SweepConfig's grid (the paper's 1e-6..1e6, 8 steps per decade)
// and keeps the fit on the shots at that C.
type LogReg struct {
	// Config configures the fits; its C is the one used without Sweep.
	Config Config
	// Sweep chooses C on Problem.Val.
	Sweep bool
	// Grid is the search over C (Grid.Fit is replaced by Config).
	Grid SweepConfig
}

// Name implements Method.
func (*LogReg) Name() string { return "logreg" }

// NeedsValidation implements Method: only the sweep uses a validation set.
func (m *LogReg) NeedsValidation() bool { return m.Sweep }

// Fit implements Method. The classifier is a *Model.
func (m *LogReg) Fit(p Problem) (*Fitted, error) {
	if err := p.check(false); err != nil {
		return nil, err
	}
	if !m.Sweep {
		mod, err := Fit(p.Train, p.Classes, m.Config, nil)
		if err != nil {
			return nil, err
		}
		return &Fitted{Classifier: mod, Params: map[string]float64{"C": mod.C}, ValAccuracy: math.NaN()}, nil
	}
	g := m.Grid
	g.Fit = m.Config
	if g.Logf == nil {
		g.Logf = p.Logf
	}
	p.logf("sweep: %d training and %d validation examples", p.Train.N, p.Val.N)
	sw, err := Sweep(p.Train, p.Val, p.Classes, g)
	if err != nil {
		return nil, err
	}
	return &Fitted{Classifier: sw.Model, Params: map[string]float64{"C": sw.C}, ValAccuracy: sw.ValAccuracy}, nil
}
