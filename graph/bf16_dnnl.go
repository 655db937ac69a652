//go:build dnnl

package graph

/*
#cgo LDFLAGS: -lm
int gc_bf16_init(void);
void gc_to_bf16(unsigned short *dst, const float *src, long n);
void gc_from_bf16(float *dst, const unsigned short *src, long n);
void gc_attention_bf16(const unsigned short *qkv, void *dst, int dst_bf16, float *scratch, long t, long d, long k,
                       long heads, int causal, float scale, long lo, long hi);
void gc_layer_norm_bf16(unsigned short *dst, const float *x, const float *gain, const float *bias, long rows, long d,
                        float eps);
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
	layerNormBF16 = func(dst []uint16, x, gain, bias []float32, d int, eps float32) {
		C.gc_layer_norm_bf16((*C.ushort)(unsafe.Pointer(&dst[0])), (*C.float)(unsafe.Pointer(&x[0])),
			(*C.float)(unsafe.Pointer(&gain[0])), (*C.float)(unsafe.Pointer(&bias[0])), C.long(len(x)/d), C.long(d), C.float(eps))
	}
	attentionBF16 = func(dst act, qkv []uint16, t, d, k, heads int, causal bool, scale float32, lo, hi int) {
		tp := (t + 15) &^ 15
		scratch := make([]float32, k/2*tp+t*tp+t*k)
		half, cz := C.int(0), C.int(0)
		if dst.H != nil {
			half = 1
		}
		if causal {
			cz = 1
		}
		C.gc_attention_bf16((*C.ushort)(unsafe.Pointer(&qkv[0])), dst.at(0), half, (*C.float)(unsafe.Pointer(&scratch[0])),
			C.long(t), C.long(d), C.long(k), C.long(heads), cz, C.float(scale), C.long(lo), C.long(hi))
	}
}
