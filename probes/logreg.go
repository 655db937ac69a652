package probes

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"gonum.org/v1/gonum/blas"
)

// Defaults used where a Config field is zero.
const (
	// DefaultC is scikit-learn's default inverse regularisation strength.
	DefaultC = 1.0
	// DefaultMaxIter is the CLIP paper's iteration budget (and a common sklearn setting).
	DefaultMaxIter = 1000
	// DefaultTol is scikit-learn's tol, passed to scipy as gtol.
	DefaultTol = 1e-4
	// DefaultMemory is scipy L-BFGS-B's maxcor.
	DefaultMemory = 10
)

// Config controls one fit. The zero value fits at C = 1 with scikit-learn's settings
// on all cores.
type Config struct {
	// C is the inverse L2 strength: loss = C * sum CE + ||W||^2/2. Zero means DefaultC.
	C float64
	// MaxIter bounds L-BFGS iterations. Zero means DefaultMaxIter.
	MaxIter int
	// Tol stops the fit once every gradient component of loss/C is at most Tol in
	// absolute value. Zero means DefaultTol.
	Tol float64
	// RelTol also stops the fit once an iteration lowers the loss by at most RelTol
	// relative to it (scipy's factr*eps test). Zero means scipy's 1e7*eps; negative
	// disables the test, so that only Tol ends a fit before MaxIter.
	RelTol float64
	// Memory is the number of L-BFGS correction pairs. Zero means DefaultMemory.
	Memory int
	// Threads is the number of goroutines sharing each loss evaluation. Zero means
	// runtime.GOMAXPROCS(0). Results are bit-identical for equal Threads.
	Threads int
	// Progress, if set, is called after every iteration.
	Progress func(Progress)
}

