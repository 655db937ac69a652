//go:build cgo && openblas && amd64

package probes

// A fused loss-and-gradient kernel for skinny problems (few classes), in C with AVX2
// and FMA, used by objective.blocks in place of its two float32 GEMMs. At K = 10
// OpenBLAS's small per-block GEMMs (which pack their operands) and the separate
// residual pass run well below the FMA rate and wait on memory; this kernel reads
// each block of features from memory once (logits), keeps it in L2 for the gradient,
// and never copies it.
//
// Per block of n rows it computes, in this order:
//
//  1. t[i,c] = float64(sum_j x[i,j] w[c,j]) + bias[c], the sums in float32 (8 lanes,
//     then a fixed horizontal sum) for 2 rows and up to 5 classes at a time;
//  2. the softmax residual in float64 (a vectorised exp, within 1e-16 relative of the
//     correctly rounded one), its cross-entropy and the intercept gradient;
//  3. g[c,j] (+)= sum_i r[i,c] x[i,j] in float32, 16 columns and up to 5 classes at a
//     time, each sum over the block in registers, the block read from L2, while the
//     next block (the rows that follow) is prefetched into L2, one line per row
//     visited, so that step 1 of the next call rarely waits for memory.
//
// The kernel runs at about 420 ns a row at d = 784, k = 10 on one Zen 4 core, close to
// its FMA throughput (2 * 784 * 10 multiply-adds); the two GEMMs take about 650.
//
// The order of every sum depends on n, d and k only, so results are deterministic.
// gc_fused_ok says whether the CPU has AVX2 and FMA; without them (or with many
// classes, where the GEMMs win) objective.blocks keeps its GEMM path, as it does in
// builds without OpenBLAS or off amd64 (fused_native.go).

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#include <immintrin.h>
#include <math.h>

