package probes

import (
	"cmp"
	"fmt"
	"math"
)

// Tip-Adapter defaults, from gaopengcuhk/Tip-Adapter (main.py, utils.py and the
// search grid of configs/imagenet.yaml and oxford_pets.yaml).
const (
	// DefaultTipBetaMax and DefaultTipBetaSteps span the sharpness beta,
	// DefaultTipAlphaMax and DefaultTipAlphaSteps the residual ratio alpha (see TipGrid).
	DefaultTipBetaMax    = 7
	DefaultTipBetaSteps  = 200
	DefaultTipAlphaMax   = 3
	DefaultTipAlphaSteps = 20
	// tipGridStart is the first value of both grids.
	tipGridStart = 0.1
)

// TipGrid is Tip-Adapter's search over its residual ratio alpha and sharpness beta on
// the validation set: beta_i = 0.1 + i (BetaMax - 0.1) / BetaSteps for i < BetaSteps,
// alpha_j = 0.1 + j (AlphaMax - 0.1) / AlphaSteps for j < AlphaSteps, visited beta
// first; the first best accuracy wins. The zero value is the reference's ImageNet grid
// (beta 0.1..7 in 200 steps, alpha 0.1..3 in 20).
type TipGrid struct {
	// BetaMax bounds beta (excluded) and BetaSteps counts its values; zero means
	// DefaultTipBetaMax and DefaultTipBetaSteps. AlphaMax and AlphaSteps likewise.
	BetaMax    float64
	BetaSteps  int
	AlphaMax   float64
	AlphaSteps int
}

func (g TipGrid) withDefaults() (TipGrid, error) {
	g = TipGrid{
		BetaMax: cmp.Or(g.BetaMax, DefaultTipBetaMax), BetaSteps: cmp.Or(g.BetaSteps, DefaultTipBetaSteps),
		AlphaMax: cmp.Or(g.AlphaMax, DefaultTipAlphaMax), AlphaSteps: cmp.Or(g.AlphaSteps, DefaultTipAlphaSteps),
	}
	if !(g.BetaMax > tipGridStart) || !(g.AlphaMax > tipGridStart) || math.IsInf(g.BetaMax+g.AlphaMax, 0) || g.BetaSteps < 1 || g.AlphaSteps < 1 {
		return g, fmt.Errorf("probes: bad Tip-Adapter grid: beta up to %v in %d steps, alpha up to %v in %d", g.BetaMax, g.BetaSteps, g.AlphaMax, g.AlphaSteps)
	}
	return g, nil
}

// gridValue is the i-th of steps values from tipGridStart towards top.
func gridValue(i, steps int, top float64) float64 {
	return tipGridStart + float64(i)*(top-tipGridStart)/float64(steps)
}

// TipAdapter is the training-free Tip-Adapter (Zhang et al., ECCV 2022): a cache of
// the unit-normalised shots (keys K [M, D]) and their one-hot labels (values
// V [M, K]) added to the zero-shot logits,
//
//	logits(f) = s f T^T + alpha exp(-beta (1 - f K^T)) V
//
// with f unit-normalised and s the logit scale (100 in the reference, which hard-codes
// it; CLIP's exp(logit_scale) is 100). Alpha and beta are searched on the validation
// set over Grid, never on the test set, unless both are fixed.
type TipAdapter struct {
	// Alpha and Beta, when both are non-zero, fix the residual ratio and the
	// sharpness; when both are zero they are searched.
	Alpha, Beta float64
	// Grid is the search.
	Grid TipGrid
}

// Name implements Method.
func (*TipAdapter) Name() string { return "tip-adapter" }

// NeedsValidation implements Method: alpha and beta are searched unless fixed.
func (m *TipAdapter) NeedsValidation() bool { return m.Alpha == 0 }

// Fit implements Method.
func (m *TipAdapter) Fit(p Problem) (*Fitted, error) {
	defer singleThreadedBLAS()()
	c, err := newTipCache(p, m.Alpha, m.Beta)
	if err != nil {
		return nil, err
	}
	return c.choose(p, m.Alpha, m.Beta, m.Grid)
}

// tipCache is Tip-Adapter's classifier.
type tipCache struct {
	k, d, m     int
	s           float64
	t           []float64 // [K, D] unit zero-shot classifier
	keys        []float64 // [M, D]
	y           []int     // [M] the values' classes
	alpha, beta float64
}

