// CUDA kernels of the fused ops' device path (graph/device_cuda.go). This file is
// embedded in the Go binary (//go:embed) and compiled at run time by NVRTC for the
// compute capability of the device in use, so building gorgoclip needs no nvcc and
// one binary runs on any GPU the installed NVRTC knows. No #include: only built-ins.
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

// block_sum reduces v over a block of blockDim.x threads (a multiple of 32, <= 1024).
__device__ float block_sum(float v, float *shared) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    v = warp_sum(v);
    __syncthreads(); // shared may still be read by a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : 0.f;
    return warp_sum(v);
}

// layer_norm: one block per row of x [n,d]; y = (x-mean)/sqrt(var+eps)*gain+bias.
extern "C" __global__ void layer_norm(float *y, const float *x, const float *gain, const float *bias,
                                      int n, int d, float eps) {
    __shared__ float shared[WARP];
    int r = blockIdx.x;
    if (r >= n) return;
    const float *row = x + (idx_t)r * d;
    float *out = y + (idx_t)r * d;
    float s = 0.f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += row[j];
    float mean = block_sum(s, shared) / d;
    float ss = 0.f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float c = row[j] - mean;
        ss += c * c;
    }
    float inv = rsqrtf(block_sum(ss, shared) / d + eps);
    for (int j = threadIdx.x; j < d; j += blockDim.x) out[j] = (row[j] - mean) * inv * gain[j] + bias[j];
}

// epilogue finishes a Linear y [n,m]: y += bias (if any), y += res (if any), then the
// activation act (0 identity, 1 QuickGELU x*sigmoid(1.702x), 2 erf GELU).
extern "C" __global__ void epilogue(float *y, const float *bias, const float *res, int n, int m, int act) {
    idx_t total = (idx_t)n * m;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (bias) v += bias[i % m];
        if (res) v += res[i];
        if (act == 1) v = v / (1.f + expf(-1.702f * v));
        else if (act == 2) v = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
        y[i] = v;
    }
}

// split_heads copies qkv [B*T, 3D] into q, k, v, each [B, H, T, K] (D = H*K), so that
// every (sequence, head) pair is one contiguous [T, K] matrix for the batched GEMMs.
extern "C" __global__ void split_heads(float *q, float *k, float *v, const float *qkv, int b, int t, int h, int kd) {
    int d = h * kd;
    idx_t total = (idx_t)b * t * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int c = i % d;        // column within D
        idx_t row = i / d;   // b*T + t
        int ti = row % t, bi = row / t, hi = c / kd, ki = c % kd;
        idx_t dst = (((idx_t)bi * h + hi) * t + ti) * kd + ki;
        const float *src = qkv + row * 3 * d + c;
        q[dst] = src[0];
        k[dst] = src[d];
        v[dst] = src[2 * d];
    }
}

// merge_heads is split_heads' inverse for the output: o [B, H, T, K] -> y [B*T, D].
extern "C" __global__ void merge_heads(float *y, const float *o, int b, int t, int h, int kd) {
    int d = h * kd;
    idx_t total = (idx_t)b * t * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int c = i % d;
        idx_t row = i / d;
        int ti = row % t, bi = row / t, hi = c / kd, ki = c % kd;
        y[i] = o[(((idx_t)bi * h + hi) * t + ti) * kd + ki];
    }
}

// softmax_rows: one warp per row of p [rows, t]; row r is query position r % t. With
// causal set, positions j > r % t get weight 0 (CLIP's text mask).
extern "C" __global__ void softmax_rows(float *p, int rows, int t, int causal) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) / WARP, lane = threadIdx.x % WARP;
    if (warp >= rows) return;
    float *row = p + (idx_t)warp * t;
    int n = causal ? (warp % t) + 1 : t;
    float mx = -3.402823466e38f;
    for (int j = lane; j < n; j += WARP) mx = fmaxf(mx, row[j]);
    mx = warp_max(mx);
    float s = 0.f;
    for (int j = lane; j < n; j += WARP) {
        float e = expf(row[j] - mx);
        row[j] = e;
        s += e;
    }
    float inv = 1.f / warp_sum(s);
    for (int j = lane; j < t; j += WARP) row[j] = j < n ? row[j] * inv : 0.f;
}

// patchify lays images px [B, 3, R, R] out as patch rows [B*G*G, 3*P*P] in conv1's
// weight order (channel, row, column), patches in raster order.
extern "C" __global__ void patchify(float *dst, const float *px, int b, int r, int p) {
    int g = r / p, pp = 3 * p * p;
    idx_t total = (idx_t)b * g * g * pp;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int e = i % pp;
        idx_t patch = i / pp; // image*G*G + gy*G + gx
        int gx = patch % g, gy = (patch / g) % g;
        idx_t img = patch / ((idx_t)g * g);
        int c = e / (p * p), py = (e / p) % p, px_ = e % p;
        dst[i] = px[((img * 3 + c) * r + gy * p + py) * r + gx * p + px_];
    }
}

// class_pos writes the token rows before the patch GEMM accumulates into them:
// x [B*T, D], row 0 of each image = class + pos[0], rows t >= 1 = pos[t].
extern "C" __global__ void class_pos(float *x, const float *cls, const float *pos, int b, int t, int d) {
    idx_t total = (idx_t)b * t * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        idx_t td = i % ((idx_t)t * d);
        float v = pos[td];
        if (td < (idx_t)d) v += cls[td];
        x[i] = v;
    }
}

// add_positional: y [B*T, D] = x + the first T rows of pos, per sequence.
extern "C" __global__ void add_positional(float *y, const float *x, const float *pos, int n, int t, int d) {
    idx_t total = (idx_t)n * d, td = (idx_t)t * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x)
        y[i] = x[i] + pos[i % td];
}

// select_rows: y [B, D] = x [B*T, D] at position idx[b] (float positions, from the
// device) or fixed when idx is null. A position outside [0,T) or not an integer
// yields a row of NaN, so that a bad input can never pass for a result.
extern "C" __global__ void select_rows(float *y, const float *x, const float *idx, int fixed, int b, int t, int d) {
    idx_t total = (idx_t)b * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int bi = i / d, c = i % d;
        int pos = fixed;
        if (idx) {
            float f = idx[bi];
            pos = (f >= 0.f && f < (float)t && f == floorf(f)) ? (int)f : -1;
        }
        y[i] = pos < 0 ? __int_as_float(0x7fc00000) : x[((idx_t)bi * t + pos) * d + c];
    }
}
