//go:build dnnl

package graph

/*
#cgo LDFLAGS: -ldnnl -lgomp
#include <stdlib.h>
typedef struct gc_mm gc_mm;
long gc_dnnl_init(void);
gc_mm *gc_mm_create(long m, long n, long k, int inout, int wei_bf16, int wei_blocked, int src_bf16, int dst_bf16, long ldd,
                    int has_bias, int has_scale, int res_kind, int act, int accumulate, char *impl, int impllen, char *err,
                    int errlen);
int gc_pack(long n, long k, int inout, unsigned short *w, char *err, int errlen);
void gc_set_unblock_test(int on);
void gc_mm_free(gc_mm *p);
int gc_mm_run(gc_mm *p, void *src, void *wei, float *bias, float *scale, void *res, void *dst);
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// dnnlBF16ISA is oneDNN's dnnl_cpu_isa_avx512_core_bf16: the bits of an ISA with
// native bfloat16 dot products (AMX includes them).
const dnnlBF16ISA = 0xe7

func init() {
	isa := int(C.gc_dnnl_init())
	if isa < 0 {
		return // no engine: the fallback
	}
	newMMKernel = func(s mmSpec, m int) (mmKernel, string, error) { return newDNNLMatmul(s, m, isa) }
	fp32GEMM = true
	unblockTest = func(on bool) { C.gc_set_unblock_test(cbool(on)) }
	packBF16 = func(n, k int, inout bool, w []uint16) (bool, error) {
		var msg [256]C.char
		switch C.gc_pack(C.long(n), C.long(k), cbool(inout), (*C.ushort)(unsafe.Pointer(&w[0])), &msg[0], C.int(len(msg))) {
		case 1:
			return true, nil
		case 0:
			return false, nil
		}
		return false, fmt.Errorf("oneDNN: repacking a [%d,%d] weight: %s", n, k, C.GoString(&msg[0]))
	}
}

// cbool is v as a C int.
func cbool(v bool) C.int {
	if v {
		return 1
	}
	return 0
}

// dnnlMatmul is a oneDNN matmul primitive.
type dnnlMatmul struct{ p *C.gc_mm }

// newDNNLMatmul compiles s for m rows. oneDNN's reference implementations (what it
// falls back to on a CPU without the instructions its fast kernels need) are far
// slower than the float32 BLAS, so they count as no implementation.
func newDNNLMatmul(s mmSpec, m, isa int) (mmKernel, string, error) {
	var impl, msg [256]C.char
	b := cbool
	p := C.gc_mm_create(C.long(m), C.long(s.N), C.long(s.K), b(s.InOut), b(!s.F32), b(s.Blocked), b(s.XHalf), b(s.DstHalf),
		C.long(s.LDD), b(s.Bias), b(s.Scale), C.int(s.Res), C.int(s.Act), b(s.Accumulate), &impl[0], C.int(len(impl)), &msg[0],
		C.int(len(msg)))
	if p == nil {
		return nil, "", fmt.Errorf("oneDNN: %s: %s", s, C.GoString(&msg[0]))
	}
	name := C.GoString(&impl[0])
	if strings.HasPrefix(name, "ref") {
		C.gc_mm_free(p)
		return nil, name, fmt.Errorf("oneDNN has only its reference %s for %s on this CPU (ISA %#x)", name, s.dtype(), isa)
	}
	if !s.F32 && isa&dnnlBF16ISA != dnnlBF16ISA {
		name += " (bfloat16 emulated: this CPU has no AVX512-BF16)"
	}
	return &dnnlMatmul{p}, name, nil
}

func (k *dnnlMatmul) run(x, w unsafe.Pointer, bias, scale []float32, res, dst unsafe.Pointer) error {
	if st := C.gc_mm_run(k.p, x, w, cptr(bias), cptr(scale), res, dst); st != 0 {
		return fmt.Errorf("graph: oneDNN matmul failed (status %d)", int(st))
	}
	return nil
}

func (k *dnnlMatmul) free() {
	C.gc_mm_free(k.p)
	k.p = nil
}

// cptr returns the address of x's first value, or nil.
func cptr(x []float32) *C.float {
	if len(x) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&x[0]))
}
