package probes

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// fewShotProblem draws a k-shot problem of 10 classes in d dimensions from clipLike,
// with min(k, 4) validation examples per class and a test set of up to 600 examples.
func fewShotProblem(tb testing.TB, seed uint64, k, d int) (p Problem, test Dataset) {
	tb.Helper()
	all, text := clipLike(seed, 10, d, 100, 6*math.Sqrt(float64(d)/512), 1.0)
	idx, err := SampleShots(all.Y, 10, k, seed)
	if err != nil {
		tb.Fatal(err)
	}
	val, err := SampleValidation(all.Y, 10, idx, ValidationShots(k), seed)
	if err != nil {
		tb.Fatal(err)
	}
	used := map[int]bool{}
	for _, i := range append(slices.Clone(idx), val...) {
		used[i] = true
	}
	var rest []int
	for i := range all.Y {
		if !used[i] && len(rest) < 600 { // more than scoreBlock rows
			rest = append(rest, i)
		}
	}
	return Problem{Train: all.Subset(idx), Val: all.Subset(val), Classes: 10, Text: text}, all.Subset(rest)
}

// unit64 returns v widened and scaled to unit norm, computed plainly.
func unit64(v []float32) []float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x) / math.Sqrt(ss)
	}
	return out
}

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// tipReference is Tip-Adapter's logit formula for one example, written plainly from
// the paper: s f.t_c + alpha sum_m exp(-beta (1 - f.k_m)) [y_m = c].
func tipReference(p Problem, x []float32, alpha, beta float64) []float64 {
	d := p.Train.D
	f := unit64(x)
	z := make([]float64, p.Classes)
	for c := range z {
		z[c] = p.logitScale() * dot64(f, unit64(p.Text[c*d:(c+1)*d]))
	}
	for m := 0; m < p.Train.N; m++ {
		z[p.Train.Y[m]] += alpha * math.Exp(-beta*(1-dot64(f, unit64(p.Train.X[m*d:(m+1)*d]))))
	}
	return z
}

func TestTipAdapterLogits(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		k           int
		alpha, beta float64
		scale       float64
	}{
		{1, 1, 1, 0},
		{4, 1.17, 5.5, 0},
		{16, 3, 0.5, 50},
	} {
		p, te := fewShotProblem(t, uint64(i+1), test.k, 64)
		p.LogitScale = test.scale
		f, err := (&TipAdapter{Alpha: test.alpha, Beta: test.beta}).Fit(p)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		s, err := f.Scores(te.X, te.N)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if len(s) != te.N*10 {
			t.Fatalf("test %d: got %d scores want %d", i, len(s), te.N*10)
		}
		for r := 0; r < te.N; r += 37 {
			want := tipReference(p, te.X[r*64:(r+1)*64], test.alpha, test.beta)
			for c, w := range want {
				if got := float64(s[r*10+c]); math.Abs(got-w) > 1e-5*math.Max(1, math.Abs(w)) {
					t.Errorf("test %d: row %d class %d: got %v want %v", i, r, c, got, w)
				}
			}
		}
		if f.Params["alpha"] != test.alpha || f.Params["beta"] != test.beta {
			t.Errorf("test %d: got params %v want the fixed alpha %v, beta %v", i, f.Params, test.alpha, test.beta)
		}
	}
}

