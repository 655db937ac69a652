//go:build dnnl

// The bfloat16 conversions of BF16 graphs (graph/bf16.go) with AVX512-BF16, the
// instructions oneDNN's bfloat16 GEMMs run on: rounding to nearest even, NaN kept
// quiet, subnormals to zero, exactly graph.bf16Round. gc_bf16_init reports whether
// the CPU has them; the Go loops run otherwise.

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

int gc_bf16_init(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512bf16");
}

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// gc_to_bf16 rounds src [n] into dst [n].
BF16_TARGET void gc_to_bf16(unsigned short *dst, const float *src, long n) {
	long i = 0;
	for (; i + 32 <= n; i += 32) {
		__m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
		_mm512_storeu_si512((void *)(dst + i), (__m512i)h);
	}
	if (i < n) {
		__mmask16 lo = (__mmask16)((n - i) >= 16 ? 0xffff : (1u << (n - i)) - 1);
		__m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lo, src + i));
		_mm256_mask_storeu_epi16(dst + i, lo, (__m256i)h);
		i += 16;
		if (i < n) {
			__mmask16 hi = (__mmask16)((1u << (n - i)) - 1);
			h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(hi, src + i));
			_mm256_mask_storeu_epi16(dst + i, hi, (__m256i)h);
		}
	}
}

// gc_from_bf16 widens src [n] into dst [n] (exact).
BF16_TARGET void gc_from_bf16(float *dst, const unsigned short *src, long n) {
	long i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
		_mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
	}
	for (; i < n; i++) {
		unsigned u = (unsigned)src[i] << 16;
		memcpy(dst + i, &u, 4);
	}
}

// exp16 is expf of graph/kernels.go on 16 lanes: x clamped to [-87.3, 88], x = k ln2
// + r, degree-6 Taylor polynomial of e^r, times 2^k built in the exponent bits.
static inline BF16_TARGET __m512 exp16(__m512 x) {
	x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.0f));
	const __m512 shifter = _mm512_set1_ps(12582912.0f); // 1.5 * 2^23
	__m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), shifter);
	__m512 k = _mm512_sub_ps(t, shifter);
	__m512i e = _mm512_slli_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000 - 127)), 23);
	__m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.0f / 720);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 2));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
	return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// widen16 is 16 bfloat16s at p as float32.
static inline BF16_TARGET __m512 widen16(const unsigned short *p) {
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

// pv32 writes 32 columns of one attention output row: sum_j e[j] V[j, 0:32] over the
// n rows of V (k floats apart) times inv, into dst at index at (bfloat16 when
// dst_bf16). Rows of V go two at a time into separate accumulators, so that the
// additions do not wait on each other.
static inline BF16_TARGET void pv32(const float *e, const float *v, long k, long n, __m512 inv, void *dst, int dst_bf16,
                                    long at) {
	__m512 o0 = _mm512_setzero_ps(), o1 = o0, p0 = o0, p1 = o0;
	long j = 0;
	for (; j + 2 <= n; j += 2) {
		__m512 x = _mm512_set1_ps(e[j]), y = _mm512_set1_ps(e[j + 1]);
		const float *v0 = v + j * k, *v1 = v0 + k;
		o0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(v0), o0);
		o1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(v0 + 16), o1);
		p0 = _mm512_fmadd_ps(y, _mm512_loadu_ps(v1), p0);
		p1 = _mm512_fmadd_ps(y, _mm512_loadu_ps(v1 + 16), p1);
	}
	if (j < n) {
		__m512 x = _mm512_set1_ps(e[j]);
		o0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(v + j * k), o0);
		o1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(v + j * k + 16), o1);
	}
	o0 = _mm512_mul_ps(_mm512_add_ps(o0, p0), inv);
	o1 = _mm512_mul_ps(_mm512_add_ps(o1, p1), inv);
	if (dst_bf16) {
		__m512bh h = _mm512_cvtne2ps_pbh(o1, o0);
		_mm512_storeu_si512((unsigned short *)dst + at, (__m512i)h);
	} else {
		_mm512_storeu_ps((float *)dst + at, o0);
		_mm512_storeu_ps((float *)dst + at + 16, o1);
	}
}

