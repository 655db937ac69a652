//go:build openblas

package graph

/*
#cgo LDFLAGS: -lopenblas
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
	"gorgonia.org/tensor"
)

// BLAS names the BLAS that gorgonia's GEMMs use in this build.
const BLAS = "openblas"

// With the openblas build tag, gorgonia.org/tensor calls OpenBLAS (through gonum's
// netlib cgo bindings, linked with -lopenblas) instead of gonum's pure-Go BLAS.
func init() { tensor.Use(netlib.Implementation{}) }
