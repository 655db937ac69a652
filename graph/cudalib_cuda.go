//go:build gorgoclip_cuda

package graph

// cuBLAS and NVRTC are loaded at run time (dlopen), not linked. The machine that builds
// gorgoclip has Debian's CUDA 11.8 (libcublas.so.11, libnvrtc.so.11.2, whose symbols
// carry those sonames as versions); the GPU machines have CUDA 12 or 13 (libcublas.so.13
// and libnvrtc.so.13 in PyTorch's nvidia/cu13/lib). A binary linked against either set
// would refuse to start with the other, and a link-time stub with the right soname
// only moves the problem (one binary per CUDA major, and a missing symbol would
// surface lazily in the middle of a run). Loading by name instead lets one binary use
// whichever major is installed: $GORGOCLIP_CUBLAS / $GORGOCLIP_NVRTC (full paths) when
// set, else libcublas.so.13, .12, .11 and libnvrtc.so.13, .12, .11.2 through the usual
// search path (LD_LIBRARY_PATH), and every function used is resolved when the device
// opens, so a missing one is an error there, never later. gorgonia.org/cu/blas and
// cu/nvrtc link -lcublas and -lnvrtc and so cannot be used this way; the driver API
// (libcuda.so.1, one soname for every CUDA version) comes from gorgonia.org/cu.
//
// Only the handful of functions gorgoclip calls are declared here, with the
// signatures of cublas_api.h and nvrtc.h (unchanged from CUDA 11 to 13).

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*gc_cublasCreate_t)(void **);
typedef int (*gc_cublasDestroy_t)(void *);
typedef int (*gc_cublasGetVersion_t)(void *, int *);
typedef int (*gc_cublasSetMathMode_t)(void *, int);
typedef int (*gc_cublasSgemm_t)(void *, int, int, int, int, int, const float *, const float *, int,
                                const float *, int, const float *, float *, int);
typedef int (*gc_cublasSgemmStridedBatched_t)(void *, int, int, int, int, int, const float *,
                                              const float *, int, long long, const float *, int, long long,
                                              const float *, float *, int, long long, int);
typedef int (*gc_cublasGemmEx_t)(void *, int, int, int, int, int, const void *, const void *, int, int,
                                 const void *, int, int, const void *, void *, int, int, int, int);
typedef int (*gc_cublasGemmStridedBatchedEx_t)(void *, int, int, int, int, int, const void *, const void *, int,
                                               int, long long, const void *, int, int, long long, const void *,
                                               void *, int, int, long long, int, int, int);

typedef int (*gc_nvrtcVersion_t)(int *, int *);
typedef int (*gc_nvrtcCreateProgram_t)(void **, const char *, const char *, int, const char *const *,
                                       const char *const *);
typedef int (*gc_nvrtcCompileProgram_t)(void *, int, const char *const *);
typedef int (*gc_nvrtcGetSize_t)(void *, size_t *);
typedef int (*gc_nvrtcGet_t)(void *, char *);
typedef int (*gc_nvrtcDestroyProgram_t)(void **);

static struct {
	void *cublas, *nvrtc;
	gc_cublasCreate_t create;
	gc_cublasDestroy_t destroy;
	gc_cublasGetVersion_t version;
	gc_cublasSetMathMode_t mathMode;
	gc_cublasSgemm_t sgemm;
	gc_cublasSgemmStridedBatched_t sgemmStrided;
	gc_cublasGemmEx_t gemmEx;
	gc_cublasGemmStridedBatchedEx_t gemmStridedEx;
	gc_nvrtcVersion_t nvVersion;
	gc_nvrtcCreateProgram_t nvCreate;
	gc_nvrtcCompileProgram_t nvCompile;
	gc_nvrtcGetSize_t nvLogSize, nvCubinSize, nvPtxSize;
	gc_nvrtcGet_t nvLog, nvCubin, nvPtx;
	gc_nvrtcDestroyProgram_t nvDestroy;
} gc;

