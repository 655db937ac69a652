package probes

import (
	"math"
	"time"
)

// This file is a plain L-BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed.,
// Algorithms 7.4, 3.5 and 3.6) in float64, written here rather than taken from
// gonum/optimize so that it stops exactly where scipy's L-BFGS-B (which scikit-learn's
// lbfgs solver calls) stops: on the largest absolute gradient component (pgtol) or on
// a relative decrease of the objective below factr*eps, with the same memory (10).

// Line-search constants: sufficient decrease c1 and curvature c2 of the strong Wolfe
// conditions, as in scipy's dcsrch (ftol=1e-3 there is looser; 1e-4 is the textbook value).
const (
	wolfeC1        = 1e-4
	wolfeC2        = 0.9
	maxLineEvals   = 20
	scipyRelFactor = 1e7 * 2.220446049250313e-16 // scipy's default factr times machine epsilon
)

// objectiveFunc evaluates the objective at x, writing the gradient to grad.
type objectiveFunc func(x, grad []float64) float64

// lbfgsResult says how a minimisation ended.
type lbfgsResult struct {
	iters, evals int
	f, gradMax   float64
	converged    bool
	reason       string
}

type lbfgsSettings struct {
	maxIter, memory int
	gtol, ftol      float64
	progress        func(Progress)
	// refine, if set, makes the objective more precise; it reports whether it did
	// (false once already precise). It is called when a line search fails.
	refine func() bool
}

// minimize runs L-BFGS from x, which it overwrites with the solution.
func minimize(fn objectiveFunc, x []float64, s lbfgsSettings) lbfgsResult {
	start := time.Now()
	n := len(x)
	g := make([]float64, n)
	xNew := make([]float64, n)
	gNew := make([]float64, n)
	p := make([]float64, n)
	alpha := make([]float64, s.memory)
	type pair struct {
		s, y []float64
		rho  float64
	}
	var hist []pair // oldest first
	spare := make([]pair, 0, s.memory)

	res := lbfgsResult{}
	f := fn(x, g)
	res.evals = 1
	res.f, res.gradMax = f, maxAbs(g)
	if res.gradMax <= s.gtol {
		res.converged, res.reason = true, "gradient below tolerance"
		return res
	}
	for res.iters < s.maxIter {
		// Two-loop recursion: p = -H g, with H0 = gamma I (gamma = s'y / y'y). A
		// diagonal H0 from the features' second moments was tried and took more
		// iterations on Fashion-MNIST pixels (correlated features), so it is not used.
		copy(p, g)
		for i := len(hist) - 1; i >= 0; i-- {
			alpha[i] = hist[i].rho * dot(hist[i].s, p)
			axpy(-alpha[i], hist[i].y, p)
		}
		a0 := 1.0
		if k := len(hist); k > 0 {
			last := hist[k-1]
			scale(dot(last.s, last.y)/dot(last.y, last.y), p)
		} else {
			// First step (or after a reset): steepest descent of length one, as scipy does.
			a0 = 1 / math.Sqrt(dot(g, g))
		}
		for i := range hist {
			b := hist[i].rho * dot(hist[i].y, p)
			axpy(alpha[i]-b, hist[i].s, p)
		}
		scale(-1, p)
		d0 := dot(g, p)
		if d0 >= 0 { // not a descent direction (numerical trouble): restart from -g
			hist = hist[:0]
			copy(p, g)
			scale(-1, p)
			d0 = -dot(g, g)
			a0 = 1 / math.Sqrt(-d0)
		}

		phi := func(a float64) (float64, float64) {
			for i := range x {
				xNew[i] = x[i] + a*p[i]
			}
			fa := fn(xNew, gNew)
			res.evals++
			return fa, dot(gNew, p)
		}
		_, fNew, ok := wolfeSearch(phi, f, d0, a0)
		if !ok {
			if s.refine != nil && s.refine() { // evaluate more precisely and go on
				hist = hist[:0]
				f = fn(x, g)
				res.evals++
				res.f, res.gradMax = f, maxAbs(g)
				if res.gradMax <= s.gtol {
					res.converged, res.reason = true, "gradient below tolerance"
					break
				}
				continue
			}
			if len(hist) > 0 { // drop the curvature memory and try steepest descent once
				hist = hist[:0]
				continue
			}
			res.reason = "line search failed (objective flat to rounding)"
			break
		}
		res.iters++

		// Store s = xNew - x, y = gNew - g, reusing the oldest pair's buffers.
		var pr pair
		if len(hist) == s.memory {
			pr = hist[0]
			hist = append(hist[:0], hist[1:]...)
		} else if len(spare) > 0 {
			pr, spare = spare[len(spare)-1], spare[:len(spare)-1]
		} else {
			pr = pair{s: make([]float64, n), y: make([]float64, n)}
		}
		for i := range x {
			pr.s[i] = xNew[i] - x[i]
			pr.y[i] = gNew[i] - g[i]
		}
		if sy := dot(pr.s, pr.y); sy > 1e-10*dot(pr.y, pr.y) {
			pr.rho = 1 / sy
			hist = append(hist, pr)
		} else {
			spare = append(spare, pr) // curvature too small to be trusted: skip the update
		}
		copy(x, xNew)
		copy(g, gNew)
		fOld := f
		f = fNew
		res.f, res.gradMax = f, maxAbs(g)
		if s.progress != nil {
			s.progress(Progress{Iter: res.iters, Evals: res.evals, Loss: f, GradMax: res.gradMax, Elapsed: time.Since(start)})
		}
		if res.gradMax <= s.gtol {
			res.converged, res.reason = true, "gradient below tolerance"
			break
		}
		if (fOld-f)/math.Max(math.Max(math.Abs(fOld), math.Abs(f)), 1) <= s.ftol {
			res.converged, res.reason = true, "relative reduction below tolerance"
			break
		}
	}
	if res.reason == "" {
		res.reason = "iteration limit reached"
	}
	return res
}

