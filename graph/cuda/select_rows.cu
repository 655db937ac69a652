// select_rows.cu: the CUDA kernels of SelectRowsOp (compiled after common.cuh).

// select_rows: y [B, D] = x [B*T, D] at position idx[b] (float positions, from the
// device) or fixed when idx is null. A position outside [0,T) or not an integer
// yields a row of NaN, so that a bad input can never pass for a result.
extern "C" __global__ void select_rows(float *y, const float *x, const float *idx, int fixed, int b, int t, int d) {
    idx_t total = (idx_t)b * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int bi = i / d, c = i % d;
        int pos = fixed;
        if (idx) {
            float f = idx[bi];
            pos = (f >= 0.f && f < (float)t && f == floorf(f)) ? (int)f : -1;
        }
        y[i] = pos < 0 ? __int_as_float(0x7fc00000) : x[((idx_t)bi * t + pos) * d + c];
    }
}
