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
// (SplitValidation, SampleShots, SampleValidation), the whole protocol in one call
// (Run), and classification metrics that zero-shot evaluation shares (Evaluate).
//
// # Few-shot methods
//
// Beside the paper's probe, Run fits the few-shot methods that use the zero-shot
// classifier as a prior, each a Method in a registry (MethodNames, NewMethod): Fit takes
// a Problem (the k shots, a validation set, the zero-shot classifier T [K, D] and the
// logit scale s) and returns a Classifier giving test logits [N, K]. Below, f is an
// image feature L2-normalised (every method but logreg normalises), t_c the unit
// zero-shot embedding of class c, CE the softmax cross-entropy, and "full-batch" means
// one step per epoch on all N = kK shots. MethodHelp prints the same in short.
//
//   - logreg (LogReg): the paper's probe on the features as extracted, C fixed or swept
//     on the validation set over DefaultMinC..DefaultMaxC as described above.
//   - zs-lp (ZSLP; Silva-Rodriguez et al., CVPR 2024, jusiro/CLAP trainers/adapters.py):
//     prototypes w_c, initialised at rho t_c, logits s f.w_c/||w_c||, minimising the
//     mean CE by 300 full-batch steps of SGD with momentum 0.9 (no dampening, Nesterov
//     or weight decay) at lr 1e-5 for the first step (Dassl's constant warm-up epoch),
//     then 0.1 (1 + cos(pi (e-1)/300))/2 at step e = 1..299. No validation set.
//   - clap (CLAP, same paper and code): ZS-LP's loss plus (1/K) sum_c lambda_c
//     ||w_c - rho t_c||^2, where lambda_c = (1/k) sum_{i: y_i = c} softmax(s f_i.T^T)_c
//     is the zero-shot probability of the true class averaged over class c's shots (the
//     reference's "l2" constraint: no rescaling, fixed multipliers). Same optimiser,
//     which on CLIP-like data ends at the loss's minimum (TestCLAPConverges). No
//     validation set, by design.
//   - lp++ (LPPlusPlus; Huang et al., CVPR 2024,
//     FereshteShakeri/FewShot-CLIP-Strong-Baseline methods/linear_probe_p2.py):
//     logits f W^T + b + alpha_c f.t_c. W_c starts
//     at the sum of class c's shots, b at 0, every alpha_c at 250 times the mean over
//     classes c, c' of class c's mean f.t_c'. 300 full-batch steps of SGD with momentum
//     0.9 on (W, b) at 4N/lambda_max(F^T F); every 10th step also alpha -= N/(4 max_c
//     sum_i (f_i.t_c)^2) dCE/dalpha. The step with the best validation accuracy is kept,
//     the later on ties (the reference's model selection).
//   - tip-adapter (TipAdapter; Zhang et al., ECCV 2022, gaopengcuhk/Tip-Adapter main.py):
//     training-free, logits s f.T^T + alpha exp(-beta (1 - f.K^T)) V with keys K the
//     unit shots and values V their one-hot labels. alpha and beta are searched on the
//     validation set over TipGrid (default beta = 0.1 + i 6.9/200, i < 200, and alpha =
//     0.1 + j 2.9/20, j < 20, the reference's ImageNet grid), beta-major, the first best
//     kept; or both are fixed.
//   - tip-adapter-f (TipAdapterF, same code): the keys fine-tuned on the mean CE by 20
//     full-batch AdamW steps (lr 1e-3 decayed as 1e-3 (1 + cos(pi e/20))/2, betas 0.9
//     and 0.999, eps 1e-4, weight decay 0.01) at alpha 1.17, beta 1 (the reference's
//     ImageNet values) unless fixed; the step with the best validation accuracy is kept,
//     the earlier on ties; then alpha and beta are searched as for tip-adapter with the
//     fine-tuned keys (not renormalised).
//
// The protocol is honest: hyperparameters are chosen on min(k, 4) validation images
// per class drawn from the training pool, disjoint from the shots (CoOp's protocol;
// SampleValidation), never on the test set, and only for the methods that choose
// something (Method.NeedsValidation). The shots depend on the seed alone, so every
// method sees the same ones.
//
// Where the reference code differs, this package follows the paper or the honest
// protocol, and says so: Tip-Adapter-F picks its epoch on the test set there, and
// Tip-Adapter's ImageNet script searches alpha and beta on it; LP++'s reference never
// clears alpha's gradient, so each of its alpha steps uses the sum of every gradient so
// far (here: the current one, the paper's block step); its intercept starts at
// PyTorch's random init (here 0). All methods run on fixed features: the references'
// augmented views (random crops of the shots, 10 to 20 per image) and minibatches of
// 256 are not reproduced. ZS-LP and CLAP start from the raw mean of the template
// embeddings there, whose norm rho sets the effective step (lr/rho^2) and CLAP's
// penalty (times rho^2) but is lost in the unit classifier: rho is Problem.TextNorm,
// the mean norm of those raw class embeddings, when the caller knows it (gorgoclip
// compare measures it), else DefaultInitNorm (10, the order of raw CLIP embedding
// norms); rho = 1 takes steps 100 times larger and ZS-LP then collapses below
// zero-shot at one shot.
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