// wolfeSearch finds a step satisfying the strong Wolfe conditions along a descent
// direction, starting at a1 (Nocedal & Wright Algorithm 3.5). phi returns the
// objective and directional derivative at a step; the last point phi evaluated is
// the accepted one, which lets the caller keep its point and gradient buffers.
func wolfeSearch(phi func(float64) (float64, float64), f0, d0, a1 float64) (a, f float64, ok bool) {
	aPrev, fPrev, dPrev := 0.0, f0, d0
	a = a1
	for i := 0; i < maxLineEvals; i++ {
		fa, da := phi(a)
		if math.IsNaN(fa) || math.IsInf(fa, 0) { // overflow: back off
			a = aPrev + (a-aPrev)/10
			continue
		}
		if fa > f0+wolfeC1*a*d0 || (i > 0 && fa >= fPrev) {
			return zoom(phi, f0, d0, aPrev, fPrev, dPrev, a, fa, da, maxLineEvals-i-1)
		}
		if math.Abs(da) <= -wolfeC2*d0 {
			return a, fa, true
		}
		if da >= 0 {
			return zoom(phi, f0, d0, a, fa, da, aPrev, fPrev, dPrev, maxLineEvals-i-1)
		}
		aPrev, fPrev, dPrev = a, fa, da
		a *= 4
	}
	return 0, f0, false
}

// zoom narrows a bracket [lo, hi] known to contain a strong Wolfe step
// (Nocedal & Wright Algorithm 3.6), choosing trial steps by cubic interpolation.
func zoom(phi func(float64) (float64, float64), f0, d0, lo, fLo, dLo, hi, fHi, dHi float64, evals int) (float64, float64, bool) {
	for ; evals > 0; evals-- {
		a := cubicMin(lo, fLo, dLo, hi, fHi, dHi)
		// Keep the trial away from the ends so the bracket shrinks.
		w := hi - lo
		if lim := lo + 0.1*w; (w > 0 && a < lim) || (w < 0 && a > lim) || math.IsNaN(a) {
			a = lo + 0.5*w
		}
		if lim := hi - 0.1*w; (w > 0 && a > lim) || (w < 0 && a < lim) {
			a = lo + 0.5*w
		}
		if math.Abs(w) <= 1e-12*math.Max(math.Abs(lo), math.Abs(hi)) {
			break
		}
		fa, da := phi(a)
		if fa > f0+wolfeC1*a*d0 || fa >= fLo {
			hi, fHi, dHi = a, fa, da
			continue
		}
		if math.Abs(da) <= -wolfeC2*d0 {
			return a, fa, true
		}
		if da*(hi-lo) >= 0 {
			hi, fHi, dHi = lo, fLo, dLo
		}
		lo, fLo, dLo = a, fa, da
	}
	// Out of evaluations: settle for lo, which satisfies sufficient decrease, where it
	// moved at all (re-evaluated, as the caller keeps the last point evaluated).
	if lo != 0 {
		fa, _ := phi(lo)
		return lo, fa, fa < f0
	}
	return 0, f0, false
}

// cubicMin returns the minimiser of the cubic interpolating f and its derivative at
// a and b, or NaN where it has none.
func cubicMin(a, fa, da, b, fb, db float64) float64 {
	d1 := da + db - 3*(fa-fb)/(a-b)
	disc := d1*d1 - da*db
	if disc < 0 {
		return math.NaN()
	}
	d2 := math.Copysign(math.Sqrt(disc), b-a)
	return b - (b-a)*(db+d2-d1)/(db-da+2*d2)
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpy(alpha float64, x, y []float64) {
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scale(alpha float64, x []float64) {
	for i := range x {
		x[i] *= alpha
	}
}

func maxAbs(x []float64) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(v))
	}
	return m
}
