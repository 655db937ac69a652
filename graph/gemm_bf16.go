package graph

import (
	"fmt"
	"sync"
	"time"
	"unsafe"

	"gonum.org/v1/gonum/blas"
)

// resKind says whether a GEMM adds a residual, and in which precision it comes.
type resKind int

const (
	noRes resKind = iota
	resF32
	resBF16
)

// mmSpec is one GEMM of a BF16 graph with its epilogue, for any number of rows m:
// dst [m, N] = act((x [m, K] @ W^T + bias) * scale + res) (+ dst's prior contents
// when Accumulate), W bfloat16 [N, K] (or [K, N] when InOut), x rounded to bfloat16,
// products accumulated in float32, dst stored in float32 or bfloat16.
type mmSpec struct {
	N, K           int
	InOut          bool
	XHalf, DstHalf bool // x and dst are bfloat16 (else float32)
	LDD            int  // dst's row stride: N, or more when dst rows are spread out
	Bias, Scale    bool
	Res            resKind
	Act            Activation
	Accumulate     bool
}

// mmKernel is a compiled GEMM for a fixed row count (a oneDNN primitive).
type mmKernel interface {
	// run computes the rows whose operands start at the given addresses.
	run(x, w unsafe.Pointer, bias, scale []float32, res, dst unsafe.Pointer) error
	free()
}

// newMMKernel compiles s for m rows, returning the implementation's name. It is nil
// in builds without oneDNN, and returns an error where oneDNN has no fast
// implementation (a CPU without AVX512): BF16 graphs then use the fallback (see
// BF16Backend).
var newMMKernel func(s mmSpec, m int) (mmKernel, string, error)

// BF16Backend describes what runs the GEMMs of BF16 graphs in this build on this
// CPU: oneDNN and the instruction set it uses, or the fallback, which gives the
// same results (bfloat16 operands, float32 accumulation) through the float32 BLAS
// at float32 speed.
func BF16Backend() string {
	if newMMKernel == nil {
		return "fallback: float32 BLAS on bfloat16-rounded operands (this build has no oneDNN: build with -tags dnnl)"
	}
	k, impl, err := newMMKernel(mmSpec{N: 64, K: 64, LDD: 64, XHalf: true}, 64)
	if err != nil {
		return "fallback: float32 BLAS on bfloat16-rounded operands (" + err.Error() + ")"
	}
	k.free()
	return "oneDNN " + impl
}

// matmulBF16 runs one mmSpec, splitting the rows over Threads() goroutines, each
// running a oneDNN primitive single-threaded (compiled once per row count and kept),
// or the fallback over all rows at once.
type matmulBF16 struct {
	spec  mmSpec
	mu    sync.Mutex
	kerns map[int]mmKernel
	slow  bool // no oneDNN kernel: the fallback
}

func newMatmulBF16(s mmSpec) *matmulBF16 {
	if s.LDD == 0 {
		s.LDD = s.N
	}
	return &matmulBF16{spec: s, kerns: map[int]mmKernel{}, slow: newMMKernel == nil}
}

// reuseMatmul returns p when it runs s, else a new matmulBF16 for s (freeing p): an
// op keeps its GEMM from run to run.
func reuseMatmul(p *matmulBF16, s mmSpec) *matmulBF16 {
	if p != nil && p.spec == s {
		return p
	}
	p.free()
	return newMatmulBF16(s)
}

// kernel returns the kernel for m rows, compiling it on first use; nil means the
// fallback.
func (p *matmulBF16) kernel(m int) (mmKernel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slow {
		return nil, nil
	}
	if k, ok := p.kerns[m]; ok {
		return k, nil
	}
	s := p.spec
	s.XHalf = true // oneDNN multiplies bfloat16 by bfloat16 only: run rounds a float32 x first
	k, _, err := newMMKernel(s, m)
	if err != nil {
		p.slow = true // oneDNN has no usable implementation here
		return nil, nil
	}
	p.kerns[m] = k
	return k, nil
}

// free releases the compiled kernels (of a nil p: nothing).
func (p *matmulBF16) free() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for m, k := range p.kerns {
		k.free()
		delete(p.kerns, m)
	}
}

// xBlock is how many rows of a float32 x are rounded to bfloat16 at a time (a
// ResNet stage's 1x1 convolutions read 100,000 float32 rows per batch: rounding them
// all at once would allocate tens of megabytes per GEMM).
const xBlock = 256

