//go:build !openblas

package graph

// BLAS names the BLAS that gorgonia's GEMMs use in this build: gonum's pure-Go
// implementation, gorgonia.org/tensor's default. Build with -tags openblas for OpenBLAS.
const BLAS = "gonum"
