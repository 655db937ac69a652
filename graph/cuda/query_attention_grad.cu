// query_attention_grad.cu: the CUDA kernel of QueryAttentionOp's backward pass
// (compiled after common.cuh).

// query_attention_grad writes dq [B, D] of query_attention, or with wrt_kv set its
// dkv [B*T, 2D], from q [B, D], kv [B*T, 2D] and dy [B, D]. One block per (image,
// head) pair bh = b*H + h, as the forward kernel:
//   1. one warp per token j: the score scale * q_h . k_j and g_j = dy_h . v_j;
//   2. the softmax weights p_j (block maximum, exponentials, block sum), then
//      c = sum_j p_j g_j and ds_j = p_j (g_j - c);
//   3. dq_h = scale sum_j ds_j k_j, one thread per column; or every dk_j = scale ds_j q_h
//      and dv_j = p_j dy_h, threads over (token, column).
// s [B*H, 2, T] is device scratch: the weights, then their scores' gradients.
extern "C" __global__ void query_attention_grad(float *dst, const float *q, const float *kv, const float *dy, float *s,
                                                int t, int h, int kd, float scale, int wrt_kv) {
    __shared__ float shared[WARP];
    int bh = blockIdx.x, bi = bh / h, hi = bh % h, d = h * kd;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    const float *qh = q + (idx_t)bi * d + hi * kd;
    const float *gy = dy + (idx_t)bi * d + hi * kd;
    const float *k = kv + (idx_t)bi * t * 2 * d + hi * kd; // k_j = k + j*2D, v_j = k_j + D
    float *pb = s + (idx_t)bh * 2 * t, *gb = pb + t;
    for (int j = warp; j < t; j += warps) {
        const float *kj = k + (idx_t)j * 2 * d;
        float dot = 0.f, g = 0.f;
        for (int i = lane; i < kd; i += WARP) {
            dot += qh[i] * kj[i];
            g += gy[i] * kj[d + i];
        }
        dot = warp_sum(dot);
        g = warp_sum(g);
        if (lane == 0) {
            pb[j] = dot * scale;
            gb[j] = g;
        }
    }
    __syncthreads(); // each thread reads what other warps wrote
    // From here on thread i alone touches pb[j] and gb[j] for j = i mod blockDim.x.
    float inv = block_exp(pb, t, shared), c = 0.f;
    for (int j = threadIdx.x; j < t; j += blockDim.x) {
        pb[j] *= inv;
        c += pb[j] * gb[j];
    }
    c = block_sum(c, shared);
    for (int j = threadIdx.x; j < t; j += blockDim.x) gb[j] = pb[j] * (gb[j] - c);
    __syncthreads(); // step 3 reads every token's values
    if (!wrt_kv) {
        float *dq = dst + (idx_t)bi * d + hi * kd;
        for (int i = threadIdx.x; i < kd; i += blockDim.x) {
            float acc = 0.f;
            for (int j = 0; j < t; j++) acc += gb[j] * k[(idx_t)j * 2 * d + i];
            dq[i] = scale * acc;
        }
        return;
    }
    for (int e = threadIdx.x; e < t * kd; e += blockDim.x) {
        int j = e / kd, i = e % kd;
        float *row = dst + ((idx_t)bi * t + j) * 2 * d + hi * kd;
        row[i] = scale * gb[j] * qh[i];
        row[d + i] = pb[j] * gy[i];
    }
}