// TestTipAdapterSearch checks the search against a brute force over the same grid with
// the plain formula: the first (beta-major) setting of best validation accuracy.
func TestTipAdapterSearch(t *testing.T) {
	t.Parallel()
	grid := TipGrid{BetaMax: 9, BetaSteps: 12, AlphaMax: 4, AlphaSteps: 7}
	for i, test := range []struct {
		k        int
		largeVal bool // more validation rows than a block
	}{{2, false}, {8, false}, {4, true}} {
		p, te := fewShotProblem(t, uint64(10+i), test.k, 32)
		if test.largeVal {
			p.Val = te
		}
		f, err := (&TipAdapter{Grid: grid}).Fit(p)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		best, wantA, wantB := -1.0, 0.0, 0.0
		for bi := 0; bi < grid.BetaSteps; bi++ {
			beta := 0.1 + float64(bi)*(9-0.1)/12
			for ai := 0; ai < grid.AlphaSteps; ai++ {
				alpha := 0.1 + float64(ai)*(4-0.1)/7
				hit := 0
				for r := 0; r < p.Val.N; r++ {
					hit += int(accuracyOf(tipReference(p, p.Val.X[r*32:(r+1)*32], alpha, beta), 1, 10, p.Val.Y[r:r+1]))
				}
				if acc := float64(hit) / float64(p.Val.N); acc > best {
					best, wantA, wantB = acc, alpha, beta
				}
			}
		}
		if math.Abs(f.Params["alpha"]-wantA) > 1e-12 || math.Abs(f.Params["beta"]-wantB) > 1e-12 || f.ValAccuracy != best {
			t.Errorf("test %d: got alpha %v beta %v val acc %v want %v %v %v", i, f.Params["alpha"], f.Params["beta"], f.ValAccuracy, wantA, wantB, best)
		}
	}
}

// TestZSLPAtInit checks that the untrained probe is the zero-shot classifier, and
// that one warm-up step (lr 1e-5) barely moves it.
func TestZSLPAtInit(t *testing.T) {
	t.Parallel()
	p, te := fewShotProblem(t, 3, 4, 48)
	for i, test := range []struct {
		m   Method
		tol float64
	}{
		{&ZSLP{Epochs: -1}, 1e-5},
		{&CLAP{Epochs: -1}, 1e-5},
		{&ZSLP{Epochs: 1}, 1e-3},
	} {
		f, err := test.m.Fit(p)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		s, err := f.Scores(te.X, te.N)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		for r := 0; r < te.N; r += 11 {
			fr := unit64(te.X[r*48 : (r+1)*48])
			for c := 0; c < 10; c++ {
				want := DefaultLogitScale * dot64(fr, unit64(p.Text[c*48:(c+1)*48]))
				if got := float64(s[r*10+c]); math.Abs(got-want) > test.tol*math.Max(1, math.Abs(want)) {
					t.Errorf("test %d: row %d class %d: got %v want zero-shot %v", i, r, c, got, want)
				}
			}
		}
	}
}

// cosineLossReference evaluates the ZS-LP/CLAP loss plainly at prototypes w.
func cosineLossReference(p Problem, w []float64, anchors []float64, lambda []float64) float64 {
	d, k := p.Train.D, p.Classes
	var loss float64
	for i := 0; i < p.Train.N; i++ {
		f := unit64(p.Train.X[i*d : (i+1)*d])
		z := make([]float64, k)
		m := math.Inf(-1)
		for c := range z {
			wc := w[c*d : (c+1)*d]
			z[c] = p.logitScale() * dot64(f, wc) / math.Sqrt(dot64(wc, wc))
			m = math.Max(m, z[c])
		}
		var sum float64
		for _, v := range z {
			sum += math.Exp(v - m)
		}
		loss += (m + math.Log(sum) - z[p.Train.Y[i]]) / float64(p.Train.N)
	}
	for c := range lambda {
		var ss float64
		for j := 0; j < d; j++ {
			diff := w[c*d+j] - anchors[c*d+j]
			ss += diff * diff
		}
		loss += lambda[c] * ss / float64(k)
	}
	return loss
}

