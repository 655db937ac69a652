// conv2d.cu: the CUDA kernel of Conv2dOp (compiled after common.cuh).

// im2col writes the receptive fields of output pixels r0 .. r0+n-1 (numbered
// b*Ho*Wo + oy*Wo + ox) as the rows of cols [n, K*K*C], each in the weight's (ky, kx,
// c) order, with zeros where the window overhangs the image (padding). x is
// channels-last [B*H*W, C], or images [B, C*H*W] with channels_first. Consecutive
// threads take consecutive channels of one tap, so channels-last reads are
// coalesced. The Go side keeps n*K*K*C below 2^31, so the loop counts in 32 bits.
extern "C" __global__ void im2col(float *cols, const float *x, int r0, int n, int h, int w, int c, int k, int stride,
                                  int pad, int ho, int wo, int channels_first) {
    int kkc = k * k * c;
    int total = n * kkc;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int e = i % kkc, tap = e / c, ci = e % c;
        int r = r0 + i / kkc;
        int ox = r % wo, oy = (r / wo) % ho;
        idx_t b = r / (ho * wo);
        int iy = oy * stride - pad + tap / k, ix = ox * stride - pad + tap % k;
        float v = 0.f;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w)
            v = channels_first ? x[((b * c + ci) * h + iy) * w + ix] : x[((b * h + iy) * w + ix) * c + ci];
        cols[i] = v;
    }
}