// gc_open dlopens path; on failure it returns NULL and *err holds dlerror's message.
static void *gc_open(const char *path, char **err) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		*err = strdup(e ? e : "dlopen failed");
	}
	return h;
}

// gc_sym resolves name in h into *slot; it returns name when missing, else NULL.
static const char *gc_sym(void *h, const char *name, void **slot) {
	*slot = dlsym(h, name);
	return *slot ? NULL : name;
}

// gc_bind_cublas resolves the cuBLAS functions; it returns the first missing name.
static const char *gc_bind_cublas(void *h) {
	const char *m;
	gc.cublas = h;
	if ((m = gc_sym(h, "cublasCreate_v2", (void **)&gc.create))) return m;
	if ((m = gc_sym(h, "cublasDestroy_v2", (void **)&gc.destroy))) return m;
	gc_sym(h, "cublasGetVersion_v2", (void **)&gc.version); // optional: only for Device.Name
	if ((m = gc_sym(h, "cublasSetMathMode", (void **)&gc.mathMode))) return m;
	if ((m = gc_sym(h, "cublasSgemm_v2", (void **)&gc.sgemm))) return m;
	if ((m = gc_sym(h, "cublasSgemmStridedBatched", (void **)&gc.sgemmStrided))) return m;
	if ((m = gc_sym(h, "cublasGemmEx", (void **)&gc.gemmEx))) return m;
	if ((m = gc_sym(h, "cublasGemmStridedBatchedEx", (void **)&gc.gemmStridedEx))) return m;
	return NULL;
}

// gc_bind_nvrtc resolves the NVRTC functions; it returns the first missing name.
static const char *gc_bind_nvrtc(void *h) {
	const char *m;
	gc.nvrtc = h;
	if ((m = gc_sym(h, "nvrtcVersion", (void **)&gc.nvVersion))) return m;
	if ((m = gc_sym(h, "nvrtcCreateProgram", (void **)&gc.nvCreate))) return m;
	if ((m = gc_sym(h, "nvrtcCompileProgram", (void **)&gc.nvCompile))) return m;
	if ((m = gc_sym(h, "nvrtcGetProgramLogSize", (void **)&gc.nvLogSize))) return m;
	if ((m = gc_sym(h, "nvrtcGetProgramLog", (void **)&gc.nvLog))) return m;
	if ((m = gc_sym(h, "nvrtcGetCUBINSize", (void **)&gc.nvCubinSize))) return m;
	if ((m = gc_sym(h, "nvrtcGetCUBIN", (void **)&gc.nvCubin))) return m;
	if ((m = gc_sym(h, "nvrtcGetPTXSize", (void **)&gc.nvPtxSize))) return m;
	if ((m = gc_sym(h, "nvrtcGetPTX", (void **)&gc.nvPtx))) return m;
	if ((m = gc_sym(h, "nvrtcDestroyProgram", (void **)&gc.nvDestroy))) return m;
	return NULL;
}

static int gc_cublas_create(void **h) { return gc.create(h); }
static int gc_cublas_destroy(void *h) { return gc.destroy(h); }
static int gc_cublas_version(void *h, int *v) { *v = 0; return gc.version ? gc.version(h, v) : -1; }
static int gc_cublas_math_mode(void *h, int mode) { return gc.mathMode(h, mode); }

// Device addresses travel as integers: no Go pointer is ever passed here.
static int gc_sgemm(void *h, int ta, int tb, int m, int n, int k, float alpha, uint64_t a, int lda,
                    uint64_t b, int ldb, float beta, uint64_t c, int ldc) {
	return gc.sgemm(h, ta, tb, m, n, k, &alpha, (const float *)a, lda, (const float *)b, ldb, &beta,
	                (float *)c, ldc);
}

