// Package probes fits linear probes on frozen features: multinomial logistic
// regression with an L2 penalty, solved by L-BFGS, as in the CLIP paper (Radford et
// al. 2021, appendix A.3) and scikit-learn's LogisticRegression(solver="lbfgs").
//
// The objective has scikit-learn's meaning of C:
//
//	loss(W, b) = C * sum_i CE(softmax(W x_i + b), y_i) + ||W||^2 / 2
//
// with the intercept b not penalised. It is minimised to scikit-learn's stopping
// rule (largest gradient component of loss/C at most 1e-4, or a relative decrease
// below scipy's factr*eps), so that probes here and there agree at equal C.
//
// Around Fit the package offers what the paper's protocol needs: the regularisation
// sweep over C (Sweep), stratified validation splits and k-shot sampling
// (SplitValidation, SampleShots), the whole protocol in one call (Run), and
// classification metrics that zero-shot evaluation shares (Evaluate).
//
// Shapes: N examples, D feature dimensions, K classes. Features are float32 [N, D]
// row-major; weights are float64 [K, D]. Each loss evaluation is two float32 GEMMs
// per block of 64-256 rows ([n,D]x[D,K] for logits, [K,n]x[n,D] for the gradient),
// fused so each block is read from memory once, with blocks split across goroutines
// and partial gradients accumulated in float64.
package probes

import (
	"fmt"
	"time"
)

// Dataset is a labelled feature matrix. It does not own X and Y: subsets made by
// Subset copy, everything else only reads them.
type Dataset struct {
	// X holds N rows of D float32 features, row-major.
	X []float32
	// Y holds N class indices in [0, K).
	Y    []int
	N, D int
}

// Check reports the first inconsistency between the fields of d and numClasses.
func (d Dataset) Check(numClasses int) error {
	switch {
	case d.N <= 0 || d.D <= 0:
		return fmt.Errorf("probes: empty dataset (%d examples of dimension %d)", d.N, d.D)
	case len(d.X) != d.N*d.D:
		return fmt.Errorf("probes: %d feature values for %d examples of dimension %d", len(d.X), d.N, d.D)
	case len(d.Y) != d.N:
		return fmt.Errorf("probes: %d labels for %d examples", len(d.Y), d.N)
	case numClasses < 2:
		return fmt.Errorf("probes: %d classes; need at least 2", numClasses)
	}
	for i, y := range d.Y {
		if y < 0 || y >= numClasses {
			return fmt.Errorf("probes: label %d of example %d is outside [0, %d)", y, i, numClasses)
		}
	}
	return nil
}

// Subset returns the examples at idx, copied, in the order given.
func (d Dataset) Subset(idx []int) Dataset {
	s := Dataset{X: make([]float32, len(idx)*d.D), Y: make([]int, len(idx)), N: len(idx), D: d.D}
	for j, i := range idx {
		copy(s.X[j*d.D:(j+1)*d.D], d.X[i*d.D:(i+1)*d.D])
		s.Y[j] = d.Y[i]
	}
	return s
}

// Progress is reported after every L-BFGS iteration.
type Progress struct {
	// Iter counts iterations, Evals loss-and-gradient evaluations.
	Iter, Evals int
	// Loss is sum of cross-entropies + ||W||^2/(2C) (the objective divided by C, the
	// scaling scikit-learn optimises); GradMax is the largest absolute component of
	// its gradient, which the tolerance bounds.
	Loss, GradMax float64
	Elapsed       time.Duration
}
