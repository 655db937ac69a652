//go:build !cgo || !openblas

package probes

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// sgemm and dgemm are gonum's pure-Go kernels where cgo or OpenBLAS is unavailable
// (several times slower).
var (
	sgemm blas.Float32 = gonum.Implementation{}
	dgemm blas.Float64 = gonum.Implementation{}
)

// BLAS names the BLAS implementation the probes use.
const BLAS = "gonum"

// singleThreadedBLAS is a no-op: gonum's kernels run on the calling goroutine for the
// block sizes used here.
func singleThreadedBLAS() (restore func()) { return func() {} }
