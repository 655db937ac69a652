package probes

import (
	"cmp"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// LP++ defaults, from FereshteShakeri/FewShot-CLIP-Strong-Baseline (configs/base.yaml
// and methods/linear_probe_p2.py).
const (
	// DefaultLPPPEpochs is the number of full-batch steps.
	DefaultLPPPEpochs = 300
	// DefaultLPPPAlphaEvery is the number of prototype steps per blending step.
	DefaultLPPPAlphaEvery = 10
	// lpppAlphaInit scales the mean text logit into the initial blending weight.
	lpppAlphaInit = 250
	lpppMomentum  = 0.9
)

// LPPlusPlus is LP++ (Huang et al., "LP++: A Surprisingly Strong Linear Probe for
// Few-Shot CLIP", CVPR 2024): logits f W^T + b + alpha_c (f . t_c), prototypes and
// intercepts trained by full-batch SGD with momentum at a step from the data's
// largest eigenvalue, the class-wise blending weights alpha by a gradient step of
// their own every AlphaEvery steps. The epoch kept is the one with the best
// validation accuracy (the reference code's model selection); without a validation
// set, the last.
type LPPlusPlus struct {
	// Epochs is the number of full-batch steps. Zero means DefaultLPPPEpochs.
	Epochs int
	// AlphaEvery is the number of prototype steps per blending step. Zero means
	// DefaultLPPPAlphaEvery.
	AlphaEvery int
}

// Name implements Method.
func (*LPPlusPlus) Name() string { return "lp++" }

// NeedsValidation implements Method: the epoch is chosen on the validation set.
func (*LPPlusPlus) NeedsValidation() bool { return true }

// Fit implements Method.
func (m *LPPlusPlus) Fit(p Problem) (*Fitted, error) {
	if err := p.check(true); err != nil {
		return nil, err
	}
	epochs, every := cmp.Or(m.Epochs, DefaultLPPPEpochs), cmp.Or(m.AlphaEvery, DefaultLPPPAlphaEvery)
	if epochs < 0 || every < 1 {
		return nil, fmt.Errorf("probes: LP++ with %d epochs and a blending step every %d; need >= 0 and >= 1", epochs, every)
	}
	defer singleThreadedBLAS()()
	s := newLPPP(p)
	lrW, err := s.lrW()
	if err != nil {
		return nil, err
	}
	lrA := s.lrAlpha()
	p.logf("lp++: alpha init %.4g, step sizes %.4g (prototypes) and %.4g (blending)", s.alpha[0], lrW, lrA)

	theta := make([]float64, s.k*s.d+s.k) // [W, b]
	copy(theta, s.w0)
	alpha := s.alpha
	grad := make([]float64, len(theta))
	gAlpha := make([]float64, s.k)
	opt := momentumSGD{mu: lpppMomentum}
	var vf, vt, vz []float64 // validation features, text logits, logits
	if p.Val.N > 0 {
		vf = unitRows(p.Val.X, p.Val.N, s.d)
		vt = make([]float64, p.Val.N*s.k)
		mulNT(p.Val.N, s.k, s.d, vf, s.t, 0, vt)
		vz = make([]float64, p.Val.N*s.k)
	}
	best, bestAcc := append([]float64(nil), theta...), math.Inf(-1)
	bestAlpha, bestEpoch := append([]float64(nil), alpha...), 0
	var loss float64
	for e := 0; e < epochs; e++ {
		loss = s.grad(theta, alpha, grad, gAlpha)
		opt.step(theta, grad, lrW)
		if (e+1)%every == 0 {
			axpy(-lrA, gAlpha, alpha)
		}
		if vf == nil {
			continue
		}
		s.logits(theta, alpha, vf, vt, p.Val.N, vz)
		// Later epochs win ties, as in the reference (acc_val >= best_acc).
		if acc := accuracyOf(vz, p.Val.N, s.k, p.Val.Y); acc >= bestAcc {
			bestAcc, bestEpoch = acc, e+1
			copy(best, theta)
			copy(bestAlpha, alpha)
		}
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return nil, fmt.Errorf("probes: LP++ loss is %v", loss)
	}
	if vf == nil {
		best, bestAlpha, bestEpoch, bestAcc = theta, alpha, epochs, math.NaN()
	}
	p.logf("lp++: kept epoch %d of %d (validation accuracy %.4f), last training loss %.6g", bestEpoch, epochs, bestAcc, loss)
	// Fold the blending into one linear head: W + diag(alpha) T.
	h := &linearHead{k: s.k, d: s.d, w: best[:s.k*s.d], b: best[s.k*s.d:]}
	for c := 0; c < s.k; c++ {
		axpy(bestAlpha[c], s.t[c*s.d:(c+1)*s.d], h.w[c*s.d:(c+1)*s.d])
	}
	return &Fitted{Classifier: h, Params: map[string]float64{"epoch": float64(bestEpoch)}, ValAccuracy: bestAcc}, nil
}

// lppp holds LP++'s data and initial point.
type lppp struct {
	n, k, d int
	f, t    []float64 // unit shots [N, D] and text [K, D]
	ft      []float64 // [N, K] text logits f_i . t_c
	y       []int
	w0      []float64 // [W, b] initial: per-class sums of the shots, zero intercepts
	alpha   []float64 // [K] initial blending weights
	z       []float64 // [N, K]
}

// newLPPP sets up LP++'s initialisation as the reference code does: W_c is the sum
// of class c's shots (its compute_centroids), b = 0 (PyTorch's Linear draws it at
// random; zero keeps runs deterministic), and every alpha_c is 250 times the mean
// over classes c and c' of class c's mean text logit f . t_c'.
func newLPPP(p Problem) *lppp {
	n, k, d := p.Train.N, p.Classes, p.Train.D
	s := &lppp{n: n, k: k, d: d, f: unitRows(p.Train.X, n, d), t: unitRows(p.Text, k, d),
		ft: make([]float64, n*k), y: p.Train.Y, w0: make([]float64, k*d+k), alpha: make([]float64, k), z: make([]float64, n*k)}
	mulNT(n, k, d, s.f, s.t, 0, s.ft)
	classMean := make([]float64, k*k) // [class of the shots, text class]
	count := make([]float64, k)
	for i, c := range s.y {
		axpy(1, s.f[i*d:(i+1)*d], s.w0[c*d:(c+1)*d])
		axpy(1, s.ft[i*k:(i+1)*k], classMean[c*k:(c+1)*k])
		count[c]++
	}
	var mean float64
	present := 0
	for c := 0; c < k; c++ {
		if count[c] == 0 {
			continue
		}
		present++
		for _, v := range classMean[c*k : (c+1)*k] {
			mean += v / count[c]
		}
	}
	mean /= float64(present * k)
	for c := range s.alpha {
		s.alpha[c] = lpppAlphaInit * mean
	}
	return s
}

// lrW is the prototypes' step 4N / lambda_max(F^T F), as the reference computes it
// (the mean cross-entropy's gradient in W is Lipschitz with constant at most
// lambda_max / (2N), so this is twice the inverse of that bound). lambda_max comes
// exactly, as scipy's eigh gives it there, from the smaller of the two Gram matrices.
func (s *lppp) lrW() (float64, error) {
	m := min(s.n, s.d)
	gram := make([]float64, m*m)
	if s.n <= s.d {
		mulNT(s.n, s.n, s.d, s.f, s.f, 0, gram) // F F^T
	} else {
		mulTN(s.d, s.d, s.n, s.f, s.f, 0, gram) // F^T F
	}
	var es mat.EigenSym
	if !es.Factorize(mat.NewSymDense(m, gram), false) {
		return 0, fmt.Errorf("probes: LP++: eigenvalues of the %dx%d Gram matrix did not converge", m, m)
	}
	vals := es.Values(nil)
	top := vals[len(vals)-1]
	if !(top > 0) {
		return 0, fmt.Errorf("probes: LP++: features have no variance (largest eigenvalue %v)", top)
	}
	return 4 * float64(s.n) / top, nil
}

// lrAlpha is the blending weights' step N / (4 max_c sum_i (f_i . t_c)^2).
func (s *lppp) lrAlpha() float64 {
	var top float64
	for c := 0; c < s.k; c++ {
		var sum float64
		for i := 0; i < s.n; i++ {
			sum += s.ft[i*s.k+c] * s.ft[i*s.k+c]
		}
		top = math.Max(top, sum)
	}
	return float64(s.n) / (4 * top)
}

// logits writes f W^T + b + alpha (.) ft to z [n, K] for unit features f [n, D] with
// text logits ft [n, K].
func (s *lppp) logits(theta, alpha, f, ft []float64, n int, z []float64) {
	k := s.k
	mulNT(n, k, s.d, f, theta[:k*s.d], 0, z)
	b := theta[k*s.d:]
	for i := 0; i < n; i++ {
		for c := 0; c < k; c++ {
			z[i*k+c] += b[c] + alpha[c]*ft[i*k+c]
		}
	}
}

// grad returns the mean cross-entropy on the shots and writes its gradient with
// respect to [W, b] to g and with respect to alpha to gAlpha.
func (s *lppp) grad(theta, alpha, g, gAlpha []float64) float64 {
	k, d := s.k, s.d
	s.logits(theta, alpha, s.f, s.ft, s.n, s.z)
	loss := meanCrossEntropy(s.z, s.n, k, s.y)
	mulTN(k, d, s.n, s.z, s.f, 0, g[:k*d]) // dW = R^T F
	gb := g[k*d:]
	for c := range gb {
		gb[c], gAlpha[c] = 0, 0
	}
	for i := 0; i < s.n; i++ {
		for c := 0; c < k; c++ {
			r := s.z[i*k+c]
			gb[c] += r
			gAlpha[c] += r * s.ft[i*k+c]
		}
	}
	return loss
}
