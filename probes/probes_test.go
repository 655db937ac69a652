package probes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// clusters draws n examples per class around well-separated centres in d dimensions.
func clusters(seed uint64, k, n, d int, spread float64) Dataset {
	rng := rand.New(rand.NewPCG(seed, 1))
	centres := make([]float64, k*d)
	for i := range centres {
		centres[i] = 4 * rng.NormFloat64()
	}
	ds := Dataset{N: k * n, D: d}
	for c := 0; c < k; c++ {
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				ds.X = append(ds.X, float32(centres[c*d+j]+spread*rng.NormFloat64()))
			}
			ds.Y = append(ds.Y, c)
		}
	}
	return ds
}

func TestFitSeparable(t *testing.T) {
	t.Parallel()
	for i, test := range []struct {
		name string
		d    Dataset
		k    int
		c    float64
	}{
		{"two points on a line", Dataset{X: []float32{-1, 1}, Y: []int{0, 1}, N: 2, D: 1}, 2, 10},
		{"xor-free 2-D corners", Dataset{X: []float32{0, 0, 0, 1, 5, 5, 5, 6}, Y: []int{0, 0, 1, 1}, N: 4, D: 2}, 2, 1},
		{"3 clusters in 2-D", clusters(1, 3, 20, 2, 0.3), 3, 1},
		{"10 clusters in 8-D", clusters(2, 10, 15, 8, 0.5), 10, 100},
		{"labels with a missing class", Dataset{X: []float32{-2, -1, 1, 2}, Y: []int{0, 0, 2, 2}, N: 4, D: 1}, 3, 10},
	} {
		m, err := Fit(test.d, test.k, Config{C: test.c, Threads: 2}, nil)
		if err != nil {
			t.Fatalf("test %d (%s): %v", i, test.name, err)
		}
		pred, err := m.Predict(test.d.X, test.d.N)
		if err != nil {
			t.Fatalf("test %d (%s): %v", i, test.name, err)
		}
		if got := Accuracy(pred, test.d.Y); got != 1 {
			t.Errorf("test %d (%s): training accuracy got %v want 1 (pred %v)", i, test.name, got, pred)
		}
		if !m.Converged {
			t.Errorf("test %d (%s): not converged: %s after %d iterations", i, test.name, m.Stop, m.Iterations)
		}
	}
}

// TestGradient compares the analytic gradient with central differences.
func TestGradient(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	n, d, k := 37, 5, 4
	ds := Dataset{X: make([]float32, n*d), Y: make([]int, n), N: n, D: d}
	for i := range ds.X {
		ds.X[i] = float32(rng.NormFloat64())
	}
	for i := range ds.Y {
		ds.Y[i] = rng.IntN(k)
	}
	theta := make([]float64, k*d+k)
	for i := range theta {
		// float32-exact values, so the float32 weights the GEMM sees are theta itself.
		theta[i] = float64(float32(0.5 * rng.NormFloat64()))
	}
	for _, threads := range []int{1, 3} {
		o := newObjective(ds, k, 1/0.7, threads)
		g := make([]float64, len(theta))
		o.eval(theta, g)
		scratch := make([]float64, len(theta))
		for i := range theta {
			const h = 1.0 / 256 // exact in float32 and float64
			tp := slices.Clone(theta)
			tp[i] += h
			fp := o.eval(tp, scratch)
			tp[i] -= 2 * h
			fm := o.eval(tp, scratch)
			fd := (fp - fm) / (2 * h)
			if math.Abs(fd-g[i]) > 2e-3*math.Max(1, math.Abs(g[i])) {
				t.Errorf("threads %d, parameter %d: got gradient %v want %v (finite difference)", threads, i, g[i], fd)
			}
		}
	}
}

