// cast.cu: the float32 GEMM inputs of a BF16 or FP16 graph rounded to 16 bits, the
// form cuBLAS's tensor-core GEMMs read (graph/gemm_cuda.go). Bit for bit the CPU's
// roundings (graph.bf16Round, graph.fp16Round).

// bf16_bits is the bfloat16 nearest x (ties to even); NaN stays a quiet NaN and
// subnormals become signed zeros, as the AVX512-BF16 instructions give.
__device__ __forceinline__ unsigned short bf16_bits(float x) {
    unsigned u = __float_as_uint(x);
    if ((u & 0x7f800000u) == 0) return (unsigned short)((u >> 16) & 0x8000u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

// fp16_bits is the IEEE binary16 nearest x (ties to even; beyond +-65504, infinity).
__device__ __forceinline__ unsigned short fp16_bits(float x) {
    unsigned b = __float_as_uint(x);
    unsigned short sign = (unsigned short)((b >> 16) & 0x8000u);
    b &= 0x7fffffffu;
    if (b > 0x7f800000u) return sign | 0x7e00u;
    if (b >= 0x477ff000u) return sign | 0x7c00u;
    if (b < 0x33000000u) return sign;
    if (b < 0x38800000u) {
        unsigned shift = 126u - (b >> 23), m = (b & 0x7fffffu) | 0x800000u;
        unsigned r = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return sign | (unsigned short)r;
    }
    b -= 112u << 23;
    b += 0xfffu + ((b >> 13) & 1u);
    return sign | (unsigned short)(b >> 13);
}

// cast16 rounds src [n] into dst [n]: bfloat16, or binary16 when fp16 is 1.
extern "C" __global__ void cast16(unsigned short *dst, const float *src, int n, int fp16) {
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < (idx_t)n; i += (idx_t)gridDim.x * blockDim.x)
        dst[i] = fp16 ? fp16_bits(src[i]) : bf16_bits(src[i]);
}
