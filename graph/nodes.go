package graph

import (
	G "gorgonia.org/gorgonia"
)

// The helpers below apply the fused ops with a node name; layers call them.

// LayerNorm normalises x [N,D] with gain and bias [D] (LayerNormOp).
func LayerNorm(name string, x, gain, bias *G.Node, eps float32) (*G.Node, error) {
	return G.ApplyOpWithName(&LayerNormOp{Eps: eps}, name, x, gain, bias)
}

// LinearOptions are the parts of a Linear besides x and the weight.
type LinearOptions struct {
	// Bias [Out] is added when not nil.
	Bias *G.Node
	// Residual [N,Out] is added when not nil (no activation then).
	Residual *G.Node
	// Act is applied to the result.
	Act Activation
	// InOut says the weight is stored [In,Out] (y = x @ W), not [Out,In].
	InOut bool
}

// Linear returns x [N,In] times the weight w ([Out,In], transposed, or [In,Out] with
// InOut) with what opt adds (LinearOp).
func Linear(name string, x, w *G.Node, opt LinearOptions) (*G.Node, error) {
	op := &LinearOp{InOut: opt.InOut, Bias: opt.Bias != nil, Residual: opt.Residual != nil, Act: opt.Act}
	in := []*G.Node{x, w}
	if opt.Bias != nil {
		in = append(in, opt.Bias)
	}
	if opt.Residual != nil {
		in = append(in, opt.Residual)
	}
	return G.ApplyOpWithName(op, name, in...)
}

// Attention is self-attention over a packed projection qkv [B*T, 3D], giving [B*T, D]
// (AttentionOp).
func Attention(name string, qkv *G.Node, batch, seq, heads int, causal bool) (*G.Node, error) {
	return G.ApplyOpWithName(&AttentionOp{Batch: batch, Seq: seq, Heads: heads, Causal: causal}, name, qkv)
}

// PatchEmbed turns images pixels [B, 3*R*R] into tokens [B*T, D] with conv1's weight
// [D, 3*P*P], the class embedding [D] and the positional embedding [T, D] (PatchEmbedOp).
func PatchEmbed(name string, pixels, conv, cls, pos *G.Node, batch, resolution, patch int) (*G.Node, error) {
	return G.ApplyOpWithName(&PatchEmbedOp{Batch: batch, Resolution: resolution, Patch: patch}, name, pixels, conv, cls, pos)
}

// AddPositional adds the first seq rows of pos [Tmax, D] to each sequence of x [B*T, D].
func AddPositional(name string, x, pos *G.Node, seq int) (*G.Node, error) {
	return G.ApplyOpWithName(&AddPositionalOp{Seq: seq}, name, x, pos)
}

// SelectRow picks position index of every sequence of x [B*T, D], giving [B, D].
func SelectRow(name string, x *G.Node, seq, index int) (*G.Node, error) {
	return G.ApplyOpWithName(&SelectRowsOp{Seq: seq, Index: index}, name, x)
}

// SelectRows picks position idx[b] of sequence b of x [B*T, D], giving [B, D]; idx [B]
// holds integer positions as float32.
func SelectRows(name string, x, idx *G.Node, seq int) (*G.Node, error) {
	return G.ApplyOpWithName(&SelectRowsOp{Seq: seq, Dynamic: true}, name, x, idx)
}
