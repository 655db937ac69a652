package probes

import (
	"cmp"
	"fmt"
	"math"
)

// ZS-LP and CLAP defaults: the optimiser of jusiro/CLAP (configs/trainers/
// SGD_lr1e-1_B256_ep300.yaml on Dassl's defaults).
const (
	// DefaultCosineEpochs is the number of epochs, each one full-batch step here (in
	// the reference, one batch of 256, which holds all the shots up to 16 classes at
	// 16 shots).
	DefaultCosineEpochs = 300
	// DefaultCosineLR is the peak learning rate of SGD with momentum 0.9.
	DefaultCosineLR = 0.1
	// DefaultInitNorm is the norm the prototypes start at (and CLAP anchors to) when
	// neither ZSLP.InitNorm nor Problem.TextNorm gives one. The reference starts them
	// at the raw mean of the template embeddings, whose norm depends on the model; with
	// cosine logits that norm only sets the effective step (lr / norm^2) and CLAP's
	// penalty (times norm^2). A unit classifier has lost it, so its rows are scaled to
	// the order of magnitude of raw CLIP embeddings (a guess: about 21 for
	// ViT-L/14@336px images); a norm of 1 takes steps 100 times larger, and ZS-LP then
	// falls far below zero-shot at 1 shot.
	DefaultInitNorm = 10
	// cosineWarmupLR is the constant learning rate of the one warm-up epoch.
	cosineWarmupLR = 1e-5
	cosineMomentum = 0.9
)

// ZSLP is the zero-shot-initialised linear probe (Silva-Rodriguez et al., CVPR 2024,
// their baseline): class prototypes W [K, D] initialised at InitNorm times the
// zero-shot classifier, logits s cos(f, w_c), trained by full-batch SGD on the mean
// cross-entropy. Untrained (Epochs < 0) it is the zero-shot classifier. It uses no
// validation set.
type ZSLP struct {
	// Epochs is the number of full-batch steps. Zero means DefaultCosineEpochs;
	// negative means none.
	Epochs int
	// LR is the peak learning rate. Zero means DefaultCosineLR.
	LR float64
	// InitNorm is the prototypes' initial norm. Zero means Problem.TextNorm, the raw
	// class embeddings' own, when known, else DefaultInitNorm.
	InitNorm float64
}

// Name implements Method.
func (*ZSLP) Name() string { return "zs-lp" }

// NeedsValidation implements Method: ZS-LP has nothing to choose.
func (*ZSLP) NeedsValidation() bool { return false }

// Fit implements Method.
func (m *ZSLP) Fit(p Problem) (*Fitted, error) {
	return fitCosine(p, m.Name(), m.Epochs, m.LR, m.InitNorm, false)
}

// CLAP is ZS-LP with the class-adaptive penalty of Silva-Rodriguez et al., "A Closer
// Look at the Few-Shot Adaptation of Large Vision-Language Models" (CVPR 2024): the
// loss adds (1/K) sum_c lambda_c ||w_c - InitNorm t_c||^2, pulling each prototype
// towards its zero-shot embedding, with lambda_c the mean zero-shot probability of
// class c over its own shots. Its fields are ZSLP's. It uses no validation set, by
// design.
type CLAP ZSLP

// Name implements Method.
func (*CLAP) Name() string { return "clap" }

// NeedsValidation implements Method: CLAP is model-selection free.
func (*CLAP) NeedsValidation() bool { return false }

// Fit implements Method.
func (m *CLAP) Fit(p Problem) (*Fitted, error) {
	return fitCosine(p, m.Name(), m.Epochs, m.LR, m.InitNorm, true)
}

// fitCosine trains ZS-LP, or CLAP when penalised, as jusiro/CLAP does: SGD with
// momentum 0.9, one warm-up epoch at 1e-5, then lr (1 + cos(pi (e-1) / epochs)) / 2.
func fitCosine(p Problem, name string, epochs int, lr, norm float64, penalised bool) (*Fitted, error) {
	if err := p.check(true); err != nil {
		return nil, err
	}
	epochs, lr, norm = cmp.Or(epochs, DefaultCosineEpochs), cmp.Or(lr, DefaultCosineLR), cmp.Or(norm, p.TextNorm, DefaultInitNorm)
	if !(lr > 0) || math.IsInf(lr, 0) || !(norm > 0) || math.IsInf(norm, 0) {
		return nil, fmt.Errorf("probes: learning rate %v and initial norm %v; need positive finite values", lr, norm)
	}
	defer singleThreadedBLAS()()
	o := newCosineObjective(p, norm, penalised)
	w := append([]float64(nil), o.t...) // prototypes start at the (scaled) zero-shot classifier
	if epochs > 0 {
		loss := o.train(w, epochs, lr)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("probes: loss is %v (non-finite features?)", loss)
		}
		p.logf("%s: %d epochs, loss %.6g at the last step", name, epochs, loss)
	}
	return &Fitted{Classifier: o.head(w), ValAccuracy: math.NaN()}, nil
}

