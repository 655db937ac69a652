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
// # Precision
//
// A graph computes in FP32 (the default) or BF16 (Builder.SetPrecision; clip's
// WithPrecision sets it for a model). In BF16 the weights of the GEMMs (LinearOp,
// Conv2dOp, PatchEmbedOp) are stored in bfloat16, converted once at load
// (Builder.ConvertWeights, ToBF16), outside the Go heap, the float32 copies released;
// every GEMM multiplies bfloat16 operands and accumulates in float32, with its
// epilogue (bias, layer scale, residual, activation) applied in float32 before the
// result is stored. With the dnnl build tag (Debian's libdnnl-dev) the GEMMs are
// oneDNN matmul primitives with the epilogue fused as post-ops (AVX512-BF16 dot
// products on Zen 4, AMX tiles on Sapphire Rapids), one single-threaded primitive
// per goroutine over a share of the rows (gemm_bf16.go, dnnl.c); without it, or on
// a CPU where oneDNN has no bfloat16 kernel (no AVX512), the same products run on
// the float32 BLAS from the bfloat16 values widened: the same results at float32
// speed (BF16Backend says which).
//
// What else stays float32 was chosen by measuring full-size OpenAI-initialised random
// models (clip.RandomCheckpoint) against themselves in FP32 (layers/clip's
// TestBF16Fidelity: 8 images and 8 prompts, smallest cosine of a feature vector and
// largest difference over the largest feature):
//
//	                                    ViT-B/32 image       ViT-B/32 text
//	chosen: q/k/v bf16, residual fp32   0.999994, 0.36%      0.999969, 0.72%
//	q/k/v kept fp32                     0.999994, 0.34%      0.999976, 0.77%
//	residual stream in bf16 too         0.999955, 0.95%      0.999945, 0.93%
//	(RN50, chosen: image 0.999998, 0.27%; text 0.999962, 0.79%)
//
// So: the residual stream (a block's input and output, a ResNet bottleneck's output)
// stays float32, which costs little (it is read by LayerNorm and the residual adds
// only) and keeps the error seven times smaller; LayerNorm reads it in float32 and
// keeps its statistics in float64, storing its output in bfloat16 for the GEMM that
// reads it; attention reads q, k and v in bfloat16 (keeping them float32 measured no
// better) and computes the scores, the softmax and the weighted sum in float32;
// c_fc's activation is applied in float32 and stored in bfloat16 for c_proj; the
// projections and every output a caller reads stay float32. Which results are stored
// in bfloat16 is planned per edge when a graph is compiled (precision.go: a result
// is bfloat16 when its op offers it and every reader accepts it), so a requested
// intermediate (a tap) stays float32 without changing the numbers: a GEMM rounds its
// input to bfloat16 either way.
//
// Shapes in this package use the letters defined by package layers: B batch, T tokens,
// D width, H heads, K head width D/H, E embedding width, N rows (usually B*T).
package graph