// newTipCache checks p and the fixed values and builds the cache of p's shots.
func newTipCache(p Problem, alpha, beta float64) (*tipCache, error) {
	if err := p.check(true); err != nil {
		return nil, err
	}
	if (alpha == 0) != (beta == 0) || alpha < 0 || beta < 0 || math.IsInf(alpha+beta, 0) || math.IsNaN(alpha+beta) {
		return nil, fmt.Errorf("probes: Tip-Adapter alpha %v and beta %v: fix both (positive) or neither", alpha, beta)
	}
	n, k, d := p.Train.N, p.Classes, p.Train.D
	return &tipCache{k: k, d: d, m: n, s: p.logitScale(), t: unitRows(p.Text, k, d),
		keys: unitRows(p.Train.X, n, d), y: p.Train.Y}, nil
}

// Scores implements Classifier.
func (c *tipCache) Scores(x []float32, n int) ([]float32, error) {
	a := make([]float64, min(n, scoreBlock)*c.m)
	return scoreRows(x, n, c.d, c.k, func(f []float64, rows int, z []float64) {
		c.logits(f, rows, a, z)
	})
}

// logits writes the logits of the unit features f [rows, D] to z [rows, K], using a
// [rows, M] for the affinities.
func (c *tipCache) logits(f []float64, rows int, a, z []float64) {
	c.zeroShot(f, rows, z)
	c.affinity(f, rows, a)
	c.addCache(a, rows, c.alpha, c.beta, z)
}

// zeroShot writes s f T^T to z [rows, K].
func (c *tipCache) zeroShot(f []float64, rows int, z []float64) {
	mulNT(rows, c.k, c.d, f, c.t, 0, z)
	scale(c.s, z[:rows*c.k])
}

// affinity writes f K^T to a [rows, M].
func (c *tipCache) affinity(f []float64, rows int, a []float64) {
	mulNT(rows, c.m, c.d, f, c.keys, 0, a)
}

// addCache adds alpha exp(-beta (1 - a)) V to z [rows, K] for affinities a [rows, M].
func (c *tipCache) addCache(a []float64, rows int, alpha, beta float64, z []float64) {
	for i := 0; i < rows; i++ {
		zi := z[i*c.k : (i+1)*c.k]
		for j, v := range a[i*c.m : (i+1)*c.m] {
			zi[c.y[j]] += alpha * math.Exp(-beta*(1-v))
		}
	}
}

// choose sets alpha and beta: the fixed ones, or the grid's best on p.Val.
func (c *tipCache) choose(p Problem, alpha, beta float64, grid TipGrid) (*Fitted, error) {
	if alpha != 0 {
		c.alpha, c.beta = alpha, beta
		acc := math.NaN()
		if p.Val.N > 0 {
			var err error
			if acc, err = c.accuracy(p.Val); err != nil {
				return nil, err
			}
		}
		return &Fitted{Classifier: c, Params: map[string]float64{"alpha": alpha, "beta": beta}, ValAccuracy: acc}, nil
	}
	g, err := grid.withDefaults()
	if err != nil {
		return nil, err
	}
	if p.Val.N == 0 {
		return nil, fmt.Errorf("probes: Tip-Adapter needs a validation set to search alpha and beta (or fix both)")
	}
	// Count each setting's hits block by block, so that the affinities take
	// [scoreBlock, M] whatever the validation set's size.
	n, k := p.Val.N, c.k
	hits := make([]int, g.BetaSteps*g.AlphaSteps)
	rows0 := min(n, scoreBlock)
	zs, a := make([]float64, rows0*k), make([]float64, rows0*c.m)
	cache, z := make([]float64, rows0*k), make([]float64, rows0*k)
	for r0 := 0; r0 < n; r0 += scoreBlock {
		rows := min(scoreBlock, n-r0)
		f, y := unitRows(p.Val.X[r0*c.d:(r0+rows)*c.d], rows, c.d), p.Val.Y[r0:r0+rows]
		c.zeroShot(f, rows, zs)
		c.affinity(f, rows, a)
		for bi := 0; bi < g.BetaSteps; bi++ {
			clear(cache)
			c.addCache(a, rows, 1, gridValue(bi, g.BetaSteps, g.BetaMax), cache)
			for ai := 0; ai < g.AlphaSteps; ai++ {
				alpha := gridValue(ai, g.AlphaSteps, g.AlphaMax)
				for i, v := range zs[:rows*k] {
					z[i] = v + alpha*cache[i]
				}
				hits[bi*g.AlphaSteps+ai] += correct(z, rows, k, y)
			}
		}
	}
	best := 0 // beta-major: the first best wins
	for i, h := range hits {
		if h > hits[best] {
			best = i
		}
	}
	c.beta = gridValue(best/g.AlphaSteps, g.BetaSteps, g.BetaMax)
	c.alpha = gridValue(best%g.AlphaSteps, g.AlphaSteps, g.AlphaMax)
	acc := float64(hits[best]) / float64(n)
	p.logf("tip-adapter: alpha %.4g, beta %.4g chosen on %d validation examples (accuracy %.4f; grid %d x %d)", c.alpha, c.beta, n, acc, g.AlphaSteps, g.BetaSteps)
	return &Fitted{Classifier: c, Params: map[string]float64{"alpha": c.alpha, "beta": c.beta}, ValAccuracy: acc}, nil
}