func (c Config) withDefaults() Config {
	if c.C == 0 {
		c.C = DefaultC
	}
	if c.MaxIter == 0 {
		c.MaxIter = DefaultMaxIter
	}
	if c.Tol == 0 {
		c.Tol = DefaultTol
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.RelTol == 0 {
		c.RelTol = scipyRelFactor
	}
	if c.Threads == 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	return c
}

func (c Config) check() error {
	switch {
	case !(c.C > 0) || math.IsInf(c.C, 0):
		return fmt.Errorf("probes: C = %v; need a positive finite value", c.C)
	case c.MaxIter < 0:
		return fmt.Errorf("probes: MaxIter = %d; need >= 0", c.MaxIter)
	case !(c.Tol >= 0):
		return fmt.Errorf("probes: Tol = %v; need >= 0", c.Tol)
	case c.Memory < 1:
		return fmt.Errorf("probes: Memory = %d; need >= 1", c.Memory)
	case c.Threads < 1:
		return fmt.Errorf("probes: Threads = %d; need >= 1", c.Threads)
	}
	return nil
}

// Model is a fitted multinomial logistic regression.
type Model struct {
	// Classes is K, Dim is D.
	Classes, Dim int
	// W holds the weights, [K, D] row-major; B the intercepts, [K].
	W, B []float64
	// C is the inverse L2 strength the model was fitted with.
	C float64
	// Iterations and Evaluations count L-BFGS iterations and loss evaluations.
	Iterations, Evaluations int
	// Loss is C * sum CE + ||W||^2/2 at the solution, GradMax the largest gradient
	// component of Loss/C there.
	Loss, GradMax float64
	// Converged is false when the fit stopped at MaxIter or on a failed line search;
	// Stop says which rule ended it.
	Converged bool
	Stop      string
	// Elapsed is the wall time of the fit.
	Elapsed time.Duration
}

// Fit fits a probe on d with numClasses classes. warm, if not nil, is the starting
// point (a model from a neighbouring C in a sweep); it must have the same shape.
func Fit(d Dataset, numClasses int, cfg Config, warm *Model) (*Model, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := d.Check(numClasses); err != nil {
		return nil, err
	}
	k, dim := numClasses, d.D
	theta := make([]float64, k*dim+k) // [W (K*D), b (K)]
	if warm != nil {
		if warm.Classes != k || warm.Dim != dim || len(warm.W) != k*dim || len(warm.B) != k {
			return nil, fmt.Errorf("probes: warm start has %d classes of dimension %d; data has %d of %d", warm.Classes, warm.Dim, k, dim)
		}
		copy(theta, warm.W)
		copy(theta[k*dim:], warm.B)
	}
	start := time.Now()
	obj := newObjective(d, k, 1/cfg.C, cfg.Threads)
	restore := singleThreadedBLAS()
	r := minimize(obj.eval, theta, lbfgsSettings{
		maxIter: cfg.MaxIter, memory: cfg.Memory, gtol: cfg.Tol, ftol: cfg.RelTol, progress: cfg.Progress,
		refine: func() bool {
			was := obj.precise
			obj.precise = true
			return !was
		},
	})
	restore()
	if math.IsNaN(r.f) || math.IsInf(r.f, 0) {
		return nil, fmt.Errorf("probes: loss is %v (non-finite features?)", r.f)
	}
	return &Model{
		Classes: k, Dim: dim,
		W: theta[: k*dim : k*dim], B: theta[k*dim:],
		C:          cfg.C,
		Iterations: r.iters, Evaluations: r.evals,
		Loss: r.f * cfg.C, GradMax: r.gradMax,
		Converged: r.converged, Stop: r.reason,
		Elapsed: time.Since(start),
	}, nil
}

// Scores returns the logits W x + b of the n rows of x, [n, K] row-major.
func (m *Model) Scores(x []float32, n int) ([]float32, error) {
	if n < 0 || len(x) != n*m.Dim {
		return nil, fmt.Errorf("probes: %d feature values for %d examples of dimension %d", len(x), n, m.Dim)
	}
	out := make([]float32, n*m.Classes)
	if n == 0 {
		return out, nil
	}
	w := make([]float32, len(m.W))
	for i, v := range m.W {
		w[i] = float32(v)
	}
	sgemm.Sgemm(blas.NoTrans, blas.Trans, n, m.Classes, m.Dim, 1, x, m.Dim, w, m.Dim, 0, out, m.Classes)
	for i := 0; i < n; i++ {
		row := out[i*m.Classes : (i+1)*m.Classes]
		for c := range row {
			row[c] += float32(m.B[c])
		}
	}
	return out, nil
}

// Predict returns the most likely class of each of the n rows of x.
func (m *Model) Predict(x []float32, n int) ([]int, error) {
	s, err := m.Scores(x, n)
	if err != nil {
		return nil, err
	}
	return argmaxRows(s, n, m.Classes), nil
}

func argmaxRows(s []float32, n, k int) []int {
	p := make([]int, n)
	for i := range p {
		row := s[i*k : (i+1)*k]
		best := 0
		for c, v := range row {
			if v > row[best] {
				best = c
			}
		}
		p[i] = best
	}
	return p
}

// objective evaluates sum CE + ||W||^2/(2C) and its gradient (the scaling scipy sees
// in scikit-learn). Rows are cut into blocks of bs; goroutine t handles a fixed
// contiguous range of blocks, so sums are added in the same order on every call.
//
// Logits and gradients are float32 GEMMs, whose rounding (about 1e-7 relative) makes
// the loss flat to the line search once the gradient is small; the fit then switches
// to precise mode, float64 GEMMs on blocks widened on the fly, for the last steps.
//
// With few classes, where built (cgo, OpenBLAS, amd64) and the CPU has AVX2 and FMA,
// the float32 mode runs the fused kernel of fused_cgo.go instead of the two GEMMs.
type objective struct {
	d       Dataset
	k, bs   int
	invC    float64
	w32     []float32
	precise bool
	fused   bool      // float32 mode uses fusedBlock
	theta   []float64 // the point being evaluated, read by the workers
	workers []worker
}

// worker holds one goroutine's buffers and partial sums.
type worker struct {
	lo, hi int       // block range
	z      []float32 // [bs, K] logits, then residuals softmax - onehot
	x64    []float64 // [bs, D] block widened to float64 (precise mode)
	z64    []float64 // [bs, K] z in precise mode
	e      []float64 // [K] exponentials of one row
	t      []float64 // [bs*K rounded up to 4] fused kernel's logits and exponentials
	g32    []float32 // [K, D] gradient of the blocks since the last fold
	g      []float64 // [K*D + K] gradient partial sum
	ce     float64
}

// foldBlocks is how many blocks are summed in float32 before folding into float64:
// float32 sums over a few thousand rows lose about 1e-6 relative, well under the
// tolerance, while folding costs one K*D add per fold.
const foldBlocks = 32

// maxFusedClasses is the most classes for which the fused kernel replaces the GEMMs:
// it streams all of W once per pair of rows, which stays in L1/L2 only while W is small.
const maxFusedClasses = 32

func newObjective(d Dataset, k int, invC float64, threads int) *objective {
	// Blocks of about 256 KiB of features stay in L2 between the two GEMMs.
	bs := max(16, min(256, (256<<10)/(4*d.D)))
	nb := (d.N + bs - 1) / bs
	threads = max(1, min(threads, nb))
	o := &objective{d: d, k: k, bs: bs, invC: invC, w32: make([]float32, k*d.D), workers: make([]worker, threads),
		fused: fusedOK && k <= maxFusedClasses}
	for t := range o.workers {
		o.workers[t] = worker{
			lo: t * nb / threads, hi: (t + 1) * nb / threads,
			z: make([]float32, bs*k), e: make([]float64, k), g32: make([]float32, k*d.D), g: make([]float64, k*d.D+k),
			t: make([]float64, (bs*k+3)&^3),
		}
	}
	return o
}

func (o *objective) eval(theta, grad []float64) float64 {
	k, dim := o.k, o.d.D
	for i := range o.w32 {
		o.w32[i] = float32(theta[i])
	}
	bias := theta[k*dim:]
	o.theta = theta
	var wg sync.WaitGroup
	for t := range o.workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			o.blocks(w, bias)
		}(&o.workers[t])
	}
	wg.Wait()
	for i := range grad {
		grad[i] = 0
	}
	var ce float64
	for t := range o.workers {
		ce += o.workers[t].ce
		axpy(1, o.workers[t].g, grad)
	}
	var ww float64
	for i, v := range theta[:k*dim] {
		ww += v * v
		grad[i] += o.invC * v
	}
	return ce + 0.5*o.invC*ww
}