static int gc_fused_ok(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#define GC_T __attribute__((target("avx2,fma")))
#define GC_INLINE __attribute__((always_inline)) static inline

GC_T GC_INLINE float gc_hsum(__m256 v) {
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

// gc_dots writes t[r*k + c0+c] = x_r . w_{c0+c} + bias[c0+c] for NR rows (1 or 2)
// starting at x and KC classes (1 to 5) starting at c0.
GC_T GC_INLINE void gc_dots(const float *x, long d, const float *w, const double *bias,
		double *t, long k, long c0, const int NR, const int KC) {
	__m256 acc[2][5];
	for (int r = 0; r < NR; r++)
		for (int c = 0; c < KC; c++)
			acc[r][c] = _mm256_setzero_ps();
	const float *wc = w + c0*d;
	long j = 0;
	for (; j + 8 <= d; j += 8) {
		__m256 x0 = _mm256_loadu_ps(x + j);
		__m256 x1 = NR > 1 ? _mm256_loadu_ps(x + d + j) : x0;
		for (int c = 0; c < KC; c++) {
			__m256 wv = _mm256_loadu_ps(wc + c*d + j);
			acc[0][c] = _mm256_fmadd_ps(x0, wv, acc[0][c]);
			if (NR > 1)
				acc[1][c] = _mm256_fmadd_ps(x1, wv, acc[1][c]);
		}
	}
	for (int r = 0; r < NR; r++)
		for (int c = 0; c < KC; c++) {
			float s = gc_hsum(acc[r][c]);
			for (long jj = j; jj < d; jj++)
				s += x[r*d + jj] * wc[c*d + jj];
			t[r*k + c0 + c] = (double)s + bias[c0 + c];
		}
}

// gc_grad adds (or, when !add, stores) sum_i r[i, c0+c] x[i, j:j+8*NV] to g for KC
// classes (1 to 5) and NV vectors of 8 columns (1 or 2).
GC_T GC_INLINE void gc_grad(const float *x, long n, long d, const float *r, long k,
		float *g, long j, long c0, int add, const char *pf, long npf, const int KC, const int NV) {
	__m256 acc[5][2];
	for (int c = 0; c < KC; c++)
		for (int v = 0; v < NV; v++)
			acc[c][v] = _mm256_setzero_ps();
	for (long i = 0; i < n; i++) {
		if (i < npf)
			_mm_prefetch(pf + 64*i, _MM_HINT_T1);
		const float *xi = x + i*d + j;
		__m256 x0 = _mm256_loadu_ps(xi);
		__m256 x1 = NV > 1 ? _mm256_loadu_ps(xi + 8) : x0;
		const float *ri = r + i*k + c0;
		for (int c = 0; c < KC; c++) {
			__m256 rc = _mm256_broadcast_ss(ri + c);
			acc[c][0] = _mm256_fmadd_ps(rc, x0, acc[c][0]);
			if (NV > 1)
				acc[c][1] = _mm256_fmadd_ps(rc, x1, acc[c][1]);
		}
	}
	for (int c = 0; c < KC; c++)
		for (int v = 0; v < NV; v++) {
			float *gp = g + (c0 + c)*d + j + 8*v;
			__m256 s = acc[c][v];
			if (add)
				s = _mm256_add_ps(_mm256_loadu_ps(gp), s);
			_mm256_storeu_ps(gp, s);
		}
}

// gc_exp4 is exp for x <= 0 (results below exp(-708) are flushed to about 3e-308):
// x = n ln2 + r, |r| <= ln2/2, exp(r) by its Taylor polynomial of degree 13 (truncation
// error below 5e-18), times 2^n built in the exponent bits.
GC_T GC_INLINE __m256d gc_exp4(__m256d x) {
	x = _mm256_max_pd(x, _mm256_set1_pd(-708.0));
	__m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)),
		_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), x);
	r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);
	static const double inv[] = {
		1.0/6227020800.0, 1.0/479001600.0, 1.0/39916800.0, 1.0/3628800.0, 1.0/362880.0,
		1.0/40320.0, 1.0/5040.0, 1.0/720.0, 1.0/120.0, 1.0/24.0, 1.0/6.0, 0.5, 1.0, 1.0,
	};
	__m256d p = _mm256_set1_pd(inv[0]);
	for (int i = 1; i < 14; i++)
		p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(inv[i]));
	__m256i e = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n));
	e = _mm256_slli_epi64(_mm256_add_epi64(e, _mm256_set1_epi64x(1023)), 52);
	return _mm256_mul_pd(p, _mm256_castsi256_pd(e));
}

// gc_fused_block evaluates one block of n rows of x [n, d] against w [k, d] and bias
// [k] with labels y [n]. t is scratch of n*k doubles rounded up to a multiple of 4, r
// scratch of n*k floats. It stores (add == 0) or adds (add != 0) the block's gradient
// to g [k, d], adds the intercept gradient to gb [k] and returns the cross-entropy.
GC_T static double gc_fused_block(const float *x, long n, long d, long k, const float *w,
		const double *bias, const long long *y, double *t, float *r, float *g, int add,
		double *gb) {
	for (long i = 0; i < n; i += 2) {
		long c0 = 0;
		if (i + 1 < n) {
			for (; c0 + 5 <= k; c0 += 5)
				gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 2, 5);
			switch (k - c0) {
			case 4: gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 2, 4); break;
			case 3: gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 2, 3); break;
			case 2: gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 2, 2); break;
			case 1: gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 2, 1); break;
			}
		} else {
			for (; c0 + 5 <= k; c0 += 5)
				gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 1, 5);
			switch (k - c0) {
			case 4: gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 1, 4); break;
			case 3: gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 1, 3); break;
			case 2: gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 1, 2); break;
			case 1: gc_dots(x + i*d, d, w, bias, t + i*k, k, c0, 1, 1); break;
			}
		}
	}

	// Softmax residual: shift each row by its maximum, exp over the whole block.
	double ce = 0;
	for (long i = 0; i < n; i++) {
		double *ti = t + i*k;
		double m = ti[0];
		for (long c = 1; c < k; c++)
			m = ti[c] > m ? ti[c] : m;
		for (long c = 0; c < k; c++)
			ti[c] -= m;
		ce -= ti[y[i]];
	}
	long nk = n*k, nk4 = (nk + 3) & ~3L;
	for (long i = nk; i < nk4; i++)
		t[i] = 0;
	for (long i = 0; i < nk4; i += 4)
		_mm256_storeu_pd(t + i, gc_exp4(_mm256_loadu_pd(t + i)));
	for (long i = 0; i < n; i++) {
		double *ti = t + i*k;
		float *ri = r + i*k;
		double sum = 0;
		for (long c = 0; c < k; c++)
			sum += ti[c];
		ce += log(sum);
		double inv = 1/sum;
		for (long c = 0; c < k; c++) {
			double p = ti[c]*inv - (c == y[i]);
			gb[c] += p;
			ri[c] = (float)p;
		}
	}

	// The gradient reads the block from L2; meanwhile, prefetch the next one (which
	// starts where this one ends) into L2, a cache line per row visited.
	const char *pf = (const char *)(x + n*d);
	long npf = n*d*4/64 + 1;
