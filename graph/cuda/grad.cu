// grad.cu: the CUDA kernels of the backward ops of grad.go (compiled after common.cuh).

// sum2: y = a + b over n floats (y may be a: the running sum of sumOp).
extern "C" __global__ void sum2(float *y, const float *a, const float *b, int n) {
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < (idx_t)n; i += (idx_t)gridDim.x * blockDim.x)
        y[i] = a[i] + b[i];
}

struct plain_term {
    const float *a;
    int c;
    __device__ plain_term(const float *a, int c) : a(a), c(c) {}
    __device__ float operator()(int r, int j) const { return a[(idx_t)r * c + j]; }
};

struct product_term {
    const float *a, *b;
    int c;
    __device__ product_term(const float *a, const float *b, int c) : a(a), b(b), c(c) {}
    __device__ float operator()(int r, int j) const { return a[(idx_t)r * c + j] * b[(idx_t)r * c + j]; }
};

// col_sum: y [c] = column sums of a [n,c], or of a*b elementwise when b is not null
// (colSumOp: bias, scale and gain gradients). Blocks of 256 threads, 32 columns each.
extern "C" __global__ void col_sum(float *y, const float *a, const float *b, int n, int c) {
    if (b) column_sums(y, n, c, product_term(a, b, c));
    else column_sums(y, n, c, plain_term(a, c));
}

// scale_cols: y [n,c] = x * s[column] (scaleColsOp).
extern "C" __global__ void scale_cols(float *y, const float *x, const float *s, int n, int c) {
    idx_t total = (idx_t)n * c;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x)
        y[i] = x[i] * s[i % c];
}

// act_grad: y = dy * act'(a) over n values (actGradOp; act as in linear.cu's epilogue:
// 0 identity, 1 QuickGELU, 2 erf GELU, 3 ReLU, whose a may be its input or output).
extern "C" __global__ void act_grad(float *y, const float *a, const float *dy, int n, int act) {
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < (idx_t)n; i += (idx_t)gridDim.x * blockDim.x) {
        float x = a[i], g = 1.f;
        if (act == 1) {
            float s = 1.f / (1.f + expf(-1.702f * x));
            g = s + 1.702f * x * s * (1.f - s);
        } else if (act == 2) {
            g = 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * expf(-0.5f * x * x) * 0.39894228040143268f;
        } else if (act == 3) {
            g = x > 0.f ? 1.f : 0.f;
        }
        y[i] = dy[i] * g;
    }
}

// batch_sum: x [b*seq, d] summed over the b sequences (batchSumOp): with row < 0 every
// position into y [rows, d] (rows >= seq, the rest zero), else position row into y [d].
extern "C" __global__ void batch_sum(float *y, const float *x, int b, int seq, int rows, int row, int d) {
    idx_t total = (idx_t)(row < 0 ? rows : 1) * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        int t = row < 0 ? (int)(i / d) : row, c = i % d;
        float s = 0.f;
        if (t < seq)
            for (int bi = 0; bi < b; bi++) s += x[((idx_t)bi * seq + t) * d + c];
        y[i] = s;
    }
}

// scatter_rows: y [b*t, d] is zero but for row idx[b] (float positions, checked by the
// forward op) or fixed of each sequence, which is dy [b, d] (scatterRowsOp).
extern "C" __global__ void scatter_rows(float *y, const float *dy, const float *idx, int fixed, int b, int t, int d) {
    idx_t total = (idx_t)b * t * d;
    for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (idx_t)gridDim.x * blockDim.x) {
        idx_t row = i / d;
        int bi = row / t, ti = row % t;
        int pos = idx ? (int)idx[bi] : fixed;
        y[i] = ti == pos ? dy[(idx_t)bi * d + i % d] : 0.f;
    }
}