static int gc_sgemm_strided(void *h, int ta, int tb, int m, int n, int k, float alpha, uint64_t a, int lda,
                            long long sa, uint64_t b, int ldb, long long sb, float beta, uint64_t c, int ldc,
                            long long sc, int count) {
	return gc.sgemmStrided(h, ta, tb, m, n, k, &alpha, (const float *)a, lda, sa, (const float *)b, ldb, sb,
	                       &beta, (float *)c, ldc, sc, count);
}

// gc_gemm_ex is cublasGemmStridedBatchedEx (count > 1) or cublasGemmEx: A and B of
// type ab, C float32 (CUDA_R_32F), compute type compute, the default algorithm
// (tensor cores where the types allow).
static int gc_gemm_ex(void *h, int ta, int tb, int m, int n, int k, float alpha, uint64_t a, int ab, int lda,
                      long long sa, uint64_t b, int ldb, long long sb, float beta, uint64_t c, int ldc, long long sc,
                      int count, int compute) {
	const int r32f = 0, dflt = -1; // CUDA_R_32F, CUBLAS_GEMM_DEFAULT
	if (count == 1)
		return gc.gemmEx(h, ta, tb, m, n, k, &alpha, (const void *)a, ab, lda, (const void *)b, ab, ldb, &beta,
		                 (void *)c, r32f, ldc, compute, dflt);
	return gc.gemmStridedEx(h, ta, tb, m, n, k, &alpha, (const void *)a, ab, lda, sa, (const void *)b, ab, ldb, sb,
	                        &beta, (void *)c, r32f, ldc, sc, count, compute, dflt);
}

static int gc_nvrtc_version(int *major, int *minor) { return gc.nvVersion(major, minor); }

// gc_nvrtc_compile compiles src with opts; on success *out (malloc'd, *outLen bytes)
// holds a CUBIN (cubin != 0) or PTX. *log (malloc'd) always holds the compiler's log.
static int gc_nvrtc_compile(const char *src, const char *name, int nopts, const char **opts, int cubin,
                            char **out, size_t *outLen, char **log) {
	void *prog = NULL;
	int rc = gc.nvCreate(&prog, src, name, 0, NULL, NULL);
	*out = NULL;
	*outLen = 0;
	*log = NULL;
	if (rc != 0) return rc;
	rc = gc.nvCompile(prog, nopts, opts);
	size_t n = 0;
	if (gc.nvLogSize(prog, &n) == 0 && n > 0) {
		*log = malloc(n + 1);
		if (gc.nvLog(prog, *log) != 0) (*log)[0] = 0;
		(*log)[n] = 0;
	}
	if (rc == 0) {
		rc = cubin ? gc.nvCubinSize(prog, &n) : gc.nvPtxSize(prog, &n);
		if (rc == 0) {
			*out = malloc(n + 1);
			rc = cubin ? gc.nvCubin(prog, *out) : gc.nvPtx(prog, *out);
			*outLen = n;
		}
	}
	gc.nvDestroy(&prog);
	return rc;
}

// gc_ptr turns a device address into a pointer for a Go slice header that host code
// never dereferences.
static void *gc_ptr(uint64_t p) { return (void *)(uintptr_t)p; }
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

var (
	libOnce sync.Once
	libErr  error
	// libNames records which files were loaded, for Device.Name.
	libNames [2]string
)

