// linear.cu: the CUDA kernel of LinearOp (compiled after common.cuh).

// epilogue finishes a Linear y [n,m] in LinearOp's order: y += bias, y *= scale,
// y += res (each when not null), then the activation act (graph.Activation: 0
// identity, 1 QuickGELU x*sigmoid(1.702x), 2 erf GELU, 3 ReLU).
extern "C" __global__ void epilogue(float *y, const float *bias, const float *scale, const float *res, int n, int m,
                                    int act) {
    idx_t total = (idx_t)n * m;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (bias) v += bias[i % m];
        if (scale) v *= scale[i % m];
        if (res) v += res[i];
        if (act == 1) v = v / (1.f + expf(-1.702f * v));
        else if (act == 2) v = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
        else if (act == 3) v = fmaxf(v, 0.f);
        y[i] = v;
    }
}
