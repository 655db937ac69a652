// Package graph is gorgoclip's gorgonia plumbing: the custom operations CLIP needs
// that gorgonia v0.9.18 lacks or makes awkward (LayerNorm, scaled and masked softmax,
// QuickGELU/GELU, bias add, attention head split/merge, embeddings, row selection),
// a Builder that names inputs, weights and outputs, and a Machine that compiles a
// graph once and runs it many times (Let inputs, RunAll, Reset).
//
// Every custom op is inference-only (no Diff) and is a thin shell around a plain Go
// kernel in kernels.go that reads and writes contiguous row-major []float32. Faster
// implementations (fused, BLAS-backed, reusing buffers) replace a kernel or an op's Do
// without touching the layers that build graphs. GEMMs use gorgonia's own Mul and
// BatchedMatMul, which call the BLAS that gorgonia.org/tensor is set to use (gonum's
// pure-Go BLAS unless the binary is built with the openblas tag, see blas_openblas.go).
//
// Shapes in this package use the letters defined by package layers: B batch, T tokens,
// D width, H heads, K head width D/H, E embedding width, N rows (usually B*T).
package graph
