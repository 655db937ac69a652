// Package layers builds CLIP's modules as gorgonia graphs, one struct per module of
// OpenAI's clip/model.py (and open_clip's variants), with fields and node names taken
// from their state-dict keys (visual.transformer.resblocks.0.ln_1.weight, ...), and
// holds the model configurations (config.go; presets as JSON files in presets/).
//
// Three seams make a new architecture an addition rather than an edit:
//
//   - Tower kinds. A Config names its image and text tower kinds ("vit", "resnet";
//     "transformer"); RegisterVision and RegisterText map a kind to its validation and
//     its constructor, so NewCLIP builds whatever the config names.
//   - Module-owned weights. A module's constructor calls Weights.Param for every weight
//     it owns, with its key, shape and reference initialiser. That one declaration list
//     is what loading checks (missing, mis-shaped and unexpected keys, in one error),
//     what random checkpoints fill, and, through Weights.After, where derived weights
//     (BatchNorm folded into a convolution, k and v stacked) are computed once at load.
//   - Ops (package graph), each with its CPU and CUDA implementations together.
//
// Weights are *tensor.Dense values created once from a checkpoint's []float32 without
// copying, and shared by every graph the modules build: a module's Forward adds nodes
// to a graph.Builder and may be called for any number of graphs (one per tower, batch
// size and text length). Activations are row-major matrices of rows: tokens [B*T, D],
// or channels-last feature maps [B*H*W, C] in the ResNets. A tower builds every tap it
// can give and its pooled output; Compile keeps what the graph's outputs read. The
// transformer towers pool through Transformer.Pooled, whose last block runs only the
// pooled rows after its attention (unless the graph.Builder asks to pool from the
// taps, as gradients with respect to a tap need).
//
// Shape letters, used in comments throughout:
//
//	B  batch (images or prompts)       T  tokens in a sequence (vision: G*G+1; text: L)
//	D  residual width                  H  attention heads
//	K  head width, D/H                 F  MLP hidden width, 4*D
//	E  joint embedding width           G  patches along one image side
//	P  patch side in pixels            R  image side in pixels, G*P
//	L  text positions run (<= 77)      V  vocabulary size
//	C  channels of a feature map       S  spatial positions H*W of a feature map
package layers
