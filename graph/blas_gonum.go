//go:build !openblas

package graph

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLAS names the BLAS behind the fused ops' large GEMMs in this build: gonum's
// pure-Go implementation. Build with -tags openblas for OpenBLAS.
const BLAS = "gonum"

// gemm is the BLAS the Linear and PatchEmbed ops call. gonum's Sgemm splits large
// products over GOMAXPROCS goroutines by itself.
var gemm blas.Float32Level3 = gonum.Implementation{}

// setBLASThreads is a no-op: gonum's BLAS follows GOMAXPROCS.
func setBLASThreads(int) {}

// BLASCore is empty: gonum's BLAS has no kernel choice to report.
func BLASCore() string { return "" }
