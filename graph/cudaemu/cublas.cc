// cublas.cc: the cuBLAS functions gorgoclip loads (graph/cudalib_cuda.go), on the CPU
// for the CUDA emulator (driver.cc). Each GEMM is checked as cuBLAS checks it
// (dimensions and leading dimensions), every operand must lie inside one device
// allocation, and the product is OpenBLAS's column-major SGEMM: cuBLAS's own
// convention, so the row-major mapping in gemmRM is tested, not assumed. cublasGemmEx
// (16-bit inputs, or TF32) widens its operands to float32 as a tensor core reads them
// (bfloat16 and binary16 exactly; TF32 rounded to 10 mantissa bits) and multiplies
// those with the same SGEMM.
#include <cblas.h>
#include <cublas_v2.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "emu.h"

namespace {

int token;  // the address is the one handle

bool trans(cublasOperation_t op, cublasStatus_t *st) {
    if (op != CUBLAS_OP_N && op != CUBLAS_OP_T) *st = CUBLAS_STATUS_INVALID_VALUE;
    return op == CUBLAS_OP_T;
}

// extent is how many floats a column-major rows x cols matrix with leading dimension
// ld spans.
size_t extent(int rows, int cols, int ld) { return rows == 0 || cols == 0 ? 0 : (size_t)(cols - 1) * ld + rows; }

bool inside(const char *what, int i, const void *p, size_t elems, size_t size = 4) {
    char why[256];
    if (elems == 0 || emu_device_range(p, size * elems, why, sizeof why)) return true;
    fprintf(stderr, "cudaemu: cublas GEMM operand %s of batch %d: %s\n", what, i, why);
    return false;
}

// shape is a GEMM's operands as stored: op(A) is m x k, op(B) k x n; A is stored
// k x m when transposed (ar x ac), B likewise (br x bc).
struct shape {
    bool ta, tb;
    int ar, ac, br, bc;
};

// check validates a GEMM's arguments as cuBLAS does; on success it fills s.
cublasStatus_t check(const char *fn, cublasHandle_t h, cublasOperation_t opa, cublasOperation_t opb, int m, int n,
                     int k, int lda, int ldb, int ldc, int count, shape *s) {
    if (h != (cublasHandle_t)&token) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    s->ta = trans(opa, &st), s->tb = trans(opb, &st);
    s->ar = s->ta ? k : m, s->ac = s->ta ? m : k, s->br = s->tb ? n : k, s->bc = s->tb ? k : n;
    if (st != CUBLAS_STATUS_SUCCESS || m < 0 || n < 0 || k < 0 || count < 0 || lda < (s->ar > 1 ? s->ar : 1) ||
        ldb < (s->br > 1 ? s->br : 1) || ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "cudaemu: %s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d: invalid\n", fn, m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k,
                    const float *alpha, const float *a, int lda, long long sa, const float *b, int ldb, long long sb,
                    const float *beta, float *c, int ldc, long long sc, int count) {
    shape s;
    cublasStatus_t st = check("cublasSgemm", h, opa, opb, m, n, k, lda, ldb, ldc, count, &s);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    bool ta = s.ta, tb = s.tb;
    int ar = s.ar, ac = s.ac, br = s.br, bc = s.bc;
    if (m == 0 || n == 0 || count == 0) return CUBLAS_STATUS_SUCCESS;
    for (int i = 0; i < count; i++)
        if (!inside("A", i, a + i * sa, k ? extent(ar, ac, lda) : 0) ||
            !inside("B", i, b + i * sb, k ? extent(br, bc, ldb) : 0) || !inside("C", i, c + i * sc, extent(m, n, ldc)))
            return CUBLAS_STATUS_EXECUTION_FAILED;
    emu_device_open();
    for (int i = 0; i < count; i++)
        cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, *alpha,
                    a + i * sa, lda, b + i * sb, ldb, *beta, c + i * sc, ldc);
    emu_device_close();
    return CUBLAS_STATUS_SUCCESS;
}

// widen reads element i of a GemmEx operand of type t as float32: a tensor core's
// view of it (TF32 keeps 10 mantissa bits, rounded to nearest even).
float widen(const void *p, size_t i, cudaDataType t, bool tf32) {
    unsigned u;
    float f;
    switch (t) {
    case CUDA_R_16BF:
        u = (unsigned)((const unsigned short *)p)[i] << 16;
        break;
    case CUDA_R_16F: {
        unsigned short h = ((const unsigned short *)p)[i];
        unsigned sign = (unsigned)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0) {
            f = (float)m / 16777216.f;
            return sign ? -f : f;
        }
        u = sign | (e == 31 ? 0x7f800000u | m << 13 : (e + 112) << 23 | m << 13);
        break;
    }
    default:
        f = ((const float *)p)[i];
        if (!tf32) return f;
        memcpy(&u, &f, 4);
        if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
    }
    memcpy(&f, &u, 4);
    return f;
}

