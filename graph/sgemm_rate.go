package graph

import (
	"time"

	"gonum.org/v1/gonum/blas"
)

// SGEMMRate times the float32 GEMM behind LinearOp alone (FP32Backend: oneDNN in
// builds with it, else the BLAS, OpenBLAS or gonum) on plain products y [m,n] = x
// [m,k] W^T, one per shape {m, n, k}, each run once untimed and then iters times,
// with the threads set by SetThreads. It returns the GFLOP/s over
// all of them: the ceiling a model made of these products could reach on this
// machine, against which benchmarks report the fraction they reach.
func SGEMMRate(shapes [][3]int, iters int) float64 {
	var flops, sec float64
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		x, w, y := make([]float32, m*k), make([]float32, n*k), make([]float32, m*n)
		for i := range x {
			x[i] = float32(i%13) / 13
		}
		for i := range w {
			w[i] = float32(i%7) / 70
		}
		p := newFusedGEMM(mmSpec{N: n, K: k, F32: true})
		run := func() {
			if fp32GEMM {
				if done, err := p.runF32(m, x, w, nil, nil, nil, y); done && err == nil {
					return
				}
			}
			gemm.Sgemm(blas.NoTrans, blas.Trans, m, n, k, 1, x, k, w, k, 0, y, n)
		}
		run()
		start := time.Now()
		for range iters {
			run()
		}
		sec += time.Since(start).Seconds()
		p.free()
		flops += 2 * float64(m) * float64(n) * float64(k) * float64(iters)
	}
	if sec == 0 {
		return 0
	}
	return flops / sec / 1e9
}
