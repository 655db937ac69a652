//go:build cgo && openblas

package probes

// OpenBLAS through gonum's netlib binding, with -tags openblas (as make build does
// where libopenblas is installed). The LDFLAGS line links libopenblas, so no CGO_LDFLAGS
// are needed. Without the tag, gemm_native.go's pure-Go kernels are used.

/*
#cgo LDFLAGS: -lopenblas
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);
*/
import "C"

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// sgemm is the float32 BLAS used for logits and gradients, dgemm the float64 one
// used to polish solutions (see objective.precise).
var (
	sgemm blas.Float32 = netlib.Implementation{}
	dgemm blas.Float64 = netlib.Implementation{}
)

// BLAS names the BLAS implementation the probes use.
const BLAS = "openblas"

// OpenBLAS threads its own GEMMs, but the probe's GEMMs are many small per-block calls
// made from several goroutines at once (fused so that each block of features is read
// from memory once). Concurrent multi-threaded OpenBLAS calls oversubscribe the cores
// with spinning workers and run 30x slower, so OpenBLAS is held at one thread while
// any fit runs and restored when the last one ends. OpenBLAS 0.3.21 has no per-call
// thread count; the setting is process-wide.
var blasThreads struct {
	sync.Mutex
	users, saved int
}

// singleThreadedBLAS pins OpenBLAS to one thread and returns the function undoing it.
func singleThreadedBLAS() (restore func()) {
	blasThreads.Lock()
	if blasThreads.users == 0 {
		blasThreads.saved = int(C.openblas_get_num_threads())
		C.openblas_set_num_threads(1)
	}
	blasThreads.users++
	blasThreads.Unlock()
	return func() {
		blasThreads.Lock()
		blasThreads.users--
		if blasThreads.users == 0 {
			C.openblas_set_num_threads(C.int(blasThreads.saved))
		}
		blasThreads.Unlock()
	}
}
