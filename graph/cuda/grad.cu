// grad.cu: the CUDA kernels of the backward ops of grad.go (compiled after common.cuh).

// sum2: y = a + b over n floats (y may be a: the running sum of sumOp).
extern "C" __global__ void sum2(float *y, const float *a, const float *b, int n) {
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < (idx_t)n; i += (idx_t)gridDim.x * blockDim.x)
        y[i] = a[i] + b[i];
}
