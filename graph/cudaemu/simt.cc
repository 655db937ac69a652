// simt.cc: the CUDA kernels (graph/cuda/common.cuh and every op's graph/cuda/*.cu,
// concatenated by the Makefile into kernels.cu, as the device concatenates them for
// NVRTC) compiled for the host, and the SIMT machine that runs
// it. Each CUDA thread of a block is a fiber (its own stack, switched by emu_swap
// below); a fiber runs until it reaches __syncthreads or a warp shuffle. The scheduler
// runs one warp at a time as far as it can go (through its shuffles, up to the next
// __syncthreads), then the next, and releases __syncthreads once every live thread of
// the block has reached it. Blocks run one after another. Divergent barriers, shuffles
// after lanes have exited and partial shuffle masks are launch errors, not hangs.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <utility>

#include "emu.h"
#include "simt.h"

// Nothing here is for other libraries: the kernels' names must not clash with a
// program's own symbols.
#pragma GCC visibility push(hidden)

emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

#include "kernels.cu"  // generated: bin/cudaemu/kernels.cu

namespace {

// arg reads parameter i as cuLaunchKernel does: sizeof(T) bytes from params[i].
template <typename T>
T arg(void **params, int i) {
    T v;
    memcpy(&v, params[i], sizeof v);
    return v;
}

template <typename... A, size_t... I>
void invoke(void (*k)(A...), void **params, std::index_sequence<I...>) {
    k(arg<A>(params, I)...);
}

template <typename... A>
void invoke(void (*k)(A...), void **params) {
    invoke(k, params, std::index_sequence_for<A...>{});
}

#define KERNEL(name) {#name, [](void **p) { invoke(name, p); }}

const struct {
    const char *name;
    emu_kernel fn;
} kernels[] = {
#include "kernel_table.inc"  // generated: KERNEL(name), for every __global__ in kernels.cu
};

}  // namespace

extern "C" emu_kernel emu_find_kernel(const char *name) {
    for (auto &k : kernels)
        if (strcmp(k.name, name) == 0) return k.fn;
    return NULL;
}

// emu_swap(save, load) saves the callee-saved registers on the current stack, stores
// the stack pointer in *save, and resumes the context whose stack pointer is load
// (x86-64 System V). MXCSR and the x87 control word are not switched: no kernel
// changes them, and ldmxcsr made switching a third slower.
extern "C" void emu_swap(void **save, void *load);
asm(R"(
    .text
    .globl emu_swap
    .hidden emu_swap
    .type emu_swap, @function
emu_swap:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_swap, .-emu_swap
)");