// train runs the reference optimiser from w for epochs full-batch steps and returns
// the loss at the last one.
func (o *cosineObjective) train(w []float64, epochs int, lr float64) float64 {
	g := make([]float64, len(w))
	opt := momentumSGD{mu: cosineMomentum}
	var loss float64
	for e := 0; e < epochs; e++ {
		step := cosineWarmupLR
		if e > 0 {
			step = cosineLR(lr, e-1, epochs)
		}
		loss = o.eval(w, g)
		opt.step(w, g, step)
	}
	return loss
}

// cosineObjective is the loss of ZS-LP (lambda nil) and CLAP over the prototypes
// W [K, D]:
//
//	L(W) = (1/N) sum_i CE(s f_i . w_c / ||w_c||, y_i) + (1/K) sum_c lambda_c ||w_c - t_c||^2
//
// with f_i the unit-normalised shots, t_c the zero-shot embeddings scaled to the
// initial norm, s the logit scale.
type cosineObjective struct {
	n, k, d int
	s       float64
	f       []float64 // [N, D] unit rows
	y       []int
	t       []float64 // [K, D] anchors: the zero-shot classifier's rows at the initial norm
	lambda  []float64 // [K], nil for ZS-LP
	z       []float64 // [N, K] logits, then their gradient
	wh, gh  []float64 // [K, D] unit prototypes; gradient with respect to them
	inv     []float64 // [K] 1 / ||w_c||
}

func newCosineObjective(p Problem, norm float64, penalised bool) *cosineObjective {
	k, d, n := p.Classes, p.Train.D, p.Train.N
	o := &cosineObjective{n: n, k: k, d: d, s: p.logitScale(),
		f: unitRows(p.Train.X, n, d), y: p.Train.Y, t: unitRows(p.Text, k, d),
		z: make([]float64, n*k), wh: make([]float64, k*d), gh: make([]float64, k*d), inv: make([]float64, k)}
	if penalised {
		o.lambda = clapMultipliers(o.f, o.y, n, k, d, o.t, o.s)
	}
	scale(norm, o.t)
	return o
}

// clapMultipliers returns CLAP's lambda_c: the zero-shot softmax probability of class
// c averaged over the shots of class c (0 for a class without shots).
func clapMultipliers(f []float64, y []int, n, k, d int, t []float64, s float64) []float64 {
	z := make([]float64, n*k)
	mulNT(n, k, d, f, t, 0, z)
	scale(s, z)
	lambda := make([]float64, k)
	count := make([]int, k)
	for i, c := range y {
		row := z[i*k : (i+1)*k]
		softmax(row)
		lambda[c] += row[c]
		count[c]++
	}
	for c := range lambda {
		if count[c] > 0 {
			lambda[c] /= float64(count[c])
		}
	}
	return lambda
}

// eval returns L(w) and writes its gradient to grad.
func (o *cosineObjective) eval(w, grad []float64) float64 {
	n, k, d := o.n, o.k, o.d
	for c := 0; c < k; c++ {
		row := w[c*d : (c+1)*d]
		o.inv[c] = 1 / math.Sqrt(dot(row, row))
		for j, v := range row {
			o.wh[c*d+j] = v * o.inv[c]
		}
	}
	// z [N,K] = s F . What^T
	mulNT(n, k, d, o.f, o.wh, 0, o.z)
	scale(o.s, o.z)
	loss := meanCrossEntropy(o.z, n, k, o.y)
	// gh [K,D] = s dL/dz^T . F, the gradient with respect to the unit prototypes
	mulTN(k, d, n, o.z, o.f, 0, o.gh)
	scale(o.s, o.gh)
	for c := 0; c < k; c++ {
		// Through the normalisation: dL/dw = (I - wh wh^T) dL/dwh / ||w||.
		gh, wh, gc := o.gh[c*d:(c+1)*d], o.wh[c*d:(c+1)*d], grad[c*d:(c+1)*d]
		proj := dot(gh, wh)
		for j := range gc {
			gc[j] = (gh[j] - proj*wh[j]) * o.inv[c]
		}
		if o.lambda != nil {
			wc, tc := w[c*d:(c+1)*d], o.t[c*d:(c+1)*d]
			a := o.lambda[c] / float64(k)
			for j := range gc {
				diff := wc[j] - tc[j]
				loss += a * diff * diff
				gc[j] += 2 * a * diff
			}
		}
	}
	return loss
}

// head is the classifier of prototypes w: s f . w_c / ||w_c||.
func (o *cosineObjective) head(w []float64) *linearHead {
	h := &linearHead{k: o.k, d: o.d, w: make([]float64, len(w))}
	for c := 0; c < o.k; c++ {
		row := w[c*o.d : (c+1)*o.d]
		a := o.s / math.Sqrt(dot(row, row))
		for j, v := range row {
			h.w[c*o.d+j] = a * v
		}
	}
	return h
}
