// common.cuh: what every op's kernels share. The CUDA device (graph/device_cuda.go)
// compiles this file followed by every registered op's .cu file (graph/cuda/*.cu,
// each embedded by its op's _cuda.go file) as one source with NVRTC, at run time, for
// the compute capability of the device in use: building gorgoclip needs no nvcc and
// one binary runs on any GPU the installed NVRTC knows. No #include anywhere (NVRTC
// gets one string): only built-ins, and this header comes first.
//
// Every matrix is row-major float32. Integer and float parameters are passed by the Go
// side as 8-byte slots (cu.Function.Launch copies 8 bytes per parameter); on a
// little-endian host an int or float parameter reads the low 4 bytes of its slot.

#define WARP 32

// 64-bit element index. Not size_t: NVRTC has no standard headers, and a private name
// cannot clash with whatever its built-in headers declare.
typedef unsigned long long idx_t;

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = WARP / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// block_reduce reduces v over a block of blockDim.x threads (a multiple of 32, <= 1024):
// the sum, or the maximum with MAX. Every thread gets the result, and every memory
// write a thread made before the call is visible to the whole block after it.
template <bool MAX>
__device__ float block_reduce(float v, float *shared) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    v = MAX ? warp_max(v) : warp_sum(v);
    __syncthreads(); // shared may still be read by a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : (MAX ? -3.402823466e38f : 0.f);
    return MAX ? warp_max(v) : warp_sum(v);
}

__device__ float block_sum(float v, float *shared) { return block_reduce<false>(v, shared); }

__device__ float block_max(float v, float *shared) { return block_reduce<true>(v, shared); }

// block_exp replaces p[0..t) by exp(p[j] - max p) and returns 1 / their sum: a softmax
// over one block, left for the caller to normalise. Thread i touches the j = i mod
// blockDim.x; the reductions' barriers make every p[j] visible to the block on return.
__device__ float block_exp(float *p, int t, float *shared) {
    float mx = -3.402823466e38f;
    for (int j = threadIdx.x; j < t; j += blockDim.x) mx = fmaxf(mx, p[j]);
    mx = block_max(mx, shared);
    float sum = 0.f;
    for (int j = threadIdx.x; j < t; j += blockDim.x) {
        float e = expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    return 1.f / block_sum(sum, shared);
}

// column_sums: y[col] = sum over rows r < n of term(r, col), for the backward ops'
// bias and gain gradients. Launched with blocks of 256 threads and ceil(c/32) blocks:
// a block owns 32 columns, its 8 warps take every 8th row, and the warps' partial sums
// are added in a fixed order (deterministic, no atomics).
template <typename Term>
__device__ void column_sums(float *y, int n, int c, Term term) {
    __shared__ float part[256];
    int lane = threadIdx.x % WARP, group = threadIdx.x / WARP, groups = blockDim.x / WARP;
    int col = blockIdx.x * WARP + lane;
    float s = 0.f;
    if (col < c)
        for (int r = group; r < n; r += groups) s += term(r, col);
    part[threadIdx.x] = s;
    __syncthreads();
    if (group == 0 && col < c) {
        for (int g = 1; g < groups; g++) s += part[g * WARP + lane];
        y[col] = s;
    }
}
