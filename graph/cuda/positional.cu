// positional.cu: the CUDA kernels of AddPositionalOp (compiled after common.cuh).

// add_positional: y [B*T, D] = x + the first T rows of pos, per sequence.
extern "C" __global__ void add_positional(float *y, const float *x, const float *pos, int n, int t, int d) {
    idx_t total = (idx_t)n * d, td = (idx_t)t * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x)
        y[i] = x[i] + pos[i % td];
}
