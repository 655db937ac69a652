package graph

import (
	"errors"
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
// products accumulated in float32, dst stored in float32 or bfloat16. With F32, W, x
// and dst are float32 and nothing is rounded: a float32 graph's GEMM (see fp32GEMM).
type mmSpec struct {
	N, K           int
	InOut          bool
	Blocked        bool // W is in oneDNN's blocked layout (BF16Blocked): only its kernels read it
	F32            bool // float32 W, x and dst (runF32)
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

// fp32GEMM says the fused float32 GEMMs (Linear and Conv2d of float32 graphs) run on
// newMMKernel's kernels rather than the BLAS: set in builds with oneDNN. Its float32
// matmul matches a current BLAS on AVX-512 (within 5% on Zen 5) and keeps AVX-512
// where the BLAS cannot use it: OpenBLAS up to 0.3.21 misreads recent CPUs, and where
// OPENBLAS_CORETYPE holds it to its AVX2 kernels for that reason, oneDNN's SGEMM is
// twice as fast (RN50's convolution shapes on one Zen 5 core: 177-188 against 84-95
// GFLOP/s). Where oneDNN has only reference kernels the BLAS runs them (runF32).
var fp32GEMM bool

// FP32Backend describes what runs the GEMMs of float32 graphs' Linear and Conv2d
// ops in this build on this CPU: oneDNN and its kernels, or the BLAS (BLAS, and the
// kernels OpenBLAS chose: BLASCore).
func FP32Backend() string {
	blasName := BLAS
	if c := BLASCore(); c != "" {
		blasName += " (" + c + ")"
	}
	if !fp32GEMM {
		return blasName
	}
	k, impl, err := newMMKernel(mmSpec{N: 64, K: 64, LDD: 64, F32: true}, 64)
	if err != nil {
		return blasName + " (" + err.Error() + ")"
	}
	k.free()
	return "oneDNN " + impl
}

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

// fusedGEMM runs one mmSpec (a BF16 graph's GEMM, or with F32 a float32 graph's),
// splitting the rows over Threads() goroutines, each running a oneDNN primitive
// single-threaded (compiled once per row count and kept), or the fallback over all
// rows at once.
type fusedGEMM struct {
	spec  mmSpec
	mu    sync.Mutex
	kerns map[int]mmKernel
	slow  bool // no oneDNN kernel: the fallback
}

func newFusedGEMM(s mmSpec) *fusedGEMM {
	if s.LDD == 0 {
		s.LDD = s.N
	}
	return &fusedGEMM{spec: s, kerns: map[int]mmKernel{}, slow: newMMKernel == nil}
}

// reuseMatmul returns p when it runs s, else a new fusedGEMM for s (freeing p): an
// op keeps its GEMM from run to run.
func reuseMatmul(p *fusedGEMM, s mmSpec) *fusedGEMM {
	if p != nil && p.spec == s {
		return p
	}
	p.free()
	return newFusedGEMM(s)
}

// kernel returns the kernel for m rows, compiling it on first use; nil means the
// fallback.
func (p *fusedGEMM) kernel(m int) (mmKernel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slow {
		return nil, nil
	}
	if k, ok := p.kerns[m]; ok {
		return k, nil
	}
	s := p.spec
	if !s.F32 {
		s.XHalf = true // oneDNN multiplies bfloat16 by bfloat16 only: run rounds a float32 x first
	}
	k, _, err := newMMKernel(s, m)
	if err != nil && s.Blocked {
		return nil, fmt.Errorf("graph: %d rows: %w", m, err) // a blocked weight has no fallback
	}
	if err != nil {
		p.slow = true // oneDNN has no usable implementation here
		return nil, nil
	}
	p.kerns[m] = k
	return k, nil
}

// free releases the compiled kernels (of a nil p: nothing).
func (p *fusedGEMM) free() {
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
func (p *fusedGEMM) run(m int, x act, w []uint16, bias, scale []float32, res, dst act) error {
	if m == 0 {
		return nil
	}
	ok, err := p.split(m, x, unsafe.Pointer(&w[0]), bias, scale, res, dst)
	if err != nil || ok {
		return err
	}
	return p.fallback(m, x, w, bias, scale, res, dst)
}

// runF32 computes rows [0, m) of an F32 spec with its compiled kernels, as run does.
// It returns false, having done nothing, where there are none (a build without
// oneDNN, or a CPU where it has only reference kernels): the caller then runs the
// BLAS.
func (p *fusedGEMM) runF32(m int, x, w, bias, scale, res, dst []float32) (bool, error) {
	if m == 0 {
		return true, nil
	}
	return p.split(m, act{F: x}, unsafe.Pointer(&w[0]), bias, scale, act{F: res}, act{F: dst})
}

// split runs the rows in parts, one per goroutine, on the compiled kernels. It
// returns false, having done nothing, where there are no kernels.
func (p *fusedGEMM) split(m int, x act, w unsafe.Pointer, bias, scale []float32, res, dst act) (bool, error) {
	s := p.spec
	parts := min(Threads(), max(1, m/16)) // 16 rows at least per part
	step := m                             // rows per kernel call within a part
	if x.H == nil && !s.F32 {
		step = xBlock // a float32 x is rounded to bfloat16 a block at a time
	}
	ks := map[int]mmKernel{} // by rows: a part's, or a block's and its remainder
	for i := range parts {
		n := (i+1)*m/parts - i*m/parts
		for _, rows := range []int{min(n, step), n % step} {
			if _, ok := ks[rows]; ok || rows == 0 {
				continue
			}
			k, err := p.kernel(rows)
			if err != nil || k == nil {
				return false, err
			}
			ks[rows] = k
		}
	}
	errs := make([]error, parts)
	work := func(i int) {
		lo, hi := i*m/parts, (i+1)*m/parts
		var h []uint16
		if x.H == nil && !s.F32 {
			h = make([]uint16, min(step, hi-lo)*s.K)
		}
		for r := lo; r < hi && errs[i] == nil; r += step {
			e := min(r+step, hi)
			xp := x.at(r * s.K)
			if h != nil {
				toBF16(h[:(e-r)*s.K], x.F[r*s.K:e*s.K])
				xp = unsafe.Pointer(&h[0])
			}
			errs[i] = ks[e-r].run(xp, w, bias, scale, res.at(r*s.N), dst.at(r*s.LDD))
		}
	}
	runParts(parts, work)
	return true, errors.Join(errs...)
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
func (p *fusedGEMM) fallback(m int, x act, w []uint16, bias, scale []float32, res, dst act) error {
	s := p.spec
	if s.Blocked {
		return fmt.Errorf("graph: %s: the weight is in oneDNN's blocked layout, which only oneDNN reads", s)
	}
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

// dtype names the spec's weight type.
func (s mmSpec) dtype() string {
	if s.F32 {
		return "float32"
	}
	return "bfloat16"
}

// String describes the spec (for errors).
func (s mmSpec) String() string {
	return fmt.Sprintf(s.dtype()+" GEMM [m,%d]x[%d,%d] x16=%v dst16=%v ldd=%d bias=%v scale=%v res=%d act=%v acc=%v",
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
		// Blocked as PackWeights leaves a model's Linear weights, where it does.
		blocked := false
		if blockedGEMM() {
			var err error
			if blocked, err = packBF16(n, k, false, w); err != nil {
				return 0, err
			}
		}
		p := newFusedGEMM(mmSpec{N: n, K: k, XHalf: true, Blocked: blocked})
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
