// query_attention.cu: the CUDA kernel of QueryAttentionOp (compiled after common.cuh).

// query_attention attends from one query per image over that image's T tokens, as
// OpenAI's AttentionPool2d does: q [B, D], kv [B*T, 2D] (each row k then v), y [B, D],
// heads of width kd (D = H*kd). One block per (image, head) pair bh = b*H + h:
//   1. scores p[j] = scale * q_h . k_j, one warp per token j (lanes split kd, a warp
//      sum finishes each dot product);
//   2. softmax over the T scores: block maximum, exponentials, block sum;
//   3. y_h = sum_j p[j] v_j / sum, one thread per output column.
// p [B*H, T] is device scratch (global memory, so T is not bounded by shared memory).
extern "C" __global__ void query_attention(float *y, const float *q, const float *kv, float *p, int t, int h, int kd,
                                           float scale) {
    __shared__ float shared[WARP];
    int bh = blockIdx.x, bi = bh / h, hi = bh % h, d = h * kd;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    const float *qh = q + (idx_t)bi * d + hi * kd;
    const float *k = kv + (idx_t)bi * t * 2 * d + hi * kd; // k_j = k + j*2D, v_j = k_j + D
    float *pb = p + (idx_t)bh * t;
    for (int j = warp; j < t; j += warps) {
        const float *kj = k + (idx_t)j * 2 * d;
        float dot = 0.f;
        for (int i = lane; i < kd; i += WARP) dot += qh[i] * kj[i];
        dot = warp_sum(dot);
        if (lane == 0) pb[j] = dot * scale;
    }
    __syncthreads(); // each thread reads scores other warps wrote
    float inv = block_exp(pb, t, shared); // its barriers also publish every pb[j]
    float *yh = y + (idx_t)bi * d + hi * kd;
    for (int i = threadIdx.x; i < kd; i += blockDim.x) {
        float acc = 0.f;
        for (int j = 0; j < t; j++) acc += pb[j] * k[(idx_t)j * 2 * d + d + i];
        yh[i] = acc * inv;
    }
}
