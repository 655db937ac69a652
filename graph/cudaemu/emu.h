// emu.h: what the parts of the CUDA emulator share (see driver.cc for the whole).
#ifndef GORGOCLIP_CUDAEMU_EMU_H
#define GORGOCLIP_CUDAEMU_EMU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMU_API __attribute__((visibility("default")))

// emu_kernel unpacks cuLaunchKernel's parameter array (one pointer per parameter,
// each read for exactly the size of that parameter) and calls one kernel.
typedef void (*emu_kernel)(void **params);

// emu_find_kernel returns the host build of the kernel called name, or NULL.
emu_kernel emu_find_kernel(const char *name);

// emu_run runs k over grid blocks of block threads, blocks one after another and each
// block's threads as fibers switched at __syncthreads and warp shuffles. It returns
// NULL, or a message saying why the launch failed.
const char *emu_run(const char *name, emu_kernel k, void **params, unsigned grid, unsigned block);

// Device memory is inaccessible to the host outside the driver's and cuBLAS's own
// calls, so that host code reading a device address crashes here as it would on a GPU.
// emu_device_open makes every allocation readable and writable, emu_device_close
// takes that back.
EMU_API void emu_device_open(void);
EMU_API void emu_device_close(void);

// emu_device_range reports whether [p, p+bytes) lies inside one device allocation;
// if not, it writes why into why (size n).
EMU_API int emu_device_range(const void *p, size_t bytes, char *why, size_t n);

#ifdef __cplusplus
}
#endif

#endif
