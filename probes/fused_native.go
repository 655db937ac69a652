//go:build !cgo || !openblas || !amd64

package probes

// fusedOK is false: the fused kernel (fused_cgo.go) needs cgo, OpenBLAS and amd64, so
// objective.blocks uses its two GEMMs per block.
const fusedOK = false

func fusedBlock(x []float32, n, d, k int, w []float32, bias []float64, y []int, t []float64, r, g []float32, add bool, gb []float64) float64 {
	panic("probes: fused kernel not built")
}
