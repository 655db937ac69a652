// attention_grad.cu: the CUDA kernels of AttentionOp's backward pass and attention
// maps (compiled after common.cuh; split_heads and softmax_rows of attention.cu serve
// them too).

// head_offset is where element (row, c) of a [B*T, D] matrix (row = b*T + t, D = H*K)
// stands in its per-head layout [B, H, T, K].
__device__ __forceinline__ idx_t head_offset(idx_t row, int c, int t, int h, int kd) {
    return ((row / t * h + c / kd) * t + row % t) * kd + c % kd;
}

// split_head_rows copies columns [0, D) of x, rows of stride ld ([B*T, ld]), into
// y [B, H, T, K] (D = H*K): split_heads for one matrix (dy) rather than packed qkv.
extern "C" __global__ void split_head_rows(float *y, const float *x, int b, int t, int h, int kd, int ld) {
    int d = h * kd;
    idx_t total = (idx_t)b * t * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x)
        y[head_offset(i / d, i % d, t, h, kd)] = x[i / d * ld + i % d];
}

// merge_head_rows is split_head_rows' inverse: x [B, H, T, K] into columns [0, D) of
// y, rows of stride ld (one third of dqkv [B*T, 3D]).
extern "C" __global__ void merge_head_rows(float *y, const float *x, int b, int t, int h, int kd, int ld) {
    int d = h * kd;
    idx_t total = (idx_t)b * t * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x)
        y[i / d * ld + i % d] = x[head_offset(i / d, i % d, t, h, kd)];
}

// softmax_grad_rows: one warp per row of the weights p [rows, t] (as softmax_rows);
// turns dp, the gradient of the weights, into that of the scores:
// ds_j = p_j (dp_j - sum_i p_i dp_i), in place. With causal set, positions past the
// query's (weight 0) get 0.
extern "C" __global__ void softmax_grad_rows(float *dp, const float *p, int rows, int t, int causal) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) / WARP, lane = threadIdx.x % WARP;
    if (warp >= rows) return;
    float *g = dp + (idx_t)warp * t;
    const float *pr = p + (idx_t)warp * t;
    int n = causal ? (warp % t) + 1 : t;
    float c = 0.f;
    for (int j = lane; j < n; j += WARP) c += pr[j] * g[j];
    c = warp_sum(c);
    for (int j = lane; j < t; j += WARP) g[j] = j < n ? pr[j] * (g[j] - c) : 0.f;
}
