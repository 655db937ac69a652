//go:build openblas

// C versions of the Go kernels in kernels.go for the openblas build (which already
// uses cgo): the Linear epilogue (bias, residual, QuickGELU), attention per sequence x
// head, and LayerNorm. They are written with GCC/Clang vector extensions and compiled
// for AVX2+FMA on x86-64, chosen at run time by gc_init (kernels_openblas.go falls
// back to the Go kernels on CPUs without them). Each call does a chunk of rows, so the
// cgo call (~100 ns) is paid once per goroutine per op. kernels_c_test.go checks each
// against its Go kernel.

#include <math.h>
#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define GC_TARGET __attribute__((target("avx2,fma")))
int gc_init(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
#define GC_TARGET
int gc_init(void) { return 1; }
#endif

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef int v8i __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));
typedef float v4u __attribute__((vector_size(16), aligned(4)));

#define LOAD(p) (*(const v8u *)(p))
#define STORE(p, v) (*(v8u *)(p) = (v))
#define SPLAT(x) ((v8){(x), (x), (x), (x), (x), (x), (x), (x)})

static inline GC_TARGET v8 vmax(v8 a, v8 b) {
	v8i m = a < b;
	return (v8)(((v8i)b & m) | ((v8i)a & ~m));
}

static inline GC_TARGET v8 vmin(v8 a, v8 b) {
	v8i m = a > b;
	return (v8)(((v8i)b & m) | ((v8i)a & ~m));
}

// expf8 is expf of kernels.go on 8 lanes: clamp to [-87.3, 88], x = k ln2 + r,
// degree-6 Taylor polynomial of e^r, times 2^k built in the exponent bits.
static inline GC_TARGET v8 expf8(v8 x) {
	x = vmax(x, SPLAT(-87.3f));
	x = vmin(x, SPLAT(88.0f));
	const v8 shifter = SPLAT(12582912.0f); // 1.5 * 2^23
	v8 t = x * SPLAT(1.44269504088896341f) + shifter;
	v8 k = t - shifter;
	v8i e = ((v8i)t - 0x4B400000 + 127) << 23;
	v8 r = x - k * SPLAT(0.693359375f) - k * SPLAT(-2.12194440e-4f);
	v8 p = SPLAT(1.0f / 720);
	p = p * r + SPLAT(1.0f / 120);
	p = p * r + SPLAT(1.0f / 24);
	p = p * r + SPLAT(1.0f / 6);
	p = p * r + SPLAT(1.0f / 2);
	p = p * r + SPLAT(1.0f);
	p = p * r + SPLAT(1.0f);
	return p * (v8)e;
}

