package probes

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
)

// Dense helpers of the few-shot methods. Their problems are small (k shots of K
// classes), so everything runs in float64 on the package's dgemm, with OpenBLAS held
// at one thread (singleThreadedBLAS): its threads cost more than they save at these
// sizes, and slow the machine down when several fits run at once.

// unitRows widens x [n, d] to float64 with every row scaled to unit L2 norm (a zero
// row stays zero): CLIP compares features by cosine similarity.
func unitRows(x []float32, n, d int) []float64 {
	out := make([]float64, n*d)
	for i := 0; i < n; i++ {
		row := out[i*d : (i+1)*d]
		var ss float64
		for j, v := range x[i*d : (i+1)*d] {
			row[j] = float64(v)
			ss += row[j] * row[j]
		}
		if ss > 0 {
			scale(1/math.Sqrt(ss), row)
		}
	}
	return out
}

// mulNT sets c [m, n] = a [m, k] . b [n, k]^T + beta c.
func mulNT(m, n, k int, a, b []float64, beta float64, c []float64) {
	if m > 0 && n > 0 && k > 0 {
		dgemm.Dgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, b, k, beta, c, n)
	}
}

// mulTN sets c [m, n] = a [k, m]^T . b [k, n] + beta c.
func mulTN(m, n, k int, a, b []float64, beta float64, c []float64) {
	if m > 0 && n > 0 && k > 0 {
		dgemm.Dgemm(blas.Trans, blas.NoTrans, m, n, k, 1, a, m, b, n, beta, c, n)
	}
}

// mulNN sets c [m, n] = a [m, k] . b [k, n] + beta c.
func mulNN(m, n, k int, a, b []float64, beta float64, c []float64) {
	if m > 0 && n > 0 && k > 0 {
		dgemm.Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, beta, c, n)
	}
}

// softmax replaces row by softmax(row) and returns log(sum(exp(row))).
func softmax(row []float64) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, v)
	}
	var sum float64
	for c, v := range row {
		row[c] = math.Exp(v - m)
		sum += row[c]
	}
	for c := range row {
		row[c] /= sum
	}
	return m + math.Log(sum)
}

// meanCrossEntropy returns the mean over the n rows of the cross-entropy of
// softmax(z_i) against y_i, and overwrites z [n, K] with its gradient
// (softmax(z_i) - onehot(y_i)) / n.
func meanCrossEntropy(z []float64, n, k int, y []int) float64 {
	var ce float64
	for i := 0; i < n; i++ {
		row := z[i*k : (i+1)*k]
		zy := row[y[i]]
		ce += softmax(row) - zy
		row[y[i]]--
		scale(1/float64(n), row)
	}
	return ce / float64(n)
}

// accuracyOf returns the top-1 accuracy of scores z [n, K] against y, ties going to
// the lower class as in Evaluate.
func accuracyOf(z []float64, n, k int, y []int) float64 {
	return float64(correct(z, n, k, y)) / float64(n)
}

// correct counts the rows of z [n, K] whose first largest score is at y_i.
func correct(z []float64, n, k int, y []int) int {
	hit := 0
	for i := 0; i < n; i++ {
		row := z[i*k : (i+1)*k]
		best := 0
		for c, v := range row {
			if v > row[best] {
				best = c
			}
		}
		if best == y[i] {
			hit++
		}
	}
	return hit
}

// scoreBlock is how many test rows a classifier scores at once, bounding the float64
// copies (and Tip-Adapter's [rows, cache] affinities) whatever the test set's size.
const scoreBlock = 512

// scoreRows calls block on the unit-normalised rows of x [n, d] scoreBlock at a time;
// block writes the [rows, k] scores of its rows to out. It returns all scores, [n, k].
func scoreRows(x []float32, n, d, k int, block func(f []float64, rows int, out []float64)) ([]float32, error) {
	if n < 0 || len(x) != n*d {
		return nil, fmt.Errorf("probes: %d feature values for %d examples of dimension %d", len(x), n, d)
	}
	defer singleThreadedBLAS()()
	out := make([]float32, n*k)
	z := make([]float64, min(n, scoreBlock)*k)
	for r0 := 0; r0 < n; r0 += scoreBlock {
		rows := min(scoreBlock, n-r0)
		f := unitRows(x[r0*d:(r0+rows)*d], rows, d)
		block(f, rows, z[:rows*k])
		for i, v := range z[:rows*k] {
			out[r0*k+i] = float32(v)
		}
	}
	return out, nil
}

// linearHead scores unit-normalised features as f W^T + b.
type linearHead struct {
	k, d int
	w    []float64 // [K, D]
	b    []float64 // [K], or nil for no intercept
}

// Scores implements Classifier.
func (h *linearHead) Scores(x []float32, n int) ([]float32, error) {
	return scoreRows(x, n, h.d, h.k, func(f []float64, rows int, z []float64) {
		h.logits(f, rows, z)
	})
}

// logits writes f [rows, D] . W^T + b to z [rows, K].
func (h *linearHead) logits(f []float64, rows int, z []float64) {
	mulNT(rows, h.k, h.d, f, h.w, 0, z)
	if h.b != nil {
		for i := 0; i < rows; i++ {
			axpy(1, h.b, z[i*h.k:(i+1)*h.k])
		}
	}
}

// momentumSGD is PyTorch's SGD with momentum mu and no dampening, Nesterov or weight
// decay: buf = mu buf + g, x -= lr buf (buf starts at zero, so the first step is g).
type momentumSGD struct {
	mu  float64
	buf []float64
}

func (o *momentumSGD) step(x, g []float64, lr float64) {
	if o.buf == nil {
		o.buf = make([]float64, len(x))
	}
	for i, v := range g {
		o.buf[i] = o.mu*o.buf[i] + v
		x[i] -= lr * o.buf[i]
	}
}

// adamW is PyTorch's AdamW (decoupled weight decay wd, bias-corrected moments).
type adamW struct {
	b1, b2, eps, wd float64
	m, v            []float64
	t               int
}

func (o *adamW) step(x, g []float64, lr float64) {
	if o.m == nil {
		o.m, o.v = make([]float64, len(x)), make([]float64, len(x))
	}
	o.t++
	c1 := 1 - math.Pow(o.b1, float64(o.t))
	c2 := 1 - math.Pow(o.b2, float64(o.t))
	for i, gi := range g {
		x[i] *= 1 - lr*o.wd
		o.m[i] = o.b1*o.m[i] + (1-o.b1)*gi
		o.v[i] = o.b2*o.v[i] + (1-o.b2)*gi*gi
		x[i] -= lr * (o.m[i] / c1) / (math.Sqrt(o.v[i]/c2) + o.eps)
	}
}

// cosineLR is the half-cosine decay from peak at step t of T (PyTorch's
// CosineAnnealingLR with eta_min 0): peak (1 + cos(pi t / T)) / 2.
func cosineLR(peak float64, t, steps int) float64 {
	return peak * (1 + math.Cos(math.Pi*float64(t)/float64(steps))) / 2
}
