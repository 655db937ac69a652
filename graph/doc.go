// Package graph is gorgoclip's gorgonia plumbing: fused custom operations for CLIP's
// towers (LayerNorm, Linear with bias/scale/residual/activation, multi-head attention
// over the packed qkv projection, patch embedding, positional embedding, row selection;
// for the ResNets, channels-last Conv2d, AvgPool, the attention pool's PoolTokens and
// QueryAttention, ChannelsFirst), a Builder that names inputs, weights and outputs,
// and a Machine that compiles a graph once and runs it many times (Let inputs, RunAll,
// Reset).
//
// Each op lives in its own file, op_X.go (the type, its shape rules and its CPU code),
// with its CUDA implementation beside it in op_X_cuda.go (build tag gorgoclip_cuda),
// which embeds the op's kernels (cuda/X.cu) and registers both with registerCUDA. There
// is no central switch: adding an op is adding those files. A Builder made for a device
// (NewBuilderOn) refuses, at Compile, any op without an implementation on that device
// (a built-in gorgonia op such as G.Mul, or a custom op without a registration) and
// names it: run on the device, it would read device memory from the host. On the CPU
// any gorgonia op may be mixed in.
//
// The model stays a gorgonia graph, but the work is done inside the ops: each is
// inference-only (no Diff), calls BLAS sgemm directly on its inputs' backing slices
// (OpenBLAS with the openblas build tag, gonum's pure-Go BLAS otherwise; see BLAS),
// runs its elementwise and per-head work in Go kernels (kernels.go) split over
// Threads() goroutines — in the openblas build, C kernels compiled for AVX2+FMA
// (kernels_openblas.c: the Linear epilogue, attention per image and head, LayerNorm)
// take over where the CPU has them, the Go kernels staying as fallback and test
// reference — and writes into a buffer its Machine owns and reuses on every
// run. Builder.Compile plans those buffers (arena.go): ops whose results are never live
// at the same time share one, so a graph allocates no activations after its first run.
// Outputs are copied out when computed.
//
// Shapes in this package use the letters defined by package layers: B batch, T tokens,
// D width, H heads, K head width D/H, E embedding width, N rows (usually B*T).
package graph