// blocks accumulates the cross-entropy and its gradient over w's blocks.
func (o *objective) blocks(w *worker, bias []float64) {
	k, dim, x, y := o.k, o.d.D, o.d.X, o.d.Y
	for i := range w.g {
		w.g[i] = 0
	}
	w.ce = 0
	gb := w.g[k*dim:]
	if o.precise && w.x64 == nil {
		w.x64, w.z64 = make([]float64, o.bs*dim), make([]float64, o.bs*k)
	}
	pending := 0
	for b := w.lo; b < w.hi; b++ {
		r0 := b * o.bs
		n := min(o.bs, o.d.N-r0)
		xb := x[r0*dim : (r0+n)*dim]
		if o.precise {
			for i, v := range xb {
				w.x64[i] = float64(v)
			}
			// z [n,K] = xb [n,D] . W^T, all in float64
			dgemm.Dgemm(blas.NoTrans, blas.Trans, n, k, dim, 1, w.x64, dim, o.theta, dim, 0, w.z64, k)
			for i := 0; i < n; i++ {
				row := w.z64[i*k : (i+1)*k]
				w.ce += softmaxResidual(row, bias, y[r0+i], row, gb)
			}
			dgemm.Dgemm(blas.Trans, blas.NoTrans, k, dim, n, 1, w.z64, k, w.x64, dim, 1, w.g, dim)
			continue
		}
		if o.fused {
			w.ce += fusedBlock(xb, n, dim, k, o.w32, bias, y[r0:r0+n], w.t, w.z, w.g32, pending > 0, gb)
		} else {
			o.gemmBlock(w, xb, n, y[r0:r0+n], bias, gb, pending > 0)
		}
		if pending++; pending == foldBlocks || b == w.hi-1 {
			for i, v := range w.g32 {
				w.g[i] += float64(v)
			}
			pending = 0
		}
	}
}

// gemmBlock is the float32 mode's block without the fused kernel: logits by one GEMM,
// the residual in float64, and the gradient stored (add == false) or added to w.g32
// by a second GEMM.
func (o *objective) gemmBlock(w *worker, xb []float32, n int, y []int, bias, gb []float64, add bool) {
	k, dim := o.k, o.d.D
	// z [n,K] = xb [n,D] . W^T
	sgemm.Sgemm(blas.NoTrans, blas.Trans, n, k, dim, 1, xb, dim, o.w32, dim, 0, w.z, k)
	for i := 0; i < n; i++ {
		row := w.z[i*k : (i+1)*k]
		for c, v := range row {
			w.e[c] = float64(v)
		}
		w.ce += softmaxResidual(w.e, bias, y[i], w.e, gb)
		for c, v := range w.e {
			row[c] = float32(v)
		}
	}
	// g32 [K,D] (+)= z^T [K,n] . xb [n,D]
	beta := float32(0)
	if add {
		beta = 1
	}
	sgemm.Sgemm(blas.Trans, blas.NoTrans, k, dim, n, 1, w.z, k, xb, dim, beta, w.g32, dim)
}

// softmaxResidual takes the logits z (without bias) of an example of class y and
// returns its cross-entropy, writing softmax - onehot to r (which may alias z) and
// adding it to the intercept gradient gb.
func softmaxResidual(z, bias []float64, y int, r, gb []float64) float64 {
	m := math.Inf(-1)
	for c, v := range z {
		m = math.Max(m, v+bias[c])
	}
	zy := z[y] + bias[y]
	var sum float64
	for c, v := range z {
		e := math.Exp(v + bias[c] - m)
		r[c] = e
		sum += e
	}
	inv := 1 / sum
	for c, e := range r {
		p := e * inv
		if c == y {
			p--
		}
		r[c] = p
		gb[c] += p
	}
	return m + math.Log(sum) - zy
}
