// patch_embed.cu: the CUDA kernels of PatchEmbedOp (compiled after common.cuh).

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