// loadLibs dlopens cuBLAS and NVRTC once per process.
func loadLibs() error {
	libOnce.Do(func() {
		bind := []func(unsafe.Pointer) *C.char{
			func(h unsafe.Pointer) *C.char { return C.gc_bind_cublas(h) },
			func(h unsafe.Pointer) *C.char { return C.gc_bind_nvrtc(h) },
		}
		for i, lib := range []struct {
			env, what string
			names     []string
		}{
			{"GORGOCLIP_CUBLAS", "cuBLAS", []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}},
			{"GORGOCLIP_NVRTC", "NVRTC", []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}},
		} {
			names := lib.names
			if p := os.Getenv(lib.env); p != "" {
				names = []string{p}
			}
			var tried []string
			var h unsafe.Pointer
			for _, n := range names {
				cn := C.CString(n)
				var cerr *C.char
				h = C.gc_open(cn, &cerr)
				C.free(unsafe.Pointer(cn))
				if h != nil {
					libNames[i] = n
					break
				}
				tried = append(tried, C.GoString(cerr))
				C.free(unsafe.Pointer(cerr))
			}
			if h == nil {
				libErr = fmt.Errorf("graph: cannot load %s (set LD_LIBRARY_PATH or $%s): %s", lib.what, lib.env, strings.Join(tried, "; "))
				return
			}
			if missing := bind[i](h); missing != nil {
				libErr = fmt.Errorf("graph: %s (%s) lacks %s", lib.what, libNames[i], C.GoString(missing))
				return
			}
		}
	})
	return libErr
}

// cublasHandle is a cuBLAS handle (cublasHandle_t).
type cublasHandle unsafe.Pointer

func cublasCreate(tf32 bool) (cublasHandle, int, error) {
	var h unsafe.Pointer
	if rc := C.gc_cublas_create(&h); rc != 0 {
		return nil, 0, fmt.Errorf("cublasCreate: status %d", rc)
	}
	var v C.int
	C.gc_cublas_version(h, &v)
	mode := C.int(0) // CUBLAS_DEFAULT_MATH: exact fp32, what PyTorch uses unless told otherwise
	if tf32 {
		mode = 3 // CUBLAS_TF32_TENSOR_OP_MATH
	}
	if rc := C.gc_cublas_math_mode(h, mode); rc != 0 {
		C.gc_cublas_destroy(h)
		return nil, 0, fmt.Errorf("cublasSetMathMode: status %d", rc)
	}
	return cublasHandle(h), int(v), nil
}

func cublasDestroy(h cublasHandle) { C.gc_cublas_destroy(unsafe.Pointer(h)) }

// op returns cublasOperation_t for a transpose flag (CUBLAS_OP_N 0, CUBLAS_OP_T 1).
func op(t bool) C.int {
	if t {
		return 1
	}
	return 0
}

// gemmRM computes the row-major C [m,n] = alpha op(A) op(B) + beta C on device
// addresses, batched over count matrices sa, sb, sc floats apart (count 1: one GEMM).
// cuBLAS is column-major, and a row-major X is the column-major Xᵀ with the same
// leading dimension, so it computes Cᵀ = op(B)ᵀ op(A)ᵀ: the operands swap, the
// transpose flags and leading dimensions stay.
func gemmRM(h cublasHandle, ta, tb bool, m, n, k int, alpha float32, a uintptr, lda int, sa int,
	b uintptr, ldb int, sb int, beta float32, c uintptr, ldc int, sc int, count int) error {
	var rc C.int
	if count == 1 {
		rc = C.gc_sgemm(unsafe.Pointer(h), op(tb), op(ta), C.int(n), C.int(m), C.int(k), C.float(alpha),
			C.uint64_t(b), C.int(ldb), C.uint64_t(a), C.int(lda), C.float(beta), C.uint64_t(c), C.int(ldc))
	} else {
		rc = C.gc_sgemm_strided(unsafe.Pointer(h), op(tb), op(ta), C.int(n), C.int(m), C.int(k), C.float(alpha),
			C.uint64_t(b), C.int(ldb), C.longlong(sb), C.uint64_t(a), C.int(lda), C.longlong(sa),
			C.float(beta), C.uint64_t(c), C.int(ldc), C.longlong(sc), C.int(count))
	}
	if rc != 0 {
		return fmt.Errorf("cublasSgemm (m=%d n=%d k=%d batch=%d): status %d", m, n, k, count, rc)
	}
	return nil
}

