//go:build dnnl

// The bfloat16 conversions of BF16 graphs (graph/bf16.go) with AVX512-BF16, the
// instructions oneDNN's bfloat16 GEMMs run on: rounding to nearest even, NaN kept
// quiet, subnormals to zero, exactly graph.bf16Round. gc_bf16_init reports whether
// the CPU has them; the Go loops run otherwise.

#include <immintrin.h>
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
