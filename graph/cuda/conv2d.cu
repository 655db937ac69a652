// conv2d.cu: the CUDA kernel of Conv2dOp (compiled after common.cuh).

// im2col writes the receptive fields of output pixels r0 .. r0+n-1 (numbered
// b*Ho*Wo + oy*Wo + ox) as the rows of cols [n, K*K*C], each in the weight's (ky, kx,
// c) order, with zeros where the window overhangs the image (padding). x is
// channels-last [B*H*W, C], or images [B, C*H*W] with channels_first. One warp per
// row: the row's position is divided out once, then each tap's C values are copied by
// the lanes, so channels-last reads and all writes are coalesced and the inner loop
// does no integer division (which a GPU runs as a long instruction sequence).
extern "C" __global__ void im2col(float *cols, const float *x, int r0, int n, int h, int w, int c, int k, int stride,
                                  int pad, int ho, int wo, int channels_first) {
    int lane = threadIdx.x % WARP, warps = gridDim.x * (blockDim.x / WARP);
    for (int row = (blockIdx.x * blockDim.x + threadIdx.x) / WARP; row < n; row += warps) {
        int r = r0 + row;
        int ox = r % wo, oy = (r / wo) % ho;
        idx_t b = r / (ho * wo);
        float *dst = cols + (idx_t)row * k * k * c;
        for (int ky = 0; ky < k; ky++) {
            int iy = oy * stride - pad + ky;
            for (int kx = 0; kx < k; kx++, dst += c) {
                int ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                    for (int ci = lane; ci < c; ci += WARP) dst[ci] = 0.f;
                } else if (channels_first) {
                    const float *src = x + (b * c * h + iy) * w + ix; // channel ci at src[ci*H*W]
                    for (int ci = lane; ci < c; ci += WARP) dst[ci] = src[(idx_t)ci * h * w];
                } else {
                    const float *src = x + ((b * h + iy) * w + ix) * c;
                    for (int ci = lane; ci < c; ci += WARP) dst[ci] = src[ci];
                }
            }
        }
    }
}
