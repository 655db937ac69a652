package graph

import (
	G "gorgonia.org/gorgonia"
)

// The helpers below apply the custom ops with a node name; layers call them.

// LayerNorm applies LayerNormOp to x [N,D] with gain and bias [D].
func LayerNorm(name string, x, gain, bias *G.Node, eps float32) (*G.Node, error) {
	return G.ApplyOpWithName(LayerNormOp{Eps: eps}, name, x, gain, bias)
}

// Softmax applies SoftmaxOp to scores [B*H, T, T].
func Softmax(name string, scores *G.Node, scale float32, causal bool) (*G.Node, error) {
	return G.ApplyOpWithName(SoftmaxOp{Scale: scale, Causal: causal}, name, scores)
}

// Activate applies the MLP nonlinearity kind to x [N,F].
func Activate(name string, x *G.Node, kind Activation) (*G.Node, error) {
	return G.ApplyOpWithName(ActivationOp{Kind: kind}, name, x)
}

// BiasAdd adds bias [D] to every row of x [N,D].
func BiasAdd(name string, x, bias *G.Node) (*G.Node, error) {
	return G.ApplyOpWithName(BiasAddOp{}, name, x, bias)
}

// SplitHeads returns q, k and v [B*H, T, K] from a packed projection qkv [B*T, 3D].
func SplitHeads(name string, qkv *G.Node, batch, seq, heads int) (q, k, v *G.Node, err error) {
	parts := make([]*G.Node, 3)
	for i := range parts {
		op := SplitHeadsOp{Batch: batch, Seq: seq, Heads: heads, Part: i}
		if parts[i], err = G.ApplyOpWithName(op, name+"."+"qkv"[i:i+1], qkv); err != nil {
			return nil, nil, nil, err
		}
	}
	return parts[0], parts[1], parts[2], nil
}

// MergeHeads turns x [B*H, T, K] into rows [B*T, H*K].
func MergeHeads(name string, x *G.Node, batch, heads int) (*G.Node, error) {
	return G.ApplyOpWithName(MergeHeadsOp{Batch: batch, Heads: heads}, name, x)
}

// ClassPosEmbed builds [B*T, D] from patch embeddings [B*(T-1), D], the class
// embedding [D] and the positional embedding [T, D].
func ClassPosEmbed(name string, patches, cls, pos *G.Node, batch int) (*G.Node, error) {
	return G.ApplyOpWithName(ClassPosEmbedOp{Batch: batch}, name, patches, cls, pos)
}

// AddPositional adds the first seq rows of pos [Tmax, D] to each sequence of x [B*T, D].
func AddPositional(name string, x, pos *G.Node, seq int) (*G.Node, error) {
	return G.ApplyOpWithName(AddPositionalOp{Seq: seq}, name, x, pos)
}

// SelectRow picks position index of every sequence of x [B*T, D], giving [B, D].
func SelectRow(name string, x *G.Node, seq, index int) (*G.Node, error) {
	return G.ApplyOpWithName(SelectRowsOp{Seq: seq, Index: index}, name, x)
}

// SelectRows picks position idx[b] of sequence b of x [B*T, D], giving [B, D]; idx [B]
// holds integer positions as float32.
func SelectRows(name string, x, idx *G.Node, seq int) (*G.Node, error) {
	return G.ApplyOpWithName(SelectRowsOp{Seq: seq, Dynamic: true}, name, x, idx)
}