static inline float expf1(float x) {
	if (x < -87.3f) x = -87.3f;
	else if (x > 88.0f) x = 88.0f;
	float t = x * 1.44269504088896341f + 12582912.0f;
	float k = t - 12582912.0f;
	int ti;
	memcpy(&ti, &t, 4);
	int e = (ti - 0x4B400000 + 127) << 23;
	float s;
	memcpy(&s, &e, 4);
	float r = x - k * 0.693359375f - k * -2.12194440e-4f;
	float p = 1 + r * (1 + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
	return p * s;
}

static inline GC_TARGET v8 qgelu8(v8 v) { return v / (SPLAT(1.0f) + expf8(v * SPLAT(-1.702f))); }

// gc_linear_epilogue: for rows of y [rows, nout]: y += bias (when not NULL), y += res
// (when not NULL), then QuickGELU when act is 1.
GC_TARGET void gc_linear_epilogue(float *y, const float *bias, const float *res, long rows, long nout, int act) {
	for (long r = 0; r < rows; r++) {
		float *row = y + r * nout;
		const float *rr = res ? res + r * nout : NULL;
		long j = 0;
		for (; j + 8 <= nout; j += 8) {
			v8 v = LOAD(row + j);
			if (bias) v += LOAD(bias + j);
			if (rr) v += LOAD(rr + j);
			if (act == 1) v = qgelu8(v);
			STORE(row + j, v);
		}
		for (; j < nout; j++) {
			float v = row[j];
			if (bias) v += bias[j];
			if (rr) v += rr[j];
			if (act == 1) v = v / (1 + expf1(-1.702f * v));
			row[j] = v;
		}
	}
}

// gc_layer_norm is layerNorm of kernels.go over rows of x [rows, d]: statistics in
// double, dst = (x - mean) * inv * gain + bias in float.
GC_TARGET void gc_layer_norm(float *dst, const float *x, const float *gain, const float *bias, long rows, long d, float eps) {
	for (long r = 0; r < rows; r++) {
		const float *row = x + r * d;
		float *out = dst + r * d;
		v4d s0 = {0}, s1 = {0};
		long j = 0;
		for (; j + 8 <= d; j += 8) {
			s0 += __builtin_convertvector(*(const v4u *)(row + j), v4d);
			s1 += __builtin_convertvector(*(const v4u *)(row + j + 4), v4d);
		}
		v4d s = s0 + s1;
		double sum = s[0] + s[1] + s[2] + s[3];
		for (; j < d; j++) sum += row[j];
		double mean = sum / d;
		v4d m4 = {mean, mean, mean, mean};
		s0 = (v4d){0};
		s1 = (v4d){0};
		j = 0;
		for (; j + 8 <= d; j += 8) {
			v4d c0 = __builtin_convertvector(*(const v4u *)(row + j), v4d) - m4;
			v4d c1 = __builtin_convertvector(*(const v4u *)(row + j + 4), v4d) - m4;
			s0 += c0 * c0;
			s1 += c1 * c1;
		}
		s = s0 + s1;
		double ss = s[0] + s[1] + s[2] + s[3];
		for (; j < d; j++) {
			double c = row[j] - mean;
			ss += c * c;
		}
		float inv = (float)(1 / sqrt(ss / d + (double)eps));
		float m = (float)mean;
		j = 0;
		for (; j + 8 <= d; j += 8) STORE(out + j, (LOAD(row + j) - SPLAT(m)) * SPLAT(inv) * LOAD(gain + j) + LOAD(bias + j));
		for (; j < d; j++) out[j] = (row[j] - m) * inv * gain[j] + bias[j];
	}
}

// mk2 is the micro-kernel of both attention products: for the rows a0 and a1 (a1 is
// ignored when !two) it computes out_r[0:8*nv] = sum_l a_r[l] * B[l, 0:8*nv] over n
// rows of B spaced bs floats apart, 1 <= nv <= 4 vectors of 8 columns, in registers.
static inline GC_TARGET void mk2(const float *a0, const float *a1, int two, const float *b, long bs, long n,
                                 long nv, float *out0, float *out1) {
	v8 r0 = {0}, r1 = {0}, r2 = {0}, r3 = {0}, s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
	if (nv == 4) {
		for (long l = 0; l < n; l++) {
			const float *br = b + l * bs;
			v8 x0 = SPLAT(a0[l]), x1 = SPLAT(a1[l]);
			v8 b0 = LOAD(br), b1 = LOAD(br + 8), b2 = LOAD(br + 16), b3 = LOAD(br + 24);
			r0 += x0 * b0, r1 += x0 * b1, r2 += x0 * b2, r3 += x0 * b3;
			s0 += x1 * b0, s1 += x1 * b1, s2 += x1 * b2, s3 += x1 * b3;
		}
	} else {
		for (long l = 0; l < n; l++) {
			const float *br = b + l * bs;
			v8 x0 = SPLAT(a0[l]), x1 = SPLAT(a1[l]);
			v8 b0 = LOAD(br);
			r0 += x0 * b0, s0 += x1 * b0;
			if (nv > 1) {
				v8 b1 = LOAD(br + 8);
				r1 += x0 * b1, s1 += x1 * b1;
			}
			if (nv > 2) {
				v8 b2 = LOAD(br + 16);
				r2 += x0 * b2, s2 += x1 * b2;
			}
		}
	}
	STORE(out0, r0);
	if (nv > 1) STORE(out0 + 8, r1);
	if (nv > 2) STORE(out0 + 16, r2);
	if (nv > 3) STORE(out0 + 24, r3);
	if (two) {
		STORE(out1, s0);
		if (nv > 1) STORE(out1 + 8, s1);
		if (nv > 2) STORE(out1 + 16, s2);
		if (nv > 3) STORE(out1 + 24, s3);
	}
}

// gc_attention runs attention for the sequence x head pairs [lo, hi) of qkv [B*T, 3D]
// (heads of width k, a multiple of 8) into dst [B*T, D]. scratch holds k*tp + t*tp +
// 3*t*k floats, tp = t rounded up to a multiple of 8: K transposed [k, tp], the scores
// [t, tp], then Q, K and V [t, k]. Masked (causal) weights are exactly 0 and skipped in the product with V.
GC_TARGET void gc_attention(const float *qkv, float *dst, float *scratch, long t, long d, long k, long heads,
                            int causal, float scale, long lo, long hi) {
	const long d3 = 3 * d, tp = (t + 7) & ~7L;
	float *kt = scratch, *p = kt + k * tp, *q = p + t * tp, *ks = q + t * k, *vv = ks + t * k;
	for (long bh = lo; bh < hi; bh++) {
		long b = bh / heads, h = bh % heads;
		const float *src = qkv + b * t * d3 + h * k;
		float *o = dst + b * t * d + h * k;
		// Q, K and V packed into [t, k] each: qkv's rows are 3D apart, a stride that
		// maps a head's rows onto a few L1 sets.
		for (long j = 0; j < t; j++) {
			memcpy(q + j * k, src + j * d3, k * sizeof(float));
			memcpy(ks + j * k, src + j * d3 + d, k * sizeof(float));
			memcpy(vv + j * k, src + j * d3 + 2 * d, k * sizeof(float));
		}
		// K^T [k, tp], zero padded, pre-scaled.
		for (long l = 0; l < k; l++) {
			for (long j = 0; j < t; j++) kt[l * tp + j] = ks[j * k + l] * scale;
			for (long j = t; j < tp; j++) kt[l * tp + j] = 0;
		}
		// Scores: P[i, :] = sum_l Q[i,l] K^T[l, :], two rows at a time, columns in blocks
		// of up to 4 vectors (only up to the last unmasked column when causal).
		long i = 0;
		for (; i < t; i += 2) {
			int two = i + 1 < t;
			const float *q0 = q + i * k, *q1 = two ? q0 + k : q0;
			long ncol = causal ? ((i + (two ? 2 : 1) + 7) & ~7L) : tp;
			for (long jb = 0; jb < ncol; jb += 32) {
				long nv = (ncol - jb) / 8;
				if (nv > 4) nv = 4;
				float *p0 = p + i * tp + jb;
				mk2(q0, q1, two, kt + jb, tp, k, nv, p0, p0 + tp);
			}
		}
		// Softmax of each row over its first n columns; the rest are exactly 0.
		for (i = 0; i < t; i++) {
			float *row = p + i * tp;
			long n = causal ? i + 1 : t;
			float mx = row[0];
			for (long j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
			long j = 0;
			v8 acc = {0};
			for (; j + 8 <= n; j += 8) {
				v8 e = expf8(LOAD(row + j) - SPLAT(mx));
				STORE(row + j, e);
				acc += e;
			}
			float sum = 0;
			for (; j < n; j++) {
				row[j] = expf1(row[j] - mx);
				sum += row[j];
			}
			for (int l = 0; l < 8; l++) sum += acc[l];
			float inv = 1 / sum;
			for (j = 0; j < n; j++) row[j] *= inv;
			for (; j < tp; j++) row[j] = 0;
		}
		// O[i, :] = sum_j P[i,j] V[j, :], two rows x 32 columns at a time.
		for (long cb = 0; cb < k; cb += 32) {
			long nv = (k - cb) / 8;
			if (nv > 4) nv = 4;
			for (i = 0; i < t; i += 2) {
				int two = i + 1 < t;
				const float *p0 = p + i * tp, *p1 = two ? p0 + tp : p0;
				long n = causal ? i + (two ? 2 : 1) : t;
				float *o0 = o + i * d + cb;
				mk2(p0, p1, two, vv + cb, k, n, nv, o0, o0 + d);
			}
		}
	}
}