namespace {

enum State { RUN, WAIT_BLOCK, WAIT_WARP, DONE };

const size_t STACK = 64 << 10;  // per fiber; the kernels need a few hundred bytes
const int MAX_THREADS = 1024;
const int WARP_SIZE = 32;

struct Fiber {
    void *sp;
    char *stack;  // STACK bytes above a guard page
    State state;
    unsigned shuffles;  // shuffles done, for the exchange buffer's parity
    int offset;         // lane mask of the shuffle it waits in
};

Fiber fibers[MAX_THREADS];
void *scheduler_sp;
int current;
emu_kernel running;
void **running_params;
char failure[512];  // set by a fiber that hit an error; the launch fails

// xchg[warp][parity][lane]: a shuffle's values. Two buffers, because a lane may write
// its next shuffle's value before a slower lane has read this one's.
float xchg[MAX_THREADS / WARP_SIZE][2][WARP_SIZE];

void fail(const char *fmt, ...) {
    if (failure[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failure, sizeof failure, fmt, ap);
    va_end(ap);
}

// wait parks the current fiber in state s and returns when the scheduler resumes it.
void wait(State s) {
    Fiber &f = fibers[current];
    f.state = s;
    emu_swap(&f.sp, scheduler_sp);
}

void fiber_main() {
    running(running_params);
    wait(DONE);
    abort();  // a finished fiber is never resumed
}

// start prepares fiber t to begin at fiber_main, as if emu_swap had saved it there.
void start(int t) {
    Fiber &f = fibers[t];
    if (!f.stack) {
        long page = sysconf(_SC_PAGESIZE);
        char *m = (char *)mmap(NULL, STACK + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            perror("cudaemu: fiber stack");
            abort();
        }
        mprotect(m, page, PROT_NONE);  // an overflow faults instead of corrupting a neighbour
        f.stack = m + page;
    }
    uint64_t *top = (uint64_t *)(f.stack + STACK);  // 16-byte aligned
    uint64_t *sp = top - 8;
    sp[7] = 0;                     // fiber_main's return address: it never returns
    sp[6] = (uint64_t)fiber_main;  // where emu_swap's ret goes, leaving rsp at 8 mod 16
    for (int i = 0; i < 6; i++) sp[i] = 0;  // r15 r14 r13 r12 rbx rbp
    f.sp = sp;
    f.state = RUN;
    f.shuffles = 0;
}

// releaseWarp wakes lanes [lo, hi) when all of them wait in the same warp shuffle; it
// returns how many it woke.
int releaseWarp(int lo, int hi) {
    int waiting = 0, done = 0;
    for (int t = lo; t < hi; t++) {
        waiting += fibers[t].state == WAIT_WARP;
        done += fibers[t].state == DONE;
    }
    if (waiting == 0) return 0;
    if (waiting + done == hi - lo && done > 0) {
        fail("warp %d: a full-mask shuffle after %d of its lanes exited", lo / WARP_SIZE, done);
        return 0;
    }
    if (waiting < hi - lo) return 0;  // the rest of the warp is at __syncthreads: a failure below
    for (int t = lo; t < hi; t++) {
        if (fibers[t].offset != fibers[lo].offset) {
            fail("warp %d: lanes %d and %d shuffle with lane masks %d and %d", lo / WARP_SIZE, lo, t,
                 fibers[lo].offset, fibers[t].offset);
            return 0;
        }
        fibers[t].state = RUN;
    }
    return hi - lo;
}

// runWarp runs lanes [lo, hi) until each has exited or waits at __syncthreads.
void runWarp(int lo, int hi) {
    do {
        for (int t = lo; t < hi && !failure[0]; t++) {
            if (fibers[t].state != RUN) continue;
            current = t;
            threadIdx.x = t;
            emu_swap(&scheduler_sp, fibers[t].sp);
        }
    } while (!failure[0] && releaseWarp(lo, hi) > 0);
}

// releaseBlock wakes every thread when all live ones wait at __syncthreads; it returns
// how many it woke (0 when the block has finished).
int releaseBlock(int threads) {
    int live = 0, waiting = 0;
    for (int t = 0; t < threads; t++) {
        live += fibers[t].state != DONE;
        waiting += fibers[t].state == WAIT_BLOCK;
    }
    if (live > 0 && waiting < live) {
        fail("divergent barriers: of %d live threads %d wait at __syncthreads, the rest in warp shuffles", live,
             waiting);
        return 0;
    }
    for (int t = 0; t < threads; t++)
        if (fibers[t].state == WAIT_BLOCK) fibers[t].state = RUN;
    return live;
}

}  // namespace

void __syncthreads() { wait(WAIT_BLOCK); }

float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
    unsigned t = threadIdx.x;
    int w = t / WARP_SIZE, lane = t % WARP_SIZE;
    if (mask != 0xffffffffu) fail("__shfl_xor_sync with mask %#x: only full warps are emulated", mask);
    Fiber &f = fibers[current];
    int parity = f.shuffles++ & 1;
    f.offset = lane_mask;
    xchg[w][parity][lane] = v;
    wait(WAIT_WARP);
    int src = (lane ^ lane_mask) & (WARP_SIZE - 1);
    return xchg[w][parity][src];
}

extern "C" const char *emu_run(const char *name, emu_kernel k, void **params, unsigned grid, unsigned block) {
    if (block == 0 || block > MAX_THREADS || block % WARP_SIZE != 0) {
        snprintf(failure, sizeof failure, "kernel %s: %u threads per block (the emulator runs whole warps, up to %d)",
                 name, block, MAX_THREADS);
        return failure;
    }
    failure[0] = 0;
    running = k;
    running_params = params;
    blockDim = {block, 1, 1};
    gridDim = {grid, 1, 1};
    threadIdx = blockIdx = {0, 0, 0};
    for (unsigned b = 0; b < grid && !failure[0]; b++) {
        blockIdx.x = b;
        for (unsigned t = 0; t < block; t++) start(t);
        // Each warp runs on its own up to the next __syncthreads, in ascending order in
        // even blocks and descending in odd ones: a legal CUDA schedule, and the one most
        // likely to show a missing barrier (one warp overwrites shared memory that
        // another has not read yet).
        int warps = block / WARP_SIZE;
        do {
            for (int i = 0; i < warps && !failure[0]; i++) {
                int w = b % 2 ? warps - 1 - i : i;
                runWarp(w * WARP_SIZE, (w + 1) * WARP_SIZE);
            }
        } while (!failure[0] && releaseBlock(block) > 0);
    }
    if (failure[0]) {
        char msg[sizeof failure];
        snprintf(msg, sizeof msg, "kernel %s, block %u: %s", name, blockIdx.x, failure);
        strcpy(failure, msg);
        return failure;
    }
    return NULL;
}

#pragma GCC visibility pop