// gc_attention_bf16 is AttentionOp for bfloat16 q, k and v: the sequence x head pairs
// [lo, hi) of qkv [B*T, 3D] (heads of width k, a multiple of 32, at most 256) into dst
// [B*T, D], bfloat16 when dst_bf16, else float32. The scores Q K^T come from AVX512-BF16
// dot products (each product of two bfloat16s exact, sums in float32), then the scale,
// the softmax (causal: row i over columns 0..i) and P V in float32. scratch holds
// k/2*tp uint32 (K in pairs, transposed), t*tp floats (scores) and t*k floats (V),
// tp = t rounded up to 16.
BF16_TARGET void gc_attention_bf16(const unsigned short *qkv, void *dst, int dst_bf16, float *scratch, long t, long d,
                                   long k, long heads, int causal, float scale, long lo, long hi) {
	const long d3 = 3 * d, tp = (t + 15) & ~15L, kp = k / 2;
	unsigned *kv = (unsigned *)scratch;
	float *s = scratch + kp * tp, *vf = s + t * tp;
	for (long bh = lo; bh < hi; bh++) {
		long b = bh / heads, h = bh % heads;
		const unsigned short *q = qkv + b * t * d3 + h * k, *kk = q + d, *vv = q + 2 * d;
		// K as pairs along the head width, transposed: kv[p][j] = (K[j][2p], K[j][2p+1]).
		for (long j = 0; j < t; j++) {
			const unsigned *row = (const unsigned *)(kk + j * d3);
			for (long p = 0; p < kp; p++) kv[p * tp + j] = row[p];
		}
		for (long p = 0; p < kp; p++)
			for (long j = t; j < tp; j++) kv[p * tp + j] = 0;
		for (long j = 0; j < t; j++)
			for (long c = 0; c < k; c += 16) _mm512_storeu_ps(vf + j * k + c, widen16(vv + j * d3 + c));
		// Scores, four blocks of 16 columns at a time (only up to the diagonal when causal).
		for (long i = 0; i < t; i++) {
			const unsigned *qi = (const unsigned *)(q + i * d3);
			long ncol = causal ? ((i + 16) & ~15L) : tp;
			for (long jb = 0; jb < ncol; jb += 64) {
				long nb = (ncol - jb) / 16;
				if (nb > 4) nb = 4;
				__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
				for (long p = 0; p < kp; p++) {
					__m512bh x = (__m512bh)_mm512_set1_epi32((int)qi[p]);
					const unsigned *kr = kv + p * tp + jb;
					a0 = _mm512_dpbf16_ps(a0, x, (__m512bh)_mm512_loadu_si512(kr));
					if (nb > 1) a1 = _mm512_dpbf16_ps(a1, x, (__m512bh)_mm512_loadu_si512(kr + 16));
					if (nb > 2) a2 = _mm512_dpbf16_ps(a2, x, (__m512bh)_mm512_loadu_si512(kr + 32));
					if (nb > 3) a3 = _mm512_dpbf16_ps(a3, x, (__m512bh)_mm512_loadu_si512(kr + 48));
				}
				float *si = s + i * tp + jb;
				const __m512 sc = _mm512_set1_ps(scale);
				_mm512_storeu_ps(si, _mm512_mul_ps(a0, sc));
				if (nb > 1) _mm512_storeu_ps(si + 16, _mm512_mul_ps(a1, sc));
				if (nb > 2) _mm512_storeu_ps(si + 32, _mm512_mul_ps(a2, sc));
				if (nb > 3) _mm512_storeu_ps(si + 48, _mm512_mul_ps(a3, sc));
			}
		}
		// Softmax of row i over its first n columns, then O[i] = sum_j P[i,j] V[j].
		for (long i = 0; i < t; i++) {
			float *row = s + i * tp;
			long n = causal ? i + 1 : t, j;
			__m512 mx = _mm512_set1_ps(-3.4e38f);
			for (j = 0; j + 16 <= n; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(row + j));
			__mmask16 tail = (__mmask16)((1u << (n - j)) - 1);
			if (tail) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-3.4e38f), tail, row + j));
			__m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
			for (j = 0; j + 16 <= n; j += 16) {
				__m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(row + j), m));
				_mm512_storeu_ps(row + j, e);
				sum = _mm512_add_ps(sum, e);
			}
			if (tail) {
				__m512 e = _mm512_maskz_mov_ps(tail, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + j), m)));
				_mm512_mask_storeu_ps(row + j, tail, e);
				sum = _mm512_add_ps(sum, e);
			}
			const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
			long at = (b * t + i) * d + h * k;
			for (long c0 = 0; c0 < k; c0 += 32) pv32(row, vf + c0, k, n, inv, dst, dst_bf16, at + c0);
		}
	}
}