// cuBLAS's data and compute types for gemmExRM (library_types.h, cublas_api.h).
const (
	cudaR32F    = 0  // CUDA_R_32F
	cudaR16F    = 2  // CUDA_R_16F
	cudaR16BF   = 14 // CUDA_R_16BF
	compute32F  = 68 // CUBLAS_COMPUTE_32F: float32 accumulation
	computeTF32 = 77 // CUBLAS_COMPUTE_32F_FAST_TF32: float32 inputs on TF32 tensor cores
)

// gemmExRM is gemmRM through cublasGemmEx: A and B of data type ab (cudaR16BF,
// cudaR16F or cudaR32F; sa and sb count elements), C float32, accumulated as compute
// says (compute32F, or computeTF32 with ab cudaR32F). cuBLAS runs 16-bit inputs and
// TF32 on tensor cores.
func gemmExRM(h cublasHandle, ab, compute int, ta, tb bool, m, n, k int, alpha float32, a uintptr, lda int, sa int,
	b uintptr, ldb int, sb int, beta float32, c uintptr, ldc int, sc int, count int) error {
	rc := C.gc_gemm_ex(unsafe.Pointer(h), op(tb), op(ta), C.int(n), C.int(m), C.int(k), C.float(alpha),
		C.uint64_t(b), C.int(ab), C.int(ldb), C.longlong(sb), C.uint64_t(a), C.int(lda), C.longlong(sa),
		C.float(beta), C.uint64_t(c), C.int(ldc), C.longlong(sc), C.int(count), C.int(compute))
	if rc != 0 {
		return fmt.Errorf("cublasGemmEx (type %d, compute %d, m=%d n=%d k=%d batch=%d): status %d", ab, compute, m, n, k, count, rc)
	}
	return nil
}

func nvrtcVersion() string {
	var major, minor C.int
	C.gc_nvrtc_version(&major, &minor)
	return fmt.Sprintf("%d.%d", major, minor)
}

// nvrtcCompile compiles CUDA C src for the GPU architecture arch ("sm_90"): a CUBIN
// when cubin, else PTX for "compute_90" (which the driver then compiles when loading).
func nvrtcCompile(src, name, arch string, cubin bool) ([]byte, error) {
	// No --std: the source is plain C in extern "C" kernels, and NVRTC 13 accepts fewer
	// dialects than 11 (its default, C++17, compiles it everywhere).
	opts := []string{"--gpu-architecture=" + arch}
	copts := C.malloc(C.size_t(len(opts)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(copts)
	ptrs := unsafe.Slice((**C.char)(copts), len(opts))
	for i, o := range opts {
		ptrs[i] = C.CString(o)
		defer C.free(unsafe.Pointer(ptrs[i]))
	}
	csrc, cname := C.CString(src), C.CString(name)
	defer C.free(unsafe.Pointer(csrc))
	defer C.free(unsafe.Pointer(cname))
	var out, log *C.char
	var n C.size_t
	cb := C.int(0)
	if cubin {
		cb = 1
	}
	rc := C.gc_nvrtc_compile(csrc, cname, C.int(len(opts)), (**C.char)(copts), cb, &out, &n, &log)
	msg := ""
	if log != nil {
		msg = strings.TrimSpace(C.GoString(log))
		C.free(unsafe.Pointer(log))
	}
	if out != nil {
		defer C.free(unsafe.Pointer(out))
	}
	if rc != 0 {
		return nil, fmt.Errorf("NVRTC %s (%s) compiling %s for %s: error %d: %s", nvrtcVersion(), libNames[1], name, arch, rc, msg)
	}
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// deviceSlice is n float32s at device address p, as a slice for tensor.Dense to carry.
// Host code must never index it; addrOf turns it back into the address.
func deviceSlice(p uintptr, n int) []float32 {
	return unsafe.Slice((*float32)(C.gc_ptr(C.uint64_t(p))), n)
}

// addrOf is the address of data's first element.
func addrOf(data []float32) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(data))) }
