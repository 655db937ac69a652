// layer_norm_grad.cu: the CUDA kernels of LayerNorm's backward ops (compiled after
// common.cuh and layer_norm.cu, whose row_stats they use).

// layer_norm_grad: one block per row; with xhat = (x-mean)*rstd and g = dy*gain,
// dx = rstd * (g - mean(g) - xhat*mean(g*xhat)).
extern "C" __global__ void layer_norm_grad(float *dx, const float *x, const float *gain, const float *dy, int n, int d,
                                           float eps) {
    __shared__ float shared[WARP];
    int r = blockIdx.x;
    if (r >= n) return;
    const float *row = x + (idx_t)r * d, *drow = dy + (idx_t)r * d;
    float mean, rstd;
    row_stats(row, d, eps, shared, &mean, &rstd);
    float sg = 0.f, sgx = 0.f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float g = drow[j] * gain[j];
        sg += g;
        sgx += g * (row[j] - mean) * rstd;
    }
    sg = block_sum(sg, shared) / d;
    sgx = block_sum(sgx, shared) / d;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float xh = (row[j] - mean) * rstd;
        dx[(idx_t)r * d + j] = rstd * (drow[j] * gain[j] - sg - xh * sgx);
    }
}

// layer_norm_stats: stats [n,2] = each row's mean and rstd (one block per row).
extern "C" __global__ void layer_norm_stats(float *stats, const float *x, int n, int d, float eps) {
    __shared__ float shared[WARP];
    int r = blockIdx.x;
    if (r >= n) return;
    float mean, rstd;
    row_stats(x + (idx_t)r * d, d, eps, shared, &mean, &rstd);
    if (threadIdx.x == 0) {
        stats[2 * r] = mean;
        stats[2 * r + 1] = rstd;
    }
}

struct xhat_term {
    const float *x, *dy, *stats;
    int d;
    __device__ xhat_term(const float *x, const float *dy, const float *stats, int d) : x(x), dy(dy), stats(stats), d(d) {}
    __device__ float operator()(int r, int j) const {
        idx_t i = (idx_t)r * d + j;
        return dy[i] * (x[i] - stats[2 * r]) * stats[2 * r + 1];
    }
};

// layer_norm_gain_grad: dgain [d] = column sums of dy * xhat, from layer_norm_stats'
// stats (blocks of 256 threads, 32 columns each, as col_sum).
extern "C" __global__ void layer_norm_gain_grad(float *dgain, const float *x, const float *dy, const float *stats, int n,
                                                int d) {
    column_sums(dgain, n, d, xhat_term(x, dy, stats, d));
}
