package layers

import (
	"fmt"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Tensors maps OpenAI state-dict keys to weights, as weights.Checkpoint.Tensors does.
type Tensors = map[string]*npy.Float32

// dense wraps the checkpoint tensor key as a *tensor.Dense of the given shape, sharing
// its data (no copy). The shape may differ from the stored one only by a reshape.
func dense(t Tensors, key string, shape ...int) (*tensor.Dense, error) {
	w, ok := t[key]
	if !ok || w == nil {
		return nil, fmt.Errorf("%s: missing weight", key)
	}
	n := 1
	for _, s := range shape {
		n *= s
	}
	if len(w.Data) != n {
		return nil, fmt.Errorf("%s: got shape %v, want %v", key, w.Shape, shape)
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(w.Data)), nil
}

// Linear is torch.nn.Linear: y = x @ Weight^T + Bias.
type Linear struct {
	// Name is the module path, e.g. "visual.transformer.resblocks.0.mlp.c_fc".
	Name string
	// Weight is [Out, In], as stored by PyTorch.
	Weight *tensor.Dense
	// Bias is [Out], or nil for a linear map without bias.
	Bias *tensor.Dense
}

// NewLinear wraps name.weight [out,in] and, when bias is set, name.bias [out].
func NewLinear(t Tensors, name string, in, out int, bias bool) (*Linear, error) {
	w, err := dense(t, name+".weight", out, in)
	if err != nil {
		return nil, err
	}
	l := &Linear{Name: name, Weight: w}
	if bias {
		if l.Bias, err = dense(t, name+".bias", out); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Forward maps x [N, In] to [N, Out].
func (l *Linear) Forward(b *graph.Builder, x *G.Node) (*G.Node, error) {
	return l.Fused(b, x, graph.Identity, nil)
}

// Fused maps x [N, In] to act(x @ Weight^T + Bias), plus residual [N, Out] when it is
// not nil (act must then be graph.Identity), in one graph.LinearOp.
func (l *Linear) Fused(b *graph.Builder, x *G.Node, act graph.Activation, residual *G.Node) (*G.Node, error) {
	opt := graph.LinearOptions{Act: act, Residual: residual}
	if l.Bias != nil {
		opt.Bias = b.Param(l.Name+".bias", l.Bias)
	}
	y, err := graph.Linear(l.Name, x, b.Param(l.Name+".weight", l.Weight), opt) // [N, Out]
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.Name, err)
	}
	return y, nil
}

// LayerNorm is torch.nn.LayerNorm over the last axis.
type LayerNorm struct {
	// Name is the module path, e.g. "visual.ln_pre".
	Name string
	// Weight (gain) and Bias are [D].
	Weight, Bias *tensor.Dense
	// Eps is added to the variance.
	Eps float32
}

// NewLayerNorm wraps name.weight and name.bias, both [d].
func NewLayerNorm(t Tensors, name string, d int, eps float32) (*LayerNorm, error) {
	w, err := dense(t, name+".weight", d)
	if err != nil {
		return nil, err
	}
	bias, err := dense(t, name+".bias", d)
	if err != nil {
		return nil, err
	}
	return &LayerNorm{Name: name, Weight: w, Bias: bias, Eps: eps}, nil
}

// Forward normalises x [N, D].
func (l *LayerNorm) Forward(b *graph.Builder, x *G.Node) (*G.Node, error) {
	y, err := graph.LayerNorm(l.Name, x, b.Param(l.Name+".weight", l.Weight), b.Param(l.Name+".bias", l.Bias), l.Eps)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.Name, err)
	}
	return y, nil
}

// MultiheadAttention is torch.nn.MultiheadAttention as CLIP uses it: self-attention
// with one packed input projection.
type MultiheadAttention struct {
	// Name is the module path, e.g. "transformer.resblocks.0.attn".
	Name string
	// InProjWeight is [3D, D]: the q, k and v projections stacked.
	InProjWeight *tensor.Dense
	// InProjBias is [3D].
	InProjBias *tensor.Dense
	// OutProj is the output projection D -> D.
	OutProj *Linear
	// Heads is H.
	Heads int
	// Causal masks future positions (text tower).
	Causal bool
}

