//go:build dnnl

package graph

/*
int gc_bf16_init(void);
void gc_to_bf16(unsigned short *dst, const float *src, long n);
void gc_from_bf16(float *dst, const unsigned short *src, long n);
*/
import "C"

import "unsafe"

func init() {
	if C.gc_bf16_init() == 0 {
		return
	}
	toBF16Fast = func(dst []uint16, src []float32) {
		C.gc_to_bf16((*C.ushort)(unsafe.Pointer(&dst[0])), (*C.float)(unsafe.Pointer(&src[0])), C.long(len(src)))
	}
	fromBF16Fast = func(dst []float32, src []uint16) {
		C.gc_from_bf16((*C.float)(unsafe.Pointer(&dst[0])), (*C.ushort)(unsafe.Pointer(&src[0])), C.long(len(src)))
	}
}
