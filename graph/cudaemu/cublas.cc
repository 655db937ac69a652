// cublas.cc: the cuBLAS functions gorgoclip loads (graph/cudalib_cuda.go), on the CPU
// for the CUDA emulator (driver.cc). Each GEMM is checked as cuBLAS checks it
// (dimensions and leading dimensions), every operand must lie inside one device
// allocation, and the product is OpenBLAS's column-major SGEMM: cuBLAS's own
// convention, so the row-major mapping in gemmRM is tested, not assumed.
#include <cblas.h>
#include <cublas_v2.h>
#include <stdio.h>

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

bool inside(const char *what, int i, const float *p, size_t floats) {
    char why[256];
    if (floats == 0 || emu_device_range(p, 4 * floats, why, sizeof why)) return true;
    fprintf(stderr, "cudaemu: cublasSgemm operand %s of batch %d: %s\n", what, i, why);
    return false;
}

cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t opa, cublasOperation_t opb, int m, int n, int k,
                    const float *alpha, const float *a, int lda, long long sa, const float *b, int ldb, long long sb,
                    const float *beta, float *c, int ldc, long long sc, int count) {
    if (h != (cublasHandle_t)&token) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    bool ta = trans(opa, &st), tb = trans(opb, &st);
    // op(A) is m x k, op(B) k x n; A is stored k x m when transposed.
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    if (st != CUBLAS_STATUS_SUCCESS || m < 0 || n < 0 || k < 0 || count < 0 || lda < (ar > 1 ? ar : 1) ||
        ldb < (br > 1 ? br : 1) || ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "cudaemu: cublasSgemm m=%d n=%d k=%d lda=%d ldb=%d ldc=%d: invalid\n", m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
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

}  // extern "C"