// run computes rows [0, m) of dst from x (m rows of K values), the weight w, and
// bias, scale and res as the spec has them (res: m rows of N values; dst: rows LDD
// apart).
func (p *matmulBF16) run(m int, x act, w []uint16, bias, scale []float32, res, dst act) error {
	s := p.spec
	if m == 0 {
		return nil
	}
	parts := min(Threads(), max(1, m/16)) // 16 rows at least per part
	step := m                             // rows per kernel call within a part
	if x.H == nil {
		step = xBlock
	}
	ks := map[int]mmKernel{} // by rows: a part's, or a block's and its remainder
	for i := range parts {
		n := (i+1)*m/parts - i*m/parts
		for _, rows := range []int{min(n, step), n % step} {
			if _, ok := ks[rows]; ok || rows == 0 {
				continue
			}
			k, err := p.kernel(rows)
			if err != nil {
				return err
			}
			if k == nil {
				return p.fallback(m, x, w, bias, scale, res, dst)
			}
			ks[rows] = k
		}
	}
	errs := make([]error, parts)
	work := func(i int) {
		lo, hi := i*m/parts, (i+1)*m/parts
		var h []uint16
		if x.H == nil {
			h = make([]uint16, min(step, hi-lo)*s.K)
		}
		for r := lo; r < hi && errs[i] == nil; r += step {
			e := min(r+step, hi)
			xp := x.at(r * s.K)
			if x.H == nil {
				toBF16(h[:(e-r)*s.K], x.F[r*s.K:e*s.K])
				xp = unsafe.Pointer(&h[0])
			}
			errs[i] = ks[e-r].run(xp, unsafe.Pointer(&w[0]), bias, scale, res.at(r*s.N), dst.at(r*s.LDD))
		}
	}
	var wg sync.WaitGroup
	for i := 1; i < parts; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); work(i) }()
	}
	work(0)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// at returns the address of value i of a, or nil when a is empty.
func (a act) at(i int) unsafe.Pointer {
	switch {
	case a.H != nil:
		return unsafe.Pointer(&a.H[i])
	case a.F != nil:
		return unsafe.Pointer(&a.F[i])
	}
	return nil
}

// fallback computes the spec with the float32 BLAS on the bfloat16 values widened:
// the same products (a product of two bfloat16s is exact in float32) and float32
// sums, in another order.
func (p *matmulBF16) fallback(m int, x act, w []uint16, bias, scale []float32, res, dst act) error {
	s := p.spec
	var xbuf, wbuf, rbuf []float32
	xf := x.widen(&xbuf)
	if x.H == nil { // float32 input: round it as the GEMM's bfloat16 operand
		xf = append(xbuf[:0], xf[:m*s.K]...)
		RoundBF16(xf)
	}
	wf := act{H: w}.widen(&wbuf)
	tw, ldw := blas.Trans, s.K
	if s.InOut {
		tw, ldw = blas.NoTrans, s.N
	}
	y := make([]float32, m*s.N)
	beta := float32(0)
	if s.Accumulate {
		beta = 1
		for r := range m {
			if dst.H != nil {
				fromBF16(y[r*s.N:(r+1)*s.N], dst.H[r*s.LDD:r*s.LDD+s.N])
			} else {
				copy(y[r*s.N:(r+1)*s.N], dst.F[r*s.LDD:r*s.LDD+s.N])
			}
		}
	}
	gemm.Sgemm(blas.NoTrans, tw, m, s.N, s.K, 1, xf, s.K, wf, ldw, beta, y, s.N)
	rf := res.widen(&rbuf)
	parallel(m, grainRows(s.N), func(lo, hi int) {
		linearEpilogue(y[lo*s.N:hi*s.N], bias, scale, rf[min(lo*s.N, len(rf)):min(hi*s.N, len(rf))], s.N, s.Act)
		for r := lo; r < hi; r++ {
			if dst.H != nil {
				toBF16(dst.H[r*s.LDD:r*s.LDD+s.N], y[r*s.N:(r+1)*s.N])
			} else {
				copy(dst.F[r*s.LDD:r*s.LDD+s.N], y[r*s.N:(r+1)*s.N])
			}
		}
	})
	return nil
}

// String describes the spec (for errors).
func (s mmSpec) String() string {
	return fmt.Sprintf("bf16 GEMM [m,%d]x[%d,%d] x16=%v dst16=%v ldd=%d bias=%v scale=%v res=%d act=%v acc=%v",
		s.K, s.K, s.N, s.XHalf, s.DstHalf, s.LDD, s.Bias, s.Scale, s.Res, s.Act, s.Accumulate)
}

// BF16GEMMRate is SGEMMRate for the GEMM of BF16 graphs (bfloat16 x [m,k] times a
// bfloat16 weight [n,k], float32 results, on what BF16Backend names), split over
// Threads() as the ops run it: the ceiling of a bf16 model made of these products.
func BF16GEMMRate(shapes [][3]int, iters int) (float64, error) {
	var flops, sec float64
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		x, w, y := make([]uint16, m*k), make([]uint16, n*k), make([]float32, m*n)
		for i := range x {
			x[i] = bf16Round(float32(i%13) / 13)
		}
		for i := range w {
			w[i] = bf16Round(float32(i%7) / 70)
		}
		p := newMatmulBF16(mmSpec{N: n, K: k, XHalf: true})
		run := func() error { return p.run(m, act{H: x}, w, nil, nil, act{}, act{F: y}) }
		if err := run(); err != nil {
			return 0, err
		}
		start := time.Now()
		for range iters {
			if err := run(); err != nil {
				return 0, err
			}
		}
		sec += time.Since(start).Seconds()
		p.free()
		flops += 2 * float64(m) * float64(n) * float64(k) * float64(iters)
	}
	if sec == 0 {
		return 0, nil
	}
	return flops / sec / 1e9, nil
}