// NewMultiheadAttention wraps name.in_proj_weight, name.in_proj_bias and name.out_proj.
func NewMultiheadAttention(t Tensors, name string, d, heads int, causal bool) (*MultiheadAttention, error) {
	if heads <= 0 || d%heads != 0 {
		return nil, fmt.Errorf("%s: width %d is not divisible by heads %d", name, d, heads)
	}
	in, err := NewLinear(renamed(t, name+".in_proj", name+".in_proj_weight", name+".in_proj_bias"), name+".in_proj", d, 3*d, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out, err := NewLinear(t, name+".out_proj", d, d, true)
	if err != nil {
		return nil, err
	}
	return &MultiheadAttention{Name: name, InProjWeight: in.Weight, InProjBias: in.Bias, OutProj: out,
		Heads: heads, Causal: causal}, nil
}

// renamed exposes PyTorch's in_proj_weight/in_proj_bias under Linear's key scheme.
func renamed(t Tensors, prefix, weight, bias string) Tensors {
	return Tensors{prefix + ".weight": t[weight], prefix + ".bias": t[bias]}
}

// Forward runs self-attention over x [B*T, D] and adds residual [B*T, D] to the
// result when it is not nil (the block's skip connection, fused into out_proj).
func (a *MultiheadAttention) Forward(b *graph.Builder, x *G.Node, batch, seq int, residual *G.Node) (*G.Node, error) {
	opt := graph.LinearOptions{Bias: b.Param(a.Name+".in_proj_bias", a.InProjBias)}
	qkv, err := graph.Linear(a.Name+".in_proj", x, b.Param(a.Name+".in_proj_weight", a.InProjWeight), opt) // [B*T, 3D]
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	ctx, err := graph.Attention(a.Name, qkv, batch, seq, a.Heads, a.Causal) // [B*T, D], heads merged
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	return a.OutProj.Fused(b, ctx, graph.Identity, residual) // [B*T, D]
}

// MLP is the block's feed-forward network: c_fc (D -> 4D), activation, c_proj (4D -> D).
type MLP struct {
	// Name is the module path, e.g. "visual.transformer.resblocks.0.mlp".
	Name string
	// CFc is the expansion D -> F.
	CFc *Linear
	// CProj is the projection F -> D.
	CProj *Linear
	// Activation is QuickGELU for OpenAI weights.
	Activation graph.Activation
}

// NewMLP wraps name.c_fc and name.c_proj.
func NewMLP(t Tensors, name string, d int, act graph.Activation) (*MLP, error) {
	fc, err := NewLinear(t, name+".c_fc", d, 4*d, true)
	if err != nil {
		return nil, err
	}
	proj, err := NewLinear(t, name+".c_proj", 4*d, d, true)
	if err != nil {
		return nil, err
	}
	return &MLP{Name: name, CFc: fc, CProj: proj, Activation: act}, nil
}

// Forward maps x [N, D] to [N, D] and adds residual [N, D] when it is not nil (the
// block's skip connection). The activation is fused into c_fc, the residual into c_proj.
func (m *MLP) Forward(b *graph.Builder, x, residual *G.Node) (*G.Node, error) {
	h, err := m.CFc.Fused(b, x, m.Activation, nil) // [N, F]
	if err != nil {
		return nil, err
	}
	return m.CProj.Fused(b, h, graph.Identity, residual) // [N, D]
}

// ResidualAttentionBlock is a pre-LN transformer block:
// x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)).
type ResidualAttentionBlock struct {
	// Name is the module path, e.g. "transformer.resblocks.3".
	Name string
	// Ln1 normalises the attention input.
	Ln1 *LayerNorm
	// Attn is the self-attention.
	Attn *MultiheadAttention
	// Ln2 normalises the MLP input.
	Ln2 *LayerNorm
	// MLP is the feed-forward network.
	MLP *MLP
}

// NewResidualAttentionBlock wraps the block at name.
func NewResidualAttentionBlock(t Tensors, name string, d, heads int, causal bool, act graph.Activation, eps float32) (*ResidualAttentionBlock, error) {
	var (
		r   = &ResidualAttentionBlock{Name: name}
		err error
	)
	if r.Ln1, err = NewLayerNorm(t, name+".ln_1", d, eps); err != nil {
		return nil, err
	}
	if r.Attn, err = NewMultiheadAttention(t, name+".attn", d, heads, causal); err != nil {
		return nil, err
	}
	if r.Ln2, err = NewLayerNorm(t, name+".ln_2", d, eps); err != nil {
		return nil, err
	}
	if r.MLP, err = NewMLP(t, name+".mlp", d, act); err != nil {
		return nil, err
	}
	return r, nil
}

// Forward maps x [B*T, D] to [B*T, D].
func (r *ResidualAttentionBlock) Forward(b *graph.Builder, x *G.Node, batch, seq int) (*G.Node, error) {
	h, err := r.Ln1.Forward(b, x)
	if err != nil {
		return nil, err
	}
	if x, err = r.Attn.Forward(b, h, batch, seq, x); err != nil { // [B*T, D]
		return nil, err
	}
	if h, err = r.Ln2.Forward(b, x); err != nil {
		return nil, err
	}
	return r.MLP.Forward(b, h, x) // [B*T, D]
}

// Transformer is a stack of residual attention blocks.
type Transformer struct {
	// Name is the module path, "visual.transformer" or "transformer".
	Name string
	// Resblocks are the blocks in order.
	Resblocks []*ResidualAttentionBlock
}

// NewTransformer wraps name.resblocks.0 .. name.resblocks.{layers-1}.
func NewTransformer(t Tensors, name string, d, layers, heads int, causal bool, act graph.Activation, eps float32) (*Transformer, error) {
	tr := &Transformer{Name: name}
	for i := 0; i < layers; i++ {
		blk, err := NewResidualAttentionBlock(t, fmt.Sprintf("%s.resblocks.%d", name, i), d, heads, causal, act, eps)
		if err != nil {
			return nil, err
		}
		tr.Resblocks = append(tr.Resblocks, blk)
	}
	return tr, nil
}

// Forward runs every block over x [B*T, D] and returns each block's output [B*T, D].
func (tr *Transformer) Forward(b *graph.Builder, x *G.Node, batch, seq int) ([]*G.Node, error) {
	outs := make([]*G.Node, 0, len(tr.Resblocks))
	for _, blk := range tr.Resblocks {
		var err error
		if x, err = blk.Forward(b, x, batch, seq); err != nil {
			return nil, err
		}
		outs = append(outs, x)
	}
	return outs, nil
}

// activation returns the MLP nonlinearity c asks for.
func (c Config) activation() graph.Activation {
	if c.QuickGELU {
		return graph.QuickGELU
	}
	return graph.GELU
}
