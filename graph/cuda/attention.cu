// attention.cu: the CUDA kernels of AttentionOp (compiled after common.cuh).

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
