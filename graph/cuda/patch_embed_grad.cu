// patch_embed_grad.cu: the CUDA kernels of PatchEmbedOp's backward pass (compiled
// after common.cuh; patchify of patch_embed.cu serves it too).

// unpatchify is patchify's inverse: patch rows [B*G*G, 3*P*P] laid back into images
// px [B, 3, R, R] (R = G*P: the patches cover every pixel once).
extern "C" __global__ void unpatchify(float *px, const float *rows, int b, int r, int p) {
    int g = r / p, pp = 3 * p * p;
    idx_t total = (idx_t)b * 3 * r * r;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int x = i % r, y = (i / r) % r, c = (i / ((idx_t)r * r)) % 3;
        idx_t img = i / (3 * (idx_t)r * r);
        idx_t patch = (img * g + y / p) * g + x / p;
        px[i] = rows[patch * pp + (c * p + y % p) * p + x % p];
    }
}

// patch_rows gathers the patch rows of the token gradients dtok [B*T, D] (every row
// but each image's class row 0) into rows [B*(T-1), D].
extern "C" __global__ void patch_rows(float *rows, const float *dtok, int b, int t, int d) {
    idx_t total = (idx_t)b * (t - 1) * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        idx_t row = i / d; // image*(T-1) + patch
        rows[i] = dtok[(row + row / (t - 1) + 1) * d + i % d];
    }
}
