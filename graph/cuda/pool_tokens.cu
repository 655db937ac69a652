// pool_tokens.cu: the CUDA kernel of PoolTokensOp (compiled after common.cuh).

// pool_tokens builds AttentionPool2d's tokens tok [B*(S+1), C] from x [B*S, C] and pos
// [S+1, C]: per image, row 0 = the mean of its S rows + pos[0], row 1+s = x[s] +
// pos[1+s]. One thread per (image, channel) walks the S rows (neighbouring threads
// read neighbouring channels) and sums them in double, as the CPU does: a float sum
// of large activations of both signs can lose the small ones entirely, and S is at
// most a few hundred, so the double additions cost nothing even where fp64 is slow.
extern "C" __global__ void pool_tokens(float *tok, const float *x, const float *pos, int b, int s, int c) {
    idx_t total = (idx_t)b * c;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int ci = i % c;
        idx_t bi = i / c;
        const float *img = x + bi * s * c + ci;
        float *out = tok + bi * (s + 1) * c + ci;
        double sum = 0.0;
        for (int r = 0; r < s; r++) {
            float v = img[(idx_t)r * c];
            sum += v;
            out[(idx_t)(r + 1) * c] = v + pos[(idx_t)(r + 1) * c + ci];
        }
        out[0] = (float)(sum / s) + pos[ci];
    }
}
