//go:build openblas

package graph

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int num_threads);
char *openblas_get_corename(void);
*/
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
	"gorgonia.org/tensor"
)

// BLAS names the BLAS behind the fused ops' large GEMMs in this build.
const BLAS = "openblas"

// gemm is the BLAS the Linear and PatchEmbed ops call: OpenBLAS's cblas_sgemm through
// gonum's netlib cgo bindings, linked with -lopenblas.
var gemm blas.Float32Level3 = netlib.Implementation{}

// With the openblas tag, gorgonia.org/tensor's own GEMMs (G.Mul in graphs built from
// plain gorgonia ops) also call OpenBLAS.
func init() { tensor.Use(netlib.Implementation{}) }

// setBLASThreads sets OpenBLAS's thread pool size. The fused ops never call OpenBLAS
// from several goroutines at once: GEMMs run one at a time, between Go kernels that
// use the goroutines (see SetThreads), so the two never oversubscribe the cores.
func setBLASThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// BLASCore names the kernels OpenBLAS chose for this CPU when it loaded ("Haswell",
// "SkylakeX", ...; OPENBLAS_CORETYPE overrides its choice).
func BLASCore() string { return C.GoString(C.openblas_get_corename()) }
