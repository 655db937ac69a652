// driver.cc: a CUDA driver (libcuda.so.1) that runs on the CPU, so that the CUDA build
// of gorgoclip (bin/cuda-*.test, bin/gorgoclip-cuda) can be run on machines without a
// GPU, CI included: make cuda-emu. It stands in for the NVIDIA driver only; the Go
// code, gorgonia.org/cu, the real NVRTC (Debian's CUDA 11.8, which compiles
// the kernels of graph/cuda for the emulated sm_90) and the binaries are the ones that run
// on a GPU. What it checks that a unit test on the CPU cannot:
//
//   - the kernels, compiled for the host from the same graph/cuda sources (simt.cc), run
//     with CUDA's threads, blocks, warps, shared memory and barriers, with each
//     parameter read from cuLaunchKernel's array exactly as the driver reads it;
//   - the CUBIN NVRTC made is for this device's architecture and defines every kernel
//     the Go side asks for;
//   - every copy and every cuBLAS operand lies inside one allocation, a kernel that
//     runs past the end of an allocation faults (a guard page follows each), and new
//     allocations hold NaN rather than zeros;
//   - host code never touches device memory: allocations are mapped PROT_NONE except
//     while the driver or cuBLAS (cublas.cc) works on them, so a host read crashes.
//     Each call then changes the protection of every page of device memory (13 ms per
//     350 MB on a CI-sized VM, dearer than the work itself for ViT-B/32), so
//     CUDAEMU_PROTECT=0 turns this check off for tests of big models.
//
// Anything else gorgonia.org/cu links is a stub (stubs.c, generated) that prints its
// name and returns CUDA_ERROR_NOT_SUPPORTED. Set CUDAEMU_VERBOSE=1 for a count of
// launches, copies and bytes at exit.
#include <cuda.h>
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "emu.h"

namespace {

const int CC_MAJOR = 9, CC_MINOR = 0;  // sm_90, what NVRTC 11.8 compiles for
const int SMS = 4;
const size_t TOTAL_MEM = size_t(16) << 30;

struct Alloc {
    char *map;       // guard page, data pages, guard page
    size_t maplen;
    char *data;      // the allocation ends at the second guard page
    size_t bytes;
};

std::recursive_mutex mu;
std::map<uintptr_t, Alloc> allocs;  // by data address
int opened;                         // nesting of emu_device_open
bool guard = true;                  // CUDAEMU_PROTECT: device memory is PROT_NONE between calls
size_t used;
long page;

struct Stats {
    std::atomic<long> launches{0}, h2d{0}, d2h{0}, d2d{0}, hbytes{0}, dbytes{0}, allocs{0};
} stats;

int ctxToken;  // the address is the one context
thread_local CUcontext current;

struct Module {
    std::string image;
    bool cubin;
};

struct Function {
    std::string name;
    emu_kernel kernel;
};

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("cudaemu: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void protect(const Alloc &a, int prot) {
    size_t span = a.maplen - 2 * page;
    if (mprotect(a.map + page, span, prot) != 0) {
        perror("cudaemu: mprotect");
        abort();
    }
}

// find returns the allocation holding p, or NULL.
const Alloc *find(uintptr_t p) {
    auto it = allocs.upper_bound(p);
    if (it == allocs.begin()) return NULL;
    --it;
    const Alloc &a = it->second;
    return p < (uintptr_t)a.data + a.bytes ? &a : NULL;
}

CUresult checkRange(const char *what, uintptr_t p, size_t bytes) {
    char why[256];
    if (emu_device_range((const void *)p, bytes, why, sizeof why)) return CUDA_SUCCESS;
    say("%s: %s", what, why);
    return CUDA_ERROR_INVALID_VALUE;
}

void report() {
    if (!getenv("CUDAEMU_VERBOSE")) return;
    say("%ld launches, %ld allocations; copies: %ld in, %ld out (%ld bytes), %ld device to device (%ld bytes)",
        stats.launches.load(), stats.allocs.load(), stats.h2d.load(), stats.d2h.load(), stats.hbytes.load(),
        stats.d2d.load(), stats.dbytes.load());
}

}  // namespace