// sum8 is the sum of the 8 doubles of s.
static inline BF16_TARGET double sum8(__m512d s) {
	__m256d h = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));
	return h[0] + h[1] + h[2] + h[3];
}

// gc_layer_norm_bf16 is gc_layer_norm (kernels_openblas.c) storing bfloat16: over
// rows of x [rows, d], the statistics in double, then (x - mean) * inv * gain + bias
// in float32, rounded to nearest even into dst. It writes LayerNorm's output straight
// in the format the GEMM after it reads, the sums in four chains of 8 doubles (one
// chain waits on the adder's latency). The text tower's 352 rows of 512 on one Zen 5
// core: 41 us, against 68 with one chain and 84 for the AVX2 kernel then the
// conversion.
BF16_TARGET void gc_layer_norm_bf16(unsigned short *dst, const float *x, const float *gain, const float *bias, long rows,
                                    long d, float eps) {
	for (long r = 0; r < rows; r++) {
		const float *row = x + r * d;
		unsigned short *out = dst + r * d;
		__m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
		long j = 0;
		for (; j + 32 <= d; j += 32) {
			s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm256_loadu_ps(row + j)));
			s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_loadu_ps(row + j + 8)));
			s2 = _mm512_add_pd(s2, _mm512_cvtps_pd(_mm256_loadu_ps(row + j + 16)));
			s3 = _mm512_add_pd(s3, _mm512_cvtps_pd(_mm256_loadu_ps(row + j + 24)));
		}
		for (; j + 8 <= d; j += 8) s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm256_loadu_ps(row + j)));
		double sum = sum8(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
		for (; j < d; j++) sum += row[j];
		double mean = sum / d;
		const __m512d m8 = _mm512_set1_pd(mean);
		s0 = s1 = s2 = s3 = _mm512_setzero_pd();
#define SQ(s, o)                                                                                   \
	do {                                                                                       \
		__m512d c = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(row + j + (o))), m8);    \
		s = _mm512_fmadd_pd(c, c, s);                                                      \
	} while (0)
		for (j = 0; j + 32 <= d; j += 32) {
			SQ(s0, 0);
			SQ(s1, 8);
			SQ(s2, 16);
			SQ(s3, 24);
		}
		for (; j + 8 <= d; j += 8) SQ(s0, 0);
#undef SQ
		double ss = sum8(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
		for (; j < d; j++) {
			double c = row[j] - mean;
			ss += c * c;
		}
		const __m512 inv = _mm512_set1_ps((float)(1 / sqrt(ss / d + (double)eps))), m = _mm512_set1_ps((float)mean);
		for (j = 0; j < d; j += 16) {
			__mmask16 k = d - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (d - j)) - 1);
			__m512 y = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), m), inv);
			y = _mm512_fmadd_ps(y, _mm512_maskz_loadu_ps(k, gain + j), _mm512_maskz_loadu_ps(k, bias + j));
			_mm256_mask_storeu_epi16(out + j, k, (__m256i)_mm512_cvtneps_pbh(y));
		}
	}
}
