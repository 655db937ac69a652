package probes

import "fmt"

// MethodHelp describes every registered method in a few lines, with f the
// unit-normalised image features, t_c the zero-shot class embeddings (rows of T) and s
// the logit scale: formulas, defaults and search grids, as probe --help prints them.
// The package doc says the same at length, with the differences from the reference code.
func MethodHelp() string {
	return fmt.Sprintf(`  logreg         multinomial logistic regression on the features as extracted, by L-BFGS
                 (the CLIP paper's probe): minimise C sum_i CE(W x_i + b, y_i) + ||W||^2/2, C
                 fixed (default %g) or, with --sweep, chosen on the validation set over %g..%g
                 (%d steps per decade: every second decade, then bisection; ties to the
                 smaller C).
  zs-lp          prototypes w_c start at %g t_c; logits s f.w_c/||w_c||; %d full-batch steps
                 of SGD (momentum %g) on the mean CE at lr 1e-5 for the first step, then
                 %g (1 + cos(pi (e-1)/%d))/2.
  clap           zs-lp's loss plus (1/K) sum_c lambda_c ||w_c - %g t_c||^2, lambda_c the
                 zero-shot probability softmax(s f.T^T)_c averaged over class c's shots;
                 same optimiser.
  lp++           logits f W^T + b + alpha_c f.t_c; W_c starts at the sum of class c's shots,
                 b at 0, every alpha_c at %d times the mean over c, c' of class c's mean
                 f.t_c'; %d full-batch steps of SGD (momentum %g) on (W, b) at
                 4N/lambda_max(F^T F), and every %dth step
                 alpha -= N/(4 max_c sum_i (f_i.t_c)^2) dCE/dalpha. The step with the best
                 validation accuracy is kept (ties to the later).
  tip-adapter    logits s f.T^T + alpha exp(-beta (1 - f.K^T)) V, keys K the unit shots,
                 values V their one-hot labels. alpha and beta are searched on the
                 validation set, beta-major, the first best kept:
                 beta = 0.1 + i (%g - 0.1)/%d for i < %d,
                 alpha = 0.1 + j (%g - 0.1)/%d for j < %d.
  tip-adapter-f  tip-adapter with K fine-tuned by %d full-batch AdamW steps on the mean CE
                 (lr %g with a half-cosine decay, eps %g, weight decay %g) at alpha %g,
                 beta %g unless fixed; the step with the best validation accuracy is kept
                 (ties to the earlier), then alpha and beta are searched as for tip-adapter.
  Validation: min(k, %d) images per class from the training pool, disjoint from the k
  shots (CoOp's protocol), drawn only for the methods that choose something on it:
  logreg with --sweep, lp++, tip-adapter unless alpha and beta are fixed, tip-adapter-f.
  zs-lp and clap use none.`,
		DefaultC, DefaultMinC, DefaultMaxC, DefaultStepsPerDecade,
		float64(DefaultInitNorm), DefaultCosineEpochs, cosineMomentum, DefaultCosineLR, DefaultCosineEpochs,
		float64(DefaultInitNorm),
		lpppAlphaInit, DefaultLPPPEpochs, lpppMomentum, DefaultLPPPAlphaEvery,
		float64(DefaultTipBetaMax), DefaultTipBetaSteps, DefaultTipBetaSteps, float64(DefaultTipAlphaMax), DefaultTipAlphaSteps, DefaultTipAlphaSteps,
		DefaultTipFEpochs, DefaultTipFLR, tipFAdamEps, tipFWeightDecay, tipFAlpha, float64(tipFBeta),
		MaxValidationShots)
}
