// avg_pool.cu: the CUDA kernel of AvgPoolOp (compiled after common.cuh).

// avg_pool: y [B*Ho*Wo, C] is the mean of each K x K window (stride K, no padding,
// floor mode: Ho = H/K, Wo = W/K) of channels-last x [B*H*W, C]; one thread per
// output value, summing in the CPU's order (dy, then dx).
extern "C" __global__ void avg_pool(float *y, const float *x, int b, int h, int w, int c, int k) {
    int ho = h / k, wo = w / k;
    idx_t total = (idx_t)b * ho * wo * c;
    float inv = 1.f / (float)(k * k);
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int ci = i % c;
        idx_t r = i / c; // output pixel b*Ho*Wo + oy*Wo + ox
        int ox = r % wo, oy = (r / wo) % ho;
        idx_t bi = r / ((idx_t)ho * wo);
        const float *src = x + ((bi * h + oy * k) * w + ox * k) * c + ci;
        float s = 0.f;
        for (int dy = 0; dy < k; dy++)
            for (int dx = 0; dx < k; dx++) s += src[((idx_t)dy * w + dx) * c];
        y[i] = s * inv;
    }
}