#define GC_GRAD(KC, NV) do { \
		gc_grad(x, n, d, r, k, g, j, c0, add, pf, npf, KC, NV); \
		long m = npf < n ? npf : n; \
		pf += 64*m; npf -= m; \
	} while (0)
	long j = 0;
	for (; j + 16 <= d; j += 16) {
		long c0 = 0;
		for (; c0 + 5 <= k; c0 += 5)
			GC_GRAD(5, 2);
		switch (k - c0) {
		case 4: GC_GRAD(4, 2); break;
		case 3: GC_GRAD(3, 2); break;
		case 2: GC_GRAD(2, 2); break;
		case 1: GC_GRAD(1, 2); break;
		}
	}
	if (j + 8 <= d) {
		long c0 = 0;
		for (; c0 + 5 <= k; c0 += 5)
			GC_GRAD(5, 1);
		switch (k - c0) {
		case 4: GC_GRAD(4, 1); break;
		case 3: GC_GRAD(3, 1); break;
		case 2: GC_GRAD(2, 1); break;
		case 1: GC_GRAD(1, 1); break;
		}
		j += 8;
	}
#undef GC_GRAD
	for (; j < d; j++)
		for (long c = 0; c < k; c++) {
			float s = 0;
			for (long i = 0; i < n; i++)
				s += r[i*k + c] * x[i*d + j];
			g[c*d + j] = add ? g[c*d + j] + s : s;
		}
	return ce;
}
*/
import "C"

import "unsafe"

// fusedOK says whether fusedBlock can run here (AVX2 and FMA).
var fusedOK = C.gc_fused_ok() != 0

// fusedBlock is the C kernel described above; see gc_fused_block for its arguments.
// len(t) must be at least n*k rounded up to a multiple of 4.
func fusedBlock(x []float32, n, d, k int, w []float32, bias []float64, y []int, t []float64, r, g []float32, add bool, gb []float64) float64 {
	if n == 0 {
		return 0
	}
	_ = x[n*d-1]
	_ = w[k*d-1]
	_ = bias[k-1]
	_ = y[n-1]
	_ = t[(n*k+3)&^3-1]
	_ = r[n*k-1]
	_ = g[k*d-1]
	_ = gb[k-1]
	a := C.int(0)
	if add {
		a = 1
	}
	return float64(C.gc_fused_block((*C.float)(&x[0]), C.long(n), C.long(d), C.long(k), (*C.float)(&w[0]),
		(*C.double)(&bias[0]), (*C.longlong)(unsafe.Pointer(&y[0])), (*C.double)(&t[0]), (*C.float)(&r[0]),
		(*C.float)(&g[0]), a, (*C.double)(&gb[0])))
}
