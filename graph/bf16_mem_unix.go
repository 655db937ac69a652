//go:build unix

package graph

import (
	"syscall"
	"unsafe"
)

// allocBF16 returns n zeroed bfloat16s outside the Go heap (an anonymous mapping),
// and the function that unmaps them. A model's weights live as long as the model:
// on the Go heap they would count as live data, and the collector lets the heap grow
// to twice the live data between collections, so a model's garbage could take as
// much memory again as its weights. Where mapping fails it falls back to the heap.
func allocBF16(n int) ([]uint16, func()) {
	if n == 0 {
		return nil, func() {}
	}
	b, err := syscall.Mmap(-1, 0, 2*n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]uint16, n), func() {}
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), n), func() { syscall.Munmap(b) }
}