// accuracy is the accuracy of c with its current alpha and beta on ds.
func (c *tipCache) accuracy(ds Dataset) (float64, error) {
	s, err := c.Scores(ds.X, ds.N)
	if err != nil {
		return 0, err
	}
	return Accuracy(argmaxRows(s, ds.N, c.k), ds.Y), nil
}

// Tip-Adapter-F defaults, from gaopengcuhk/Tip-Adapter (main.py; configs/imagenet.yaml).
const (
	// DefaultTipFEpochs is the number of fine-tuning epochs.
	DefaultTipFEpochs = 20
	// DefaultTipFLR is AdamW's peak learning rate, decayed by a half cosine to zero.
	DefaultTipFLR = 1e-3
	// tipFAlpha and tipFBeta are the values the keys are fine-tuned with (init_alpha,
	// init_beta) when not fixed.
	tipFAlpha = 1.17
	tipFBeta  = 1
	// AdamW's settings there: PyTorch's betas and weight decay, eps 1e-4.
	tipFAdamB1, tipFAdamB2, tipFAdamEps, tipFWeightDecay = 0.9, 0.999, 1e-4, 0.01
)

// TipAdapterF is Tip-Adapter-F: Tip-Adapter with the cache keys fine-tuned on the
// shots' mean cross-entropy by full-batch AdamW (lr 1e-3 with a half-cosine decay,
// eps 1e-4, weight decay 0.01) for Epochs epochs at alpha 1.17, beta 1 (the
// reference's ImageNet values) unless fixed. The epoch kept is the one with the best
// validation accuracy (the reference picks it on the test set), then alpha and beta
// are searched on the validation set as in TipAdapter, with the fine-tuned keys.
type TipAdapterF struct {
	// Alpha and Beta, when both are non-zero, are used for fine-tuning and kept.
	Alpha, Beta float64
	// Grid is the search.
	Grid TipGrid
	// Epochs is the number of full-batch steps. Zero means DefaultTipFEpochs.
	Epochs int
	// LR is the peak learning rate. Zero means DefaultTipFLR.
	LR float64
}

// Name implements Method.
func (*TipAdapterF) Name() string { return "tip-adapter-f" }

// NeedsValidation implements Method: the epoch is chosen on the validation set.
func (*TipAdapterF) NeedsValidation() bool { return true }

