// conv2d_grad.cu: the CUDA kernels of the backward ops of op_conv2d_grad.go
// (conv2dGradOp, avgPoolGradOp, poolTokensGradOp, channelsLastOp; compiled after
// common.cuh and conv2d.cu, whose im2col the weight gradient reuses).

// col2im: im2col's adjoint, for the images b0 .. b0+nb-1 that the chunk of output
// pixels r0 .. r0+n-1 touches. cols [n, K*K*C] holds the gradients of the chunk's
// receptive fields (rows as im2col writes them); dx is channels-last [B*H*W, C], or
// images [B, C*H*W] with channels_first. A gather, not a scatter: one thread per
// input value sums the taps of the chunk's windows that cover it, so every value is
// written by one thread and the sum is race-free and deterministic without atomics.
// The chunk holding an image's first output pixel writes that image's values (zero
// where no window covers them); later chunks add to them, so dx needs no clearing.
extern "C" __global__ void col2im(float *dx, const float *cols, int r0, int n, int h, int w, int c, int k,
                                  int stride, int pad, int ho, int wo, int channels_first, int b0, int nb) {
    idx_t total = (idx_t)nb * c * h * w, hw = (idx_t)h * w;
    idx_t kkc = (idx_t)k * k * c, per = (idx_t)ho * wo;
    float *img0 = dx + (idx_t)b0 * c * hw;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int ix, iy, ci;
        idx_t b;
        if (channels_first) {
            ix = i % w, iy = (i / w) % h, ci = (i / hw) % c, b = b0 + i / (c * hw);
        } else {
            ci = i % c;
            idx_t pix = i / c;
            ix = pix % w, iy = (pix / w) % h, b = b0 + pix / hw;
        }
        // The windows covering (iy, ix): oy*stride - pad <= iy < oy*stride - pad + K.
        int ty = iy + pad - k + 1, tx = ix + pad - k + 1;
        int oy0 = ty > 0 ? (ty + stride - 1) / stride : 0, oy1 = (iy + pad) / stride;
        int ox0 = tx > 0 ? (tx + stride - 1) / stride : 0, ox1 = (ix + pad) / stride;
        if (oy1 >= ho) oy1 = ho - 1;
        if (ox1 >= wo) ox1 = wo - 1;
        float acc = 0.f;
        for (int oy = oy0; oy <= oy1; oy++) {
            int ky = iy + pad - oy * stride;
            for (int ox = ox0; ox <= ox1; ox++) {
                idx_t r = b * per + (idx_t)oy * wo + ox;
                if (r < (idx_t)r0 || r >= (idx_t)r0 + n) continue;
                int kx = ix + pad - ox * stride;
                acc += cols[(r - r0) * kkc + (idx_t)(ky * k + kx) * c + ci];
            }
        }
        if (b * per >= (idx_t)r0)
            img0[i] = acc;
        else
            img0[i] += acc;
    }
}

// avg_pool_grad: dx [B*H*W, C] from dy [B*(H/K)*(W/K), C]: each window's gradient
// over K*K, spread over its inputs; inputs beyond the last whole window get zero.
extern "C" __global__ void avg_pool_grad(float *dx, const float *dy, int b, int h, int w, int c, int k) {
    int ho = h / k, wo = w / k;
    idx_t total = (idx_t)b * h * w * c;
    float inv = 1.f / (float)(k * k);
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int ci = i % c;
        idx_t r = i / c; // input pixel b*H*W + y*W + x
        int x = r % w, y = (r / w) % h;
        idx_t bi = r / ((idx_t)h * w);
        dx[i] = y / k < ho && x / k < wo ? dy[((bi * ho + y / k) * wo + x / k) * c + ci] * inv : 0.f;
    }
}

// pool_tokens_grad: dx [B*S, C] from dtok [B*(S+1), C]: each spatial row's own token
// gradient plus 1/S of its image's mean token's.
extern "C" __global__ void pool_tokens_grad(float *dx, const float *dtok, int b, int s, int c) {
    idx_t total = (idx_t)b * s * c;
    float inv = 1.f / (float)s;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int ci = i % c;
        idx_t row = i / c; // b*S + r
        idx_t bi = row / s;
        const float *tok = dtok + bi * (s + 1) * c;
        dx[i] = tok[(row - bi * s + 1) * c + ci] + tok[ci] * inv;
    }
}

// channels_last: y [B*S, C] from images x [B, C*S] (channels_first's inverse); one
// thread per output value, so writes are coalesced.
extern "C" __global__ void channels_last(float *y, const float *x, int b, int s, int c) {
    idx_t total = (idx_t)b * s * c;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int ci = i % c;
        idx_t row = i / c; // b*S + r
        idx_t bi = row / s;
        y[i] = x[(bi * c + ci) * s + (row - bi * s)];
    }
}
