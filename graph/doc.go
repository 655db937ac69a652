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
// The model stays a gorgonia graph, but the work is done inside the ops: each calls
// BLAS sgemm directly on its inputs' backing slices
// (OpenBLAS with the openblas build tag, gonum's pure-Go BLAS otherwise; see BLAS;
// with the dnnl tag, Linear and Conv2d run oneDNN's float32 matmul instead, the
// epilogue fused, one single-threaded primitive per goroutine: see fp32GEMM and
// FP32Backend), runs its elementwise and per-head work in Go kernels (kernels.go) split over
// Threads() goroutines — in the openblas build, C kernels compiled for AVX2+FMA
// (kernels_openblas.c: the Linear epilogue, attention per image and head, LayerNorm)
// take over where the CPU has them, the Go kernels staying as fallback and test
// reference — and writes into a buffer its Machine owns and reuses on every
// run. The goroutines an op's parts run on are a crew that spins between ops rather
// than parking (runParts in threads.go): on the 2-core VMs measured, waking a parked
// thread cost about 70 us at each end of a part, a fifth of the text tower's time.
// Builder.Compile keeps only what the outputs read (a tower builds every stage it can
// give; a graph asking for one runs only that), then plans the buffers (arena.go): ops
// whose results are never live at the same time share one, so a graph allocates no
// activations after its first run. Outputs are copied out when computed.
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
// per goroutine over a share of the rows (gemm_fused.go, dnnl.c); without it, or on
// a CPU where oneDNN has no bfloat16 kernel (no AVX512), the same products run on
// the float32 BLAS from the bfloat16 values widened: the same results at float32
// speed (BF16Backend says which). Where oneDNN runs them, a model's Linear weights
// are then repacked once, in place, into oneDNN's own blocked layout
// (Builder.PackWeights, dtype BF16Blocked): from PyTorch's layout every GEMM call
// repacked its weight first, once per goroutine, which cost 8-15% of the ViT-B/32
// block products at 1600 rows and 16-65% of the text tower's at 352.
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
// better), sums the scores' exact bfloat16 products in float32 and computes the
// softmax and the weighted sum of V in float32 (AVX512-BF16 in bf16_dnnl.c);
// c_fc's activation is applied in float32 and stored in bfloat16 for c_proj; the
// projections and every output a caller reads stay float32. Which results are stored
// in bfloat16 is planned per edge when a graph is compiled (precision.go: a result
// is bfloat16 when its op offers it and every reader accepts it), so a requested
// intermediate (a tap) stays float32 without changing the numbers: a GEMM rounds its
// input to bfloat16 either way.
//
// # Gradients
//
// Every fused op is differentiable the way gorgonia expects: it implements G.SDOp,
// whose DiffWRT names its differentiable inputs and whose SymDiff adds the nodes of
// its backward pass to the graph (the op_*_grad.go files), built from backward ops of
// this package (their kernels in kernels_grad.go) and from the forward ops themselves
// (the input gradient of a Linear is a Linear on the other layout). Builder.Backward
// then differentiates in reverse mode from the outputs to the nodes asked for, calling
// each op's SymDiff, and the Machine computes outputs and gradients in one Run.
// Forward results a backward op reads stay live until it has run because the arena
// plans over the whole graph, backward nodes included: activations are kept only in a
// graph with a backward pass, and an inference graph is exactly what it was. Every
// backward op has a CUDA implementation beside it (op_*_grad_cuda.go, grad_cuda.go),
// so a graph with a backward pass runs on the GPU as its forward pass does.
//
// Where gorgonia's machinery does not carry what is needed, this is what was done:
//
//   - G.Grad differentiates a scalar cost inside the graph. The losses here (CLIP's
//     head, CoOp's cross-entropy) are computed on the host in float64, so Backward
//     takes the gradient of each output as a node instead, either an Input filled by
//     the caller or a Host node that calls a Go function between the forward and the
//     backward pass of the same run (on a GPU its inputs and result are copied).
//   - gorgonia builds a gradient for every input DiffWRT reports, and runs every node
//     of a graph. Backward therefore first finds the nodes on a differentiable path
//     from what is asked for to the outputs and narrows each op's DiffWRT to those
//     inputs (the need mask of owned): asking for the pixels' gradient builds no
//     weight gradient. Backward may be called once per Builder.
//   - G.Backpropagate sums the gradients of a node read twice (the residual stream)
//     with gorgonia's own Add, which runs on the host only (a device graph refuses
//     it) and may write into its first operand. Backward therefore runs the same
//     sweep itself (reverse topological order, SymDiff of each active node) and sums
//     with sumOp, an op of this package with a CUDA kernel that writes only its own
//     output.
//   - Ops keep no state between the forward and the backward pass (gorgonia's ops are
//     pure functions of their inputs, and the forward ops must stay as fast as they
//     were). What a backward op needs and is not a node is recomputed: the softmax
//     weights of attention (cheap next to the projections), and the pre-activation of
//     a QuickGELU or GELU Linear (one more product, the MLP's c_fc: 4 of the 28 D^2
//     products a block's forward and input-gradient passes make; ReLU's derivative
//     is read from the output instead). The same
//     recomputation gives the attention maps: AttentionProbs rebuilds an attention
//     node's softmax weights from its input only in graphs that ask for them.
//   - gorgonia's other differentiation path, DoDiff with dual values on the tape
//     machine, would allocate a gradient beside every node; it is not used.
//   - There are no second derivatives.
//
// Shapes in this package use the letters defined by package layers: B batch, T tokens,
// D width, H heads, K head width D/H, E embedding width, N rows (usually B*T).
package graph