// TestStationarity checks the optimality conditions of the converged fit, computed
// independently in float64: W = C * sum_i (y_i - p_i) x_i^T and sum_i (y_i - p_i) = 0,
// which also imply that the class weights sum to zero.
func TestStationarity(t *testing.T) {
	t.Parallel()
	ds := clusters(5, 3, 30, 4, 3) // overlapping, so the optimum is finite
	const c = 0.5
	m, err := Fit(ds, 3, Config{C: c, Tol: 1e-6, RelTol: -1, Threads: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, d := m.Classes, m.Dim
	resid := make([]float64, k*d)
	residB := make([]float64, k)
	for i := 0; i < ds.N; i++ {
		x := ds.X[i*d : (i+1)*d]
		z := make([]float64, k)
		mx := math.Inf(-1)
		for cl := range z {
			z[cl] = m.B[cl]
			for j, v := range x {
				z[cl] += m.W[cl*d+j] * float64(v)
			}
			mx = math.Max(mx, z[cl])
		}
		var s float64
		for cl := range z {
			z[cl] = math.Exp(z[cl] - mx)
			s += z[cl]
		}
		for cl := range z {
			r := -z[cl] / s
			if cl == ds.Y[i] {
				r++
			}
			residB[cl] += r
			for j, v := range x {
				resid[cl*d+j] += r * float64(v)
			}
		}
	}
	var wmax float64
	for i, w := range m.W {
		wmax = math.Max(wmax, math.Abs(w))
		if diff := math.Abs(w - c*resid[i]); diff > 1e-6 {
			t.Errorf("weight %d: got %v want C*residual %v", i, w, c*resid[i])
		}
	}
	for cl, r := range residB {
		if math.Abs(r) > 1e-6 {
			t.Errorf("class %d: intercept residual got %v want 0", cl, r)
		}
	}
	for j := 0; j < d; j++ {
		var s float64
		for cl := 0; cl < k; cl++ {
			s += m.W[cl*d+j]
		}
		if math.Abs(s) > 2e-6 {
			t.Errorf("feature %d: class weights sum to %v, want 0", j, s)
		}
	}
	if wmax < 0.05 {
		t.Fatalf("weights are all near zero (max %v): the check would be vacuous", wmax)
	}
	if !m.Converged || m.GradMax > 1e-6 {
		t.Errorf("got converged %v, max gradient %v; want true, <= 1e-6", m.Converged, m.GradMax)
	}
}

func TestDeterministicAndWarmStart(t *testing.T) {
	t.Parallel()
	ds := clusters(7, 4, 50, 6, 2)
	a, err := Fit(ds, 4, Config{C: 0.3, Threads: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Fit(ds, 4, Config{C: 0.3, Threads: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.W, b.W) || !slices.Equal(a.B, b.B) {
		t.Fatalf("two fits with equal config differ")
	}
	// Starting at the solution, the warm fit stops within a few iterations. Not at
	// once: a fit that stopped on the relative decrease sits where float32 rounding
	// makes the loss flat, and a fresh L-BFGS (no history) spends a few steps in that
	// noise; over 40 seeds of this problem both float32 kernels (GEMMs and fused)
	// need 0 to 17 iterations, 2 to 4 typically, against about 50 cold.
	w, err := Fit(ds, 4, Config{C: 0.3, Threads: 3}, a)
	if err != nil {
		t.Fatal(err)
	}
	if w.Iterations > 5 || w.Iterations > a.Iterations/10 {
		t.Errorf("warm start from the optimum: got %d iterations want <= 5 and <= a tenth of the cold fit's %d", w.Iterations, a.Iterations)
	}
	if w.Loss > a.Loss*(1+1e-7) {
		t.Errorf("warm start from the optimum: loss %v, cold fit %v", w.Loss, a.Loss)
	}
}

func TestFitErrors(t *testing.T) {
	t.Parallel()
	good := Dataset{X: []float32{0, 1}, Y: []int{0, 1}, N: 2, D: 1}
	for i, test := range []struct {
		d    Dataset
		k    int
		cfg  Config
		warm *Model
		want string
	}{
		{good, 2, Config{C: -1}, nil, "C = -1"},
		{good, 2, Config{C: math.Inf(1)}, nil, "C = +Inf"},
		{good, 2, Config{MaxIter: -1}, nil, "MaxIter"},
		{good, 2, Config{Threads: -2}, nil, "Threads"},
		{good, 1, Config{}, nil, "1 classes"},
		{Dataset{X: []float32{0, 1}, Y: []int{0, 2}, N: 2, D: 1}, 2, Config{}, nil, "label 2 of example 1"},
		{Dataset{X: []float32{0}, Y: []int{0, 1}, N: 2, D: 1}, 2, Config{}, nil, "1 feature values"},
		{Dataset{X: []float32{0, 1}, Y: []int{0}, N: 2, D: 1}, 2, Config{}, nil, "1 labels"},
		{Dataset{}, 2, Config{}, nil, "empty dataset"},
		{good, 2, Config{}, &Model{Classes: 3, Dim: 1}, "warm start"},
		{Dataset{X: []float32{float32(math.NaN()), 1}, Y: []int{0, 1}, N: 2, D: 1}, 2, Config{}, nil, "non-finite"},
	} {
		_, err := Fit(test.d, test.k, test.cfg, test.warm)
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.HasPrefix(err.Error(), "probes: ") {
			t.Errorf("test %d: got error %v want one containing %q", i, err, test.want)
		}
	}
}

// TestSweepChoosesC checks the sweep on two classes whose means differ along a
// direction swamped by a large shared variance: a strong penalty leaves weights close
// to the mean difference (near chance), a weak one finds the discriminant. Scaling
// the features by 10 is the same problem with C scaled by 1/100 (two decades, an
// exact shift of the grid), so the sweep must choose a C 100 times smaller.
func TestSweepChoosesC(t *testing.T) {
	t.Parallel()
	make2D := func(seed uint64, n int, scale float32) Dataset {
		rng := rand.New(rand.NewPCG(seed, 9))
		ds := Dataset{N: n, D: 2}
		for i := 0; i < n; i++ {
			y := i % 2
			s := float64(2*y - 1)
			z := 10 * rng.NormFloat64()
			// mean difference along (1, 0); shared variance along (1, 1)
			ds.X = append(ds.X, scale*float32(0.5*s+z+0.1*rng.NormFloat64()), scale*float32(z+0.1*rng.NormFloat64()))
			ds.Y = append(ds.Y, y)
		}
		return ds
	}
	train, test := make2D(1, 400, 1), make2D(2, 400, 1)
	o, err := Run(train, test, 2, Protocol{Sweep: true, Fit: Config{Threads: 2}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	strong, err := Run(train, test, 2, Protocol{Fit: Config{C: 1e-6, Threads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chosen C %.3g, test acc %.3f; C=1e-6 acc %.3f", o.C, o.Metrics.Top1, strong.Metrics.Top1)
	if o.C < 1e-3 || o.Metrics.Top1 < 0.9 || o.Metrics.Top1 < strong.Metrics.Top1+0.2 {
		t.Errorf("got C %.3g acc %.3f; want C >= 1e-3 and acc >= 0.9, 0.2 above C=1e-6's %.3f", o.C, o.Metrics.Top1, strong.Metrics.Top1)
	}
	if o.Val != 80 || o.Train != 400 {
		t.Errorf("got %d validation and %d training examples want 80 (20%%) and 400 (refit on all)", o.Val, o.Train)
	}
	sw, err := Sweep(train, test, 2, SweepConfig{Fit: Config{Threads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sw.Points); n < 7 || n > 7+2*4 {
		t.Errorf("got %d sweep fits want 7 coarse + at most 8 refinements", n)
	}
	scaled, err := Run(make2D(1, 400, 10), make2D(2, 400, 10), 2, Protocol{Sweep: true, Fit: Config{Threads: 2}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := scaled.C / o.C; r < 0.01/math.Pow(10, 0.25) || r > 0.01*math.Pow(10, 0.25) {
		t.Errorf("features x10: got C %.3g want about %.3g (C/100)", scaled.C, o.C/100)
	}
}

func TestRunShots(t *testing.T) {
	t.Parallel()
	train := clusters(11, 5, 40, 6, 1)
	test := clusters(11, 5, 10, 6, 1) // same centres (same seed), fresh draws are the first rows
	for i, test2 := range []struct {
		p         Protocol
		wantTrain int
	}{
		{Protocol{Shots: 3, Seed: 4}, 15},
		{Protocol{Shots: 3, Seed: 4, Sweep: true}, 15},
		{Protocol{Sweep: true, ValFraction: 0.25}, 200},
		{Protocol{}, 200},
	} {
		test2.p.Fit.Threads = 2
		o, err := Run(train, test, 5, test2.p)
		if err != nil {
			t.Fatalf("test %d: %v", i, err)
		}
		if o.Train != test2.wantTrain {
			t.Errorf("test %d: got %d training examples want %d", i, o.Train, test2.wantTrain)
		}
		if o.Metrics.Top1 < 0.9 {
			t.Errorf("test %d: got accuracy %v want >= 0.9", i, o.Metrics.Top1)
		}
	}
	if _, err := Run(train, test, 5, Protocol{Shots: 41}); err == nil || !strings.Contains(err.Error(), "fewer than 41 shots") {
		t.Errorf("41 shots of 40: got %v", err)
	}
}

func ExampleFit() {
	// Two classes on a line, separated at zero.
	d := Dataset{X: []float32{-2, -1, 1, 2}, Y: []int{0, 0, 1, 1}, N: 4, D: 1}
	m, err := Fit(d, 2, Config{}, nil)
	if err != nil {
		panic(err)
	}
	pred, _ := m.Predict([]float32{-0.5, 3}, 2)
	fmt.Println(pred, m.Converged)
	// Output: [0 1] true
}
