// channels_first.cu: the CUDA kernel of ChannelsFirstOp (compiled after common.cuh).

// channels_first: y [B, C*S] (NCHW) from channels-last x [B*S, C]; one thread per
// output value, so writes are coalesced. Only stage outputs read out for inspection
// go through it, never the tower's own path.
extern "C" __global__ void channels_first(float *y, const float *x, int b, int s, int c) {
    idx_t total = (idx_t)b * c * s;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int r = i % s;
        idx_t bc = i / s; // b*C + c
        int ci = bc % c;
        idx_t bi = bc / c;
        y[i] = x[(bi * s + r) * c + ci];
    }
}