// TestCosineObjective checks the ZS-LP and CLAP loss against a plain evaluation, its
// gradient against central differences, and CLAP's multipliers against their
// definition (mean zero-shot probability of each class over its own shots).
func TestCosineObjective(t *testing.T) {
	t.Parallel()
	p, _ := fewShotProblem(t, 5, 2, 12)
	d, k := 12, 10
	wantLambda := make([]float64, k)
	for i := 0; i < p.Train.N; i++ {
		f := unit64(p.Train.X[i*d : (i+1)*d])
		z := make([]float64, k)
		var sum float64
		for c := range z {
			z[c] = math.Exp(DefaultLogitScale * dot64(f, unit64(p.Text[c*d:(c+1)*d])))
			sum += z[c]
		}
		wantLambda[p.Train.Y[i]] += z[p.Train.Y[i]] / sum / 2 // 2 shots per class
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for i, penalised := range []bool{false, true} {
		o := newCosineObjective(p, 3, penalised)
		if penalised {
			for c, want := range wantLambda {
				if math.Abs(o.lambda[c]-want) > 1e-12 {
					t.Errorf("test %d: lambda_%d got %v want %v", i, c, o.lambda[c], want)
				}
			}
		}
		w := slices.Clone(o.t)
		for j := range w {
			w[j] += 0.3 * rng.NormFloat64()
		}
		g := make([]float64, len(w))
		loss := o.eval(w, g)
		if want := cosineLossReference(p, w, o.t, o.lambda); math.Abs(loss-want) > 1e-10*math.Max(1, want) {
			t.Errorf("test %d: got loss %v want %v", i, loss, want)
		}
		scratch := make([]float64, len(w))
		for j := 0; j < len(w); j += 7 {
			const h = 1e-6
			wp := slices.Clone(w)
			wp[j] += h
			fp := o.eval(wp, scratch)
			wp[j] -= 2 * h
			fm := o.eval(wp, scratch)
			if fd := (fp - fm) / (2 * h); math.Abs(fd-g[j]) > 1e-5*math.Max(1, math.Abs(g[j])) {
				t.Errorf("test %d: parameter %d: got gradient %v want %v (finite difference)", i, j, g[j], fd)
			}
		}
	}
}

// TestCLAPConverges checks that the reference optimiser's 300 steps end at CLAP's
// minimum: a near-zero gradient, and the loss of a tightly converged L-BFGS
// minimisation of the same objective started elsewhere.
func TestCLAPConverges(t *testing.T) {
	t.Parallel()
	for i, k := range []int{4, 16} {
		p, _ := fewShotProblem(t, uint64(20+i), k, 512)
		o := newCosineObjective(p, DefaultInitNorm, true)
		w := slices.Clone(o.t)
		o.train(w, DefaultCosineEpochs, DefaultCosineLR)
		g := make([]float64, len(w))
		loss := o.eval(w, g)
		t.Logf("k=%d: loss %.10g, max gradient %.2g", k, loss, maxAbs(g))
		if gm := maxAbs(g); gm > 1e-4 {
			t.Errorf("test %d (k=%d): got max gradient %v after training want <= 1e-4", i, k, gm)
		}
		ref := slices.Clone(o.t)
		scale(0.5, ref) // away from where training starts
		r := minimize(o.eval, ref, lbfgsSettings{maxIter: 10000, memory: 10, gtol: 1e-9, ftol: -1})
		if math.Abs(loss-r.f) > 1e-6*r.f || loss < r.f-1e-9 {
			t.Errorf("test %d (k=%d): got loss %.10g want the minimum %.10g (L-BFGS: %s, max gradient %.2g)", i, k, loss, r.f, r.reason, r.gradMax)
		}
	}
}

// TestLPPlusPlusSetup checks LP++'s initial point and step sizes against their
// definitions, the largest eigenvalue by power iteration on F^T F.
func TestLPPlusPlusSetup(t *testing.T) {
	t.Parallel()
	for i, test := range []struct{ k, d int }{{1, 40}, {8, 16}} { // N < D and N > D
		p, _ := fewShotProblem(t, uint64(30+i), test.k, test.d)
		s := newLPPP(p)
		n, d := p.Train.N, test.d
		f := make([][]float64, n)
		for r := range f {
			f[r] = unit64(p.Train.X[r*d : (r+1)*d])
		}
		v := make([]float64, d)
		for j := range v {
			v[j] = 1 + float64(j%3)
		}
		var lambda float64
		for it := 0; it < 5000; it++ {
			u := make([]float64, d)
			for _, fr := range f {
				axpy(dot64(fr, v), fr, u)
			}
			lambda = math.Sqrt(dot64(u, u) / dot64(v, v))
			v = u
			scale(1/math.Sqrt(dot64(v, v)), v)
		}
		lrW, err := s.lrW()
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if want := 4 * float64(n) / lambda; math.Abs(lrW-want) > 1e-8*want {
			t.Errorf("test %d: got lr_W %v want %v", i, lrW, want)
		}
		var mean, top float64
		for c := 0; c < 10; c++ {
			tc := unit64(p.Text[c*d : (c+1)*d])
			var sq float64
			for _, fr := range f {
				x := dot64(fr, tc)
				mean += 250 * x / float64(n*10) // balanced shots: 250 x the mean over examples and classes
				sq += x * x
			}
			top = math.Max(top, sq)
		}
		if math.Abs(s.alpha[0]-mean) > 1e-10*math.Abs(mean) || s.alpha[9] != s.alpha[0] {
			t.Errorf("test %d: got alpha init %v want %v for every class", i, s.alpha, mean)
		}
		if want := float64(n) / (4 * top); math.Abs(s.lrAlpha()-want) > 1e-12*want {
			t.Errorf("test %d: got lr_alpha %v want %v", i, s.lrAlpha(), want)
		}
		sum := make([]float64, 10*d)
		for r, fr := range f {
			axpy(1, fr, sum[p.Train.Y[r]*d:(p.Train.Y[r]+1)*d])
		}
		for j, want := range sum {
			if math.Abs(s.w0[j]-want) > 1e-12 {
				t.Fatalf("test %d: W init %d got %v want the class sum %v", i, j, s.w0[j], want)
			}
		}
	}
}

// checkGradient compares grad, the gradient of loss at x, with central differences on
// every stride-th coordinate.
func checkGradient(t *testing.T, name string, x, grad []float64, loss func(x []float64) float64, h, tol float64, stride int) {
	t.Helper()
	for j := 0; j < len(x); j += stride {
		xp := slices.Clone(x)
		xp[j] += h
		fp := loss(xp)
		xp[j] -= 2 * h
		fm := loss(xp)
		if fd := (fp - fm) / (2 * h); math.Abs(fd-grad[j]) > tol*math.Max(1, math.Abs(grad[j])) {
			t.Errorf("%s: parameter %d: got gradient %v want %v (finite difference)", name, j, grad[j], fd)
		}
	}
}

// TestLPPlusPlusGradient checks LP++'s gradients in W, b and alpha.
func TestLPPlusPlusGradient(t *testing.T) {
	t.Parallel()
	p, _ := fewShotProblem(t, 6, 3, 10)
	s := newLPPP(p)
	rng := rand.New(rand.NewPCG(6, 6))
	theta := slices.Clone(s.w0)
	for j := range theta {
		theta[j] += 0.5 * rng.NormFloat64()
	}
	alpha := slices.Clone(s.alpha)
	for c := range alpha {
		alpha[c] *= 0.1 * float64(c+1)
	}
	g, ga := make([]float64, len(theta)), make([]float64, len(alpha))
	s.grad(theta, alpha, g, ga)
	sg, sga := make([]float64, len(theta)), make([]float64, len(alpha))
	checkGradient(t, "W, b", theta, g, func(x []float64) float64 { return s.grad(x, alpha, sg, sga) }, 1e-6, 1e-6, 3)
	checkGradient(t, "alpha", alpha, ga, func(x []float64) float64 { return s.grad(theta, x, sg, sga) }, 1e-6, 1e-6, 1)
}

// TestLPPlusPlusFit checks that training lowers the loss well below its initial value,
// that the kept epoch is one that was run, and that the reported validation accuracy
// is the returned classifier's.
func TestLPPlusPlusFit(t *testing.T) {
	t.Parallel()
	p, _ := fewShotProblem(t, 7, 8, 64)
	s := newLPPP(p)
	g, ga := make([]float64, len(s.w0)), make([]float64, s.k)
	before := s.grad(s.w0, s.alpha, g, ga)
	f, err := (&LPPlusPlus{}).Fit(p)
	if err != nil {
		t.Fatal(err)
	}
	h := f.Classifier.(*linearHead)
	z := make([]float64, p.Train.N*10)
	h.logits(unitRows(p.Train.X, p.Train.N, 64), p.Train.N, z)
	after := meanCrossEntropy(z, p.Train.N, 10, p.Train.Y)
	if !(after < 0.5*before) {
		t.Errorf("got training loss %v after fitting, %v before; want at most half", after, before)
	}
	if e := f.Params["epoch"]; e < 1 || e > DefaultLPPPEpochs || e != math.Trunc(e) {
		t.Errorf("got kept epoch %v want an integer in [1, %d]", e, DefaultLPPPEpochs)
	}
	s32, err := f.Scores(p.Val.X, p.Val.N)
	if err != nil {
		t.Fatal(err)
	}
	if acc := Accuracy(argmaxRows(s32, p.Val.N, 10), p.Val.Y); acc != f.ValAccuracy {
		t.Errorf("got validation accuracy %v reported, %v from the classifier", f.ValAccuracy, acc)
	}
	p.Val = Dataset{}
	last, err := (&LPPlusPlus{}).Fit(p)
	if err != nil {
		t.Fatal(err)
	}
	if last.Params["epoch"] != DefaultLPPPEpochs || !math.IsNaN(last.ValAccuracy) {
		t.Errorf("without validation: got epoch %v, val accuracy %v want the last (%d) and NaN", last.Params["epoch"], last.ValAccuracy, DefaultLPPPEpochs)
	}
}

// TestTipAdapterFGradient checks the keys' gradient (with more shots than a block of
// rows too), then that fine-tuning keeps the epoch whose validation accuracy it reports.
func TestTipAdapterFGradient(t *testing.T) {
	t.Parallel()
	for i, test := range []struct{ k, d, stride int }{{2, 16, 5}, {60, 4, 97}} {
		p, _ := fewShotProblem(t, 8, test.k, test.d)
		c, err := newTipCache(p, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.alpha, c.beta = 1.7, 3
		rng := rand.New(rand.NewPCG(8, 8))
		for j := range c.keys {
			c.keys[j] += 0.1 * rng.NormFloat64()
		}
		tr := newTipTrainer(c, p.Train)
		tr.grad()
		g := slices.Clone(tr.g)
		keys := slices.Clone(c.keys)
		checkGradient(t, fmt.Sprintf("test %d: keys", i), keys, g, func(x []float64) float64 {
			copy(c.keys, x)
			return tr.grad()
		}, 1e-6, 1e-6, test.stride)
	}
	p, _ := fewShotProblem(t, 8, 2, 16)

	f, err := (&TipAdapterF{Alpha: 2, Beta: 4, Epochs: 12}).Fit(p)
	if err != nil {
		t.Fatal(err)
	}
	if e := f.Params["epoch"]; e < 1 || e > 12 || f.Params["alpha"] != 2 || f.Params["beta"] != 4 {
		t.Errorf("got params %v want epoch in [1, 12], alpha 2, beta 4", f.Params)
	}
	s, err := f.Scores(p.Val.X, p.Val.N)
	if err != nil {
		t.Fatal(err)
	}
	if acc := Accuracy(argmaxRows(s, p.Val.N, 10), p.Val.Y); acc != f.ValAccuracy {
		t.Errorf("got validation accuracy %v reported, %v from the classifier", f.ValAccuracy, acc)
	}
}

// TestOptimizers checks the optimisers' steps against PyTorch's update rules written
// out by hand for two steps on x = [1, -2].
func TestOptimizers(t *testing.T) {
	t.Parallel()
	g1, g2 := []float64{0.5, -1}, []float64{0.25, 2}
	sgd := momentumSGD{mu: 0.9}
	x := []float64{1, -2}
	sgd.step(x, g1, 0.1) // buf = g1
	sgd.step(x, g2, 0.2) // buf = 0.9 g1 + g2
	want := []float64{1 - 0.1*0.5 - 0.2*(0.45+0.25), -2 + 0.1 - 0.2*(-0.9+2)}
	for i := range x {
		if math.Abs(x[i]-want[i]) > 1e-15 {
			t.Errorf("SGD: coordinate %d: got %v want %v", i, x[i], want[i])
		}
	}
	ad := adamW{b1: 0.9, b2: 0.999, eps: 1e-4, wd: 0.01}
	x = []float64{1, -2}
	ad.step(x, g1, 1e-3)
	ad.step(x, g2, 5e-4)
	for i, x0 := range []float64{1, -2} {
		// step 1: m = 0.1 g1, v = 0.001 g1^2: the corrected ratio is g1/(|g1| + eps).
		y := x0 * (1 - 1e-3*0.01)
		y -= 1e-3 * g1[i] / (math.Abs(g1[i]) + 1e-4)
		m := 0.9*0.1*g1[i] + 0.1*g2[i]
		v := 0.999*0.001*g1[i]*g1[i] + 0.001*g2[i]*g2[i]
		y *= 1 - 5e-4*0.01
		y -= 5e-4 * (m / (1 - 0.81)) / (math.Sqrt(v/(1-0.999*0.999)) + 1e-4)
		if math.Abs(x[i]-y) > 1e-14 {
			t.Errorf("AdamW: coordinate %d: got %v want %v", i, x[i], y)
		}
	}
	for i, test := range []struct {
		t, steps int
		want     float64
	}{{0, 10, 2}, {5, 10, 1}, {10, 10, 0}} {
		if got := cosineLR(2, test.t, test.steps); math.Abs(got-test.want) > 1e-15 {
			t.Errorf("test %d: cosine lr at %d of %d: got %v want %v", i, test.t, test.steps, got, test.want)
		}
	}
}

// TestSampleValidation checks CoOp's validation split: min(k, 4) per class, disjoint
// from the shots, deterministic, and independent of the shots' draw.
func TestSampleValidation(t *testing.T) {
	t.Parallel()
	labels := make([]int, 300)
	for i := range labels {
		labels[i] = (i * 7) % 5 // 60 per class, interleaved
	}
	for i, test := range []struct {
		k    int
		seed uint64
	}{{1, 0}, {2, 1}, {4, 2}, {8, 3}, {16, 3}} {
		shots, err := SampleShots(labels, 5, test.k, test.seed)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		val, err := SampleValidation(labels, 5, shots, ValidationShots(test.k), test.seed)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		want := min(test.k, 4)
		count := make([]int, 5)
		for _, v := range val {
			count[labels[v]]++
			if slices.Contains(shots, v) {
				t.Errorf("test %d: validation example %d is also a shot", i, v)
			}
		}
		for c, n := range count {
			if n != want {
				t.Errorf("test %d: class %d: got %d validation examples want %d", i, c, n, want)
			}
		}
		if !slices.IsSorted(val) {
			t.Errorf("test %d: validation indices not sorted: %v", i, val)
		}
		again, _ := SampleValidation(labels, 5, shots, want, test.seed)
		other, _ := SampleValidation(labels, 5, shots, want, test.seed+1)
		if !slices.Equal(val, again) || slices.Equal(val, other) {
			t.Errorf("test %d: got %v, %v again and %v for the next seed; want equal, equal, different", i, val, again, other)
		}
	}
	shots, _ := SampleShots(labels, 5, 58, 1)
	if _, err := SampleValidation(labels, 5, shots, 4, 1); !errors.Is(err, ErrTooFewExamples) || !strings.Contains(err.Error(), "2 examples besides its shots") {
		t.Errorf("58 shots of 60 and 4 validation: got %v want ErrTooFewExamples naming 2 examples left", err)
	}
}

// TestRunMethods runs every registered method through Run's k-shot protocol: the
// training and validation sizes, the test logits' shape, and accuracies above chance.
func TestRunMethods(t *testing.T) {
	t.Parallel()
	all, text := clipLike(40, 10, 64, 60, 6*math.Sqrt(64.0/512), 1.0)
	var trIdx, teIdx []int
	for i := range all.Y {
		if i%3 == 2 {
			teIdx = append(teIdx, i)
		} else {
			trIdx = append(trIdx, i)
		}
	}
	train, test := all.Subset(trIdx), all.Subset(teIdx)
	names := MethodNames()
	if want := []string{"logreg", "zs-lp", "clap", "lp++", "tip-adapter", "tip-adapter-f"}; !slices.Equal(names, want) {
		t.Fatalf("got methods %v want %v", names, want)
	}
	for _, k := range []int{1, 4, 8} {
		for _, name := range names {
			m, err := NewMethod(name)
			if err != nil {
				t.Fatal(err)
			}
			if lr, ok := m.(*LogReg); ok {
				lr.Sweep, lr.Config.Threads = true, 2
			}
			o, err := Run(train, test, 10, Protocol{Method: m, Shots: k, Seed: 2, Text: text})
			if err != nil {
				t.Fatalf("%s, k=%d: %v", name, k, err)
			}
			wantVal := 10 * min(k, 4)
			if name == "zs-lp" || name == "clap" {
				wantVal = 0
			}
			if o.Method != name || o.Train != 10*k || o.Val != wantVal || len(o.Scores) != test.N*10 {
				t.Errorf("%s, k=%d: got method %q, %d training, %d validation, %d scores want %q, %d, %d, %d",
					name, k, o.Method, o.Train, o.Val, len(o.Scores), name, 10*k, wantVal, test.N*10)
			}
			if a := o.Metrics.Top1; !(a > 0.2) {
				t.Errorf("%s, k=%d: got accuracy %v want well above chance (0.1)", name, k, a)
			}
		}
	}
	if _, err := NewMethod("coop"); err == nil || !strings.Contains(err.Error(), "logreg, zs-lp, clap, lp++, tip-adapter, tip-adapter-f") {
		t.Errorf("unknown method: got %v want an error listing the methods", err)
	}
}

func TestFewShotErrors(t *testing.T) {
	t.Parallel()
	p, te := fewShotProblem(t, 9, 2, 8)
	noText := p
	noText.Text = nil
	short := p
	short.Text = p.Text[:8*9]
	zeroRow := p
	zeroRow.Text = slices.Clone(p.Text)
	clear(zeroRow.Text[16:24])
	badScale := p
	badScale.LogitScale = math.NaN()
	noVal := p
	noVal.Val = Dataset{}
	for i, test := range []struct {
		m    Method
		p    Problem
		want string
	}{
		{&ZSLP{}, noText, "0 values; want 10 classes x 8 dimensions"},
		{&LPPlusPlus{}, short, "72 values"},
		{&CLAP{}, zeroRow, "class embedding 2 has squared norm 0"},
		{&TipAdapter{}, badScale, "logit scale NaN"},
		{&TipAdapter{Alpha: 1}, p, "fix both"},
		{&TipAdapter{}, noVal, "needs a validation set"},
		{&TipAdapter{Grid: TipGrid{BetaMax: 0.05}}, p, "bad Tip-Adapter grid"},
		{&ZSLP{LR: -1}, p, "learning rate -1"},
		{&LPPlusPlus{AlphaEvery: -1}, p, "blending step every -1"},
		{&TipAdapterF{Epochs: -3}, p, "-3 epochs"},
	} {
		_, err := test.m.Fit(test.p)
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.HasPrefix(err.Error(), "probes: ") {
			t.Errorf("test %d (%s): got error %v want one containing %q", i, test.m.Name(), err, test.want)
		}
	}
	train := p.Train
	if _, err := Run(train, te, 10, Protocol{Method: &CLAP{}, Text: p.Text}); err == nil || !strings.Contains(err.Error(), "clap is a few-shot method") {
		t.Errorf("clap on the full set: got %v", err)
	}
	if _, err := Run(train, te, 10, Protocol{Method: &LPPlusPlus{}, Shots: 2, Text: p.Text}); !errors.Is(err, ErrTooFewExamples) {
		t.Errorf("2 shots and 2 validation examples from 2 per class: got %v want ErrTooFewExamples", err)
	}
}
