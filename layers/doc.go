// Package layers builds OpenAI CLIP's modules as gorgonia graphs, one struct per
// module of OpenAI's clip/model.py, with fields and node names taken from its
// state-dict keys (visual.transformer.resblocks.0.ln_1.weight, ...), and holds the
// model configurations (config.go).
//
// Weights are *tensor.Dense values created once from a checkpoint's []float32 without
// copying, and shared by every graph the modules build: a module's Forward adds nodes
// to a graph.Builder and may be called for any number of graphs (one per tower, batch
// size and text length). Activations are row-major matrices of tokens, [B*T, D].
//
// Shape letters, used in comments throughout:
//
//	B  batch (images or prompts)       T  tokens in a sequence (vision: G*G+1; text: L)
//	D  residual width                  H  attention heads
//	K  head width, D/H                 F  MLP hidden width, 4*D
//	E  joint embedding width           G  patches along one image side
//	P  patch side in pixels            R  image side in pixels, G*P
//	L  text positions run (<= 77)      V  vocabulary size
package layers
