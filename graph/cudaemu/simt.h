// simt.h: the CUDA built-ins that the kernels in graph/cuda use, for compiling those
// kernels as host C++ (see simt.cc). Only what the kernels need is here: a kernel
// that uses anything else fails to compile in the emulator, which is the point.
#ifndef GORGOCLIP_CUDAEMU_SIMT_H
#define GORGOCLIP_CUDAEMU_SIMT_H

#include <math.h>
#include <string.h>

#define __global__
#define __device__
#define __forceinline__ inline
// Blocks run one at a time, so a function-level static is exactly one block's
// shared memory.
#define __shared__ static

struct emu_dim3 {
    unsigned x, y, z;
};

// Read through after every barrier: the barrier functions switch fibers through an
// assembly routine the compiler cannot see into, so it must reload these globals.
extern emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

void __syncthreads();
float __shfl_xor_sync(unsigned mask, float v, int lane_mask);

static inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

#endif
