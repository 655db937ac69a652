// layer_norm.cu: the CUDA kernels of LayerNormOp (compiled after common.cuh).

// row_stats: a row's mean and 1/sqrt(var+eps) over its d values (one block).
__device__ void row_stats(const float *row, int d, float eps, float *shared, float *mean, float *rstd) {
    float s = 0.f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += row[j];
    float m = block_sum(s, shared) / d;
    float ss = 0.f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float c = row[j] - m;
        ss += c * c;
    }
    *mean = m;
    *rstd = rsqrtf(block_sum(ss, shared) / d + eps);
}

// layer_norm: one block per row of x [n,d]; y = (x-mean)/sqrt(var+eps)*gain+bias.
extern "C" __global__ void layer_norm(float *y, const float *x, const float *gain, const float *bias,
                                      int n, int d, float eps) {
    __shared__ float shared[WARP];
    int r = blockIdx.x;
    if (r >= n) return;
    const float *row = x + (idx_t)r * d;
    float *out = y + (idx_t)r * d;
    float mean, inv;
    row_stats(row, d, eps, shared, &mean, &inv);
    for (int j = threadIdx.x; j < d; j += blockDim.x) out[j] = (row[j] - mean) * inv * gain[j] + bias[j];
}