// Fit implements Method.
func (m *TipAdapterF) Fit(p Problem) (*Fitted, error) {
	defer singleThreadedBLAS()()
	c, err := newTipCache(p, m.Alpha, m.Beta)
	if err != nil {
		return nil, err
	}
	epochs, lr := cmp.Or(m.Epochs, DefaultTipFEpochs), cmp.Or(m.LR, DefaultTipFLR)
	if epochs < 0 || !(lr > 0) || math.IsInf(lr, 0) {
		return nil, fmt.Errorf("probes: Tip-Adapter-F with %d epochs at learning rate %v; need >= 0 and a positive finite rate", epochs, lr)
	}
	c.alpha, c.beta = tipFAlpha, tipFBeta
	if m.Alpha != 0 {
		c.alpha, c.beta = m.Alpha, m.Beta
	}
	tr := newTipTrainer(c, p.Train)
	opt := adamW{b1: tipFAdamB1, b2: tipFAdamB2, eps: tipFAdamEps, wd: tipFWeightDecay}
	best, bestAcc, bestEpoch := append([]float64(nil), c.keys...), math.Inf(-1), 0
	var loss float64
	for e := 0; e < epochs; e++ {
		loss = tr.grad()
		opt.step(c.keys, tr.g, cosineLR(lr, e, epochs))
		if p.Val.N == 0 {
			continue
		}
		// The first best wins, as in the reference (acc > best_acc).
		acc, err := c.accuracy(p.Val)
		if err != nil {
			return nil, err
		}
		if acc > bestAcc {
			bestAcc, bestEpoch = acc, e+1
			copy(best, c.keys)
		}
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return nil, fmt.Errorf("probes: Tip-Adapter-F loss is %v", loss)
	}
	if p.Val.N > 0 {
		copy(c.keys, best)
	} else {
		bestEpoch = epochs
	}
	p.logf("tip-adapter-f: kept epoch %d of %d (validation accuracy %.4f at alpha %.4g, beta %.4g), last training loss %.6g",
		bestEpoch, epochs, bestAcc, c.alpha, c.beta, loss)
	f, err := c.choose(p, m.Alpha, m.Beta, m.Grid)
	if err != nil {
		return nil, err
	}
	f.Params["epoch"] = float64(bestEpoch)
	return f, nil
}

// tipTrainer evaluates Tip-Adapter-F's loss on the shots and its gradient with respect
// to the keys. With A = F K^T, E = exp(-beta (1 - A)) and R the gradient of the mean
// cross-entropy with respect to the logits,
//
//	dL/dA_ij = alpha beta E_ij R_{i, y_j},  dL/dK = (dL/dA)^T F.
//
// The shots go through in blocks of scoreBlock rows, so that the affinities take
// [scoreBlock, M] whatever the number of shots (the gradient is still full-batch).
type tipTrainer struct {
	c     *tipCache
	n     int
	f     []float64 // [N, D] unit shots
	y     []int
	zs, z []float64 // [N, K] zero-shot logits; a block's logits, then R
	a     []float64 // [block, M] a block's affinities, then dL/dA
	g     []float64 // [M, D]
}

func newTipTrainer(c *tipCache, train Dataset) *tipTrainer {
	n := train.N
	tr := &tipTrainer{c: c, n: n, f: unitRows(train.X, n, c.d), y: train.Y,
		zs: make([]float64, n*c.k), z: make([]float64, min(n, scoreBlock)*c.k), a: make([]float64, min(n, scoreBlock)*c.m),
		g: make([]float64, c.m*c.d)}
	c.zeroShot(tr.f, n, tr.zs)
	return tr
}

// grad returns the mean cross-entropy at the current keys and leaves its gradient in g.
func (tr *tipTrainer) grad() float64 {
	c, k := tr.c, tr.c.k
	var loss float64
	for r0 := 0; r0 < tr.n; r0 += scoreBlock {
		rows := min(scoreBlock, tr.n-r0)
		f, a, z := tr.f[r0*c.d:(r0+rows)*c.d], tr.a[:rows*c.m], tr.z[:rows*k]
		c.affinity(f, rows, a)
		copy(z, tr.zs[r0*k:(r0+rows)*k])
		c.addCache(a, rows, c.alpha, c.beta, z)
		// The block's mean, weighted into the mean over all N shots.
		share := float64(rows) / float64(tr.n)
		loss += share * meanCrossEntropy(z, rows, k, tr.y[r0:r0+rows])
		scale(share, z)
		for i := 0; i < rows; i++ {
			ai, ri := a[i*c.m:(i+1)*c.m], z[i*k:(i+1)*k]
			for j, v := range ai {
				ai[j] = c.alpha * c.beta * math.Exp(-c.beta*(1-v)) * ri[c.y[j]]
			}
		}
		beta := 1.0
		if r0 == 0 {
			beta = 0
		}
		mulTN(c.m, c.d, rows, a, f, beta, tr.g)
	}
	return loss
}