extern "C" {

EMU_API void emu_device_open(void) {
    mu.lock();
    if (opened++ == 0 && guard)
        for (auto &e : allocs) protect(e.second, PROT_READ | PROT_WRITE);
}

EMU_API void emu_device_close(void) {
    if (--opened == 0 && guard)
        for (auto &e : allocs) protect(e.second, PROT_NONE);
    mu.unlock();
}

EMU_API int emu_device_range(const void *p, size_t bytes, char *why, size_t n) {
    std::lock_guard<std::recursive_mutex> l(mu);
    const Alloc *a = find((uintptr_t)p);
    if (!a) {
        snprintf(why, n, "%p is not device memory", p);
        return 0;
    }
    size_t off = (uintptr_t)p - (uintptr_t)a->data;
    if (bytes > a->bytes - off) {
        snprintf(why, n, "%zu bytes at offset %zu of a %zu-byte allocation", bytes, off, a->bytes);
        return 0;
    }
    return 1;
}

int emu_unimplemented(const char *name) {
    say("%s is not emulated", name);
    return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult cuInit(unsigned int flags) {
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    page = sysconf(_SC_PAGESIZE);
    const char *p = getenv("CUDAEMU_PROTECT");
    guard = !(p && strcmp(p, "0") == 0);
    static std::once_flag once;
    std::call_once(once, [] { atexit(report); });
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *v) {
    *v = 13000;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *n) {
    *n = 1;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ord) {
    if (ord != 0) return CUDA_ERROR_INVALID_DEVICE;
    *d = 0;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    snprintf(name, len, "gorgoclip cudaemu (CPU)");
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute attr, CUdevice d) {
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    switch (attr) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = CC_MAJOR; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = CC_MINOR; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = SMS; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
    default:
        say("device attribute %d is not emulated", (int)attr);
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(size_t *bytes, CUdevice d) {
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = TOTAL_MEM;
    return CUDA_SUCCESS;
}

CUresult cuMemGetInfo(size_t *free, size_t *total) {
    std::lock_guard<std::recursive_mutex> l(mu);
    *total = TOTAL_MEM;
    *free = TOTAL_MEM - used;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice d) {
    if (d != 0) return CUDA_ERROR_INVALID_DEVICE;
    *ctx = (CUcontext)&ctxToken;
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice d) { return d == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE; }

CUresult cuCtxSetCurrent(CUcontext ctx) {
    if (ctx && ctx != (CUcontext)&ctxToken) return CUDA_ERROR_INVALID_CONTEXT;
    current = ctx;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *ctx) {
    *ctx = current;
    return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice *d) {
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    *d = 0;
    return CUDA_SUCCESS;
}

// Work runs when issued, so there is never anything to wait for.
CUresult cuCtxSynchronize(void) { return current ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT; }

CUresult cuMemAlloc(CUdeviceptr *p, size_t bytes) {
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::recursive_mutex> l(mu);
    if (bytes > TOTAL_MEM - used) return CUDA_ERROR_OUT_OF_MEMORY;
    size_t span = (bytes + page - 1) / page * page;
    Alloc a;
    a.maplen = span + 2 * page;
    a.map = (char *)mmap(NULL, a.maplen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a.map == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    // End exactly at the trailing guard page (4-byte aligned: float data).
    a.data = (char *)(((uintptr_t)a.map + page + span - bytes) & ~(uintptr_t)3);
    a.bytes = bytes;
    protect(a, PROT_READ | PROT_WRITE);
    memset(a.data, 0xff, bytes);  // NaN as float: nothing may rely on zeroed memory
    if (opened == 0 && guard) protect(a, PROT_NONE);
    allocs[(uintptr_t)a.data] = a;
    used += bytes;
    stats.allocs++;
    *p = (CUdeviceptr)a.data;
    return CUDA_SUCCESS;
}

CUresult cuMemFree(CUdeviceptr p) {
    std::lock_guard<std::recursive_mutex> l(mu);
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end()) {
        say("cuMemFree(%#llx): not an allocation", (unsigned long long)p);
        return CUDA_ERROR_INVALID_VALUE;
    }
    munmap(it->second.map, it->second.maplen);
    used -= it->second.bytes;
    allocs.erase(it);
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t bytes) {
    if (CUresult r = checkRange("cuMemcpyHtoD destination", dst, bytes)) return r;
    emu_device_open();
    memcpy((void *)dst, src, bytes);
    emu_device_close();
    stats.h2d++;
    stats.hbytes += bytes;
    return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH(void *dst, CUdeviceptr src, size_t bytes) {
    if (CUresult r = checkRange("cuMemcpyDtoH source", src, bytes)) return r;
    emu_device_open();
    memcpy(dst, (const void *)src, bytes);
    emu_device_close();
    stats.d2h++;
    stats.hbytes += bytes;
    return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoD(CUdeviceptr dst, CUdeviceptr src, size_t bytes) {
    if (CUresult r = checkRange("cuMemcpyDtoD destination", dst, bytes)) return r;
    if (CUresult r = checkRange("cuMemcpyDtoD source", src, bytes)) return r;
    emu_device_open();
    memmove((void *)dst, (const void *)src, bytes);
    emu_device_close();
    stats.d2d++;
    stats.dbytes += bytes;
    return CUDA_SUCCESS;
}

// cuModuleLoadData takes a CUBIN for sm_90 or PTX for compute_90 or older, as the
// driver of an sm_90 GPU would.
CUresult cuModuleLoadData(CUmodule *m, const void *image) {
    const unsigned char *b = (const unsigned char *)image;
    Module *mod = new Module;
    if (memcmp(b, ELFMAG, SELFMAG) == 0) {
        const Elf64_Ehdr *h = (const Elf64_Ehdr *)b;
        if (b[EI_CLASS] != ELFCLASS64 || h->e_machine != 190 /* EM_CUDA */) {
            say("cuModuleLoadData: an ELF file, but not a 64-bit CUBIN");
            delete mod;
            return CUDA_ERROR_INVALID_IMAGE;
        }
        int sm = h->e_flags & 0xff;
        if (sm != CC_MAJOR * 10 + CC_MINOR) {
            say("cuModuleLoadData: CUBIN for sm_%d on an sm_%d%d device", sm, CC_MAJOR, CC_MINOR);
            delete mod;
            return CUDA_ERROR_NO_BINARY_FOR_GPU;
        }
        size_t n = h->e_shoff + (size_t)h->e_shnum * h->e_shentsize;
        size_t ph = h->e_phoff + (size_t)h->e_phnum * h->e_phentsize;
        mod->image.assign((const char *)b, n > ph ? n : ph);
        mod->cubin = true;
    } else {
        const char *ptx = (const char *)image;
        const char *target = strstr(ptx, ".target sm_");
        if (!target) {
            say("cuModuleLoadData: neither a CUBIN nor PTX with a .target");
            delete mod;
            return CUDA_ERROR_INVALID_IMAGE;
        }
        if (atoi(target + strlen(".target sm_")) > CC_MAJOR * 10 + CC_MINOR) {
            say("cuModuleLoadData: PTX for a newer GPU than sm_%d%d", CC_MAJOR, CC_MINOR);
            delete mod;
            return CUDA_ERROR_NO_BINARY_FOR_GPU;
        }
        mod->image = ptx;
        mod->cubin = false;
    }
    *m = (CUmodule)mod;
    return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule m) {
    delete (Module *)m;
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
    const Module *mod = (const Module *)m;
    // The CUBIN's string table holds "\0name\0"; PTX has ".entry name(".
    std::string needle = mod->cubin ? std::string(1, '\0') + name + std::string(1, '\0') : std::string(".entry ") + name + "(";
    if (mod->image.find(needle) == std::string::npos) {
        say("cuModuleGetFunction: the module has no kernel %s", name);
        return CUDA_ERROR_NOT_FOUND;
    }
    emu_kernel k = emu_find_kernel(name);
    if (!k) {
        say("cuModuleGetFunction: kernel %s is in the module but not in the emulator's build of "
            "graph/cuda (rebuild it: make cuda-emu)",
            name);
        return CUDA_ERROR_NOT_FOUND;
    }
    *f = (CUfunction) new Function{name, k};
    return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream stream, void **params, void **extra) {
    const Function *fn = (const Function *)f;
    if (!current) return CUDA_ERROR_INVALID_CONTEXT;
    if (gy != 1 || gz != 1 || by != 1 || bz != 1 || extra || shared != 0 || stream) {
        say("%s: only one-dimensional launches with static shared memory on the default stream are emulated",
            fn->name.c_str());
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (gx == 0 || gx > 0x7fffffffu || bx == 0 || bx > 1024) {
        say("%s: grid %u, block %u", fn->name.c_str(), gx, bx);
        return CUDA_ERROR_INVALID_VALUE;
    }
    emu_device_open();
    const char *err = emu_run(fn->name.c_str(), fn->kernel, params, gx, bx);
    emu_device_close();
    stats.launches++;
    if (err) {
        say("%s", err);
        return CUDA_ERROR_LAUNCH_FAILED;
    }
    return CUDA_SUCCESS;
}

}  // extern "C"