// gemm_ex is cublasGemmStridedBatchedEx: A and B of one type (bfloat16, binary16, or
// float32 with the TF32 compute type), C float32, float32 accumulation.
cublasStatus_t gemm_ex(cublasHandle_t h, cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k,
                       const void *alpha, const void *a, cudaDataType at, int lda, long long sa, const void *b,
                       cudaDataType bt, int ldb, long long sb, const void *beta, void *c, cudaDataType ct, int ldc,
                       long long sc, int count, cublasComputeType_t compute) {
    if (h != (cublasHandle_t)&token) return CUBLAS_STATUS_NOT_INITIALIZED;
    bool half = at == CUDA_R_16BF || at == CUDA_R_16F;
    bool tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32 && at == CUDA_R_32F;
    if (at != bt || ct != CUDA_R_32F || !((half && compute == CUBLAS_COMPUTE_32F) || tf32)) {
        fprintf(stderr, "cudaemu: cublasGemmEx types A %d B %d C %d compute %d: not emulated\n", at, bt, ct, compute);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    shape s;
    cublasStatus_t st = check("cublasGemmEx", h, opa, opb, m, n, k, lda, ldb, ldc, count, &s);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    bool ta = s.ta, tb = s.tb;
    if (m == 0 || n == 0 || count == 0) return CUBLAS_STATUS_SUCCESS;
    size_t es = half ? 2 : 4, na = k ? extent(s.ar, s.ac, lda) : 0, nb = k ? extent(s.br, s.bc, ldb) : 0;
    const char *ca = (const char *)a, *cb = (const char *)b;
    float *fc = (float *)c;
    for (int i = 0; i < count; i++)
        if (!inside("A", i, ca + i * sa * es, na, es) || !inside("B", i, cb + i * sb * es, nb, es) ||
            !inside("C", i, fc + i * sc, extent(m, n, ldc)))
            return CUBLAS_STATUS_EXECUTION_FAILED;
    std::vector<float> wa(na), wb(nb);
    emu_device_open();
    for (int i = 0; i < count; i++) {
        for (size_t j = 0; j < na; j++) wa[j] = widen(ca + i * sa * es, j, at, tf32);
        for (size_t j = 0; j < nb; j++) wb[j] = widen(cb + i * sb * es, j, bt, tf32);
        cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                    *(const float *)alpha, wa.data(), lda, wb.data(), ldb, *(const float *)beta, fc + i * sc, ldc);
    }
    emu_device_close();
    return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = (cublasHandle_t)&token;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    return h == (cublasHandle_t)&token ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasGetVersion_v2(cublasHandle_t, int *v) {
    *v = 130000;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    if (h != (cublasHandle_t)&token) return CUBLAS_STATUS_NOT_INITIALIZED;
    return mode == CUBLAS_DEFAULT_MATH || mode == CUBLAS_TF32_TENSOR_OP_MATH ? CUBLAS_STATUS_SUCCESS
                                                                              : CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *a, int lda, const float *b, int ldb, const float *beta,
                              float *c, int ldc) {
    return gemm(h, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *a, int lda, long long sa,
                                         const float *b, int ldb, long long sb, const float *beta, float *c, int ldc,
                                         long long sc, int count) {
    return gemm(h, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, count);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *a, cudaDataType at, int lda, const void *b, cudaDataType bt,
                            int ldb, const void *beta, void *c, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t) {
    return gemm_ex(h, ta, tb, m, n, k, alpha, a, at, lda, 0, b, bt, ldb, 0, beta, c, ct, ldc, 0, 1, compute);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *a, cudaDataType at, int lda,
                                          long long sa, const void *b, cudaDataType bt, int ldb, long long sb,
                                          const void *beta, void *c, cudaDataType ct, int ldc, long long sc, int count,
                                          cublasComputeType_t compute, cublasGemmAlgo_t) {
    return gemm_ex(h, ta, tb, m, n, k, alpha, a, at, lda, sa, b, bt, ldb, sb, beta, c, ct, ldc, sc, count, compute);
}

}  // extern "C"
