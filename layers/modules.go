package layers

import (
	"fmt"
	"math"

	"github.com/gorgoclip/gorgoclip/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is torch.nn.Linear: y = x @ Weight^T + Bias.
type Linear struct {
	// Name is the module path, e.g. "visual.transformer.resblocks.0.mlp.c_fc".
	Name string
	// Weight is [Out, In], as stored by PyTorch.
	Weight *tensor.Dense
	// Bias is [Out].
	Bias *tensor.Dense
}

// NewLinear declares name.weight [out,in] (initialised by init) and name.bias [out]
// (PyTorch's default initialisation).
func NewLinear(w *Weights, name string, in, out int, init Init) *Linear {
	return &Linear{Name: name, Weight: w.Param(name+".weight", init, out, in), Bias: w.Param(name+".bias", fanIn(in), out)}
}

// Forward maps x [N, In] to [N, Out].
func (l *Linear) Forward(b *graph.Builder, x *G.Node) (*G.Node, error) {
	return l.Fused(b, x, graph.LinearOptions{})
}

// Fused maps x [N, In] to [N, Out] in one graph.LinearOp, with what opt adds after the
// product (opt.Bias is set to the module's bias).
func (l *Linear) Fused(b *graph.Builder, x *G.Node, opt graph.LinearOptions) (*G.Node, error) {
	opt.Bias = b.Param(l.Name+".bias", l.Bias)
	y, err := graph.Linear(l.Name, x, b.Param(l.Name+".weight", l.Weight), opt) // [N, Out]
	return y, wrap(l.Name, err)
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

// NewLayerNorm declares name.weight (ones) and name.bias (zeros), both [d].
func NewLayerNorm(w *Weights, name string, d int, eps float32) *LayerNorm {
	return &LayerNorm{Name: name, Weight: w.Param(name+".weight", Const(1), d), Bias: w.Param(name+".bias", Const(0), d), Eps: eps}
}

// Forward normalises x [N, D].
func (l *LayerNorm) Forward(b *graph.Builder, x *G.Node) (*G.Node, error) {
	y, err := graph.LayerNorm(l.Name, x, b.Param(l.Name+".weight", l.Weight), b.Param(l.Name+".bias", l.Bias), l.Eps)
	return y, wrap(l.Name, err)
}

// MultiheadAttention is torch.nn.MultiheadAttention as CLIP uses it: self-attention
// with one packed input projection (q, k and v stacked).
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

// NewMultiheadAttention declares name.in_proj_weight, name.in_proj_bias and
// name.out_proj, initialised as OpenAI's initialize_parameters does (in_proj std
// attnStd, out_proj std projStd, biases zero as nn.MultiheadAttention sets them).
func NewMultiheadAttention(w *Weights, name string, d, heads int, causal bool, attnStd, projStd float64) (*MultiheadAttention, error) {
	if heads <= 0 || d%heads != 0 {
		return nil, fmt.Errorf("%s: width %d is not divisible by heads %d", name, d, heads)
	}
	return &MultiheadAttention{Name: name, Heads: heads, Causal: causal,
		InProjWeight: w.Param(name+".in_proj_weight", Normal(attnStd), 3*d, d),
		InProjBias:   w.Param(name+".in_proj_bias", Const(0), 3*d),
		OutProj: &Linear{Name: name + ".out_proj", Weight: w.Param(name+".out_proj.weight", Normal(projStd), d, d),
			Bias: w.Param(name+".out_proj.bias", Const(0), d)},
	}, nil
}

// Forward runs self-attention over x [B*T, D]; opt says what out_proj adds after its
// product (the block's residual and layer scale, fused).
func (a *MultiheadAttention) Forward(b *graph.Builder, x *G.Node, batch, seq int, opt graph.LinearOptions) (*G.Node, error) {
	ctx, err := a.Attend(b, x, batch, seq)
	if err != nil {
		return nil, err
	}
	return a.OutProj.Fused(b, ctx, opt) // [B*T, D]
}

// Attend is Forward before out_proj: the in-projection and the attention, giving the
// heads' outputs merged into rows [B*T, D] (a graph.Attention node, whose softmax
// weights graph.AttentionProbs recovers).
func (a *MultiheadAttention) Attend(b *graph.Builder, x *G.Node, batch, seq int) (*G.Node, error) {
	in := graph.LinearOptions{Bias: b.Param(a.Name+".in_proj_bias", a.InProjBias)}
	qkv, err := graph.Linear(a.Name+".in_proj", x, b.Param(a.Name+".in_proj_weight", a.InProjWeight), in) // [B*T, 3D]
	if err != nil {
		return nil, wrap(a.Name, err)
	}
	ctx, err := graph.Attention(a.Name, qkv, batch, seq, a.Heads, a.Causal) // [B*T, D], heads merged
	return ctx, wrap(a.Name, err)
}

// MLP is the block's feed-forward network: c_fc (D -> F), activation, c_proj (F -> D).
type MLP struct {
	// Name is the module path, e.g. "visual.transformer.resblocks.0.mlp".
	Name string
	// CFc is the expansion D -> F.
	CFc *Linear
	// CProj is the projection F -> D.
	CProj *Linear
	// Activation is QuickGELU for OpenAI weights, GELU for open_clip's LAION models.
	Activation graph.Activation
}

// NewMLP declares name.c_fc and name.c_proj (hidden width f), weights initialised
// with std fcStd and projStd as OpenAI does.
func NewMLP(w *Weights, name string, d, f int, act graph.Activation, fcStd, projStd float64) *MLP {
	return &MLP{Name: name, Activation: act,
		CFc:   NewLinear(w, name+".c_fc", d, f, Normal(fcStd)),
		CProj: NewLinear(w, name+".c_proj", f, d, Normal(projStd)),
	}
}

// Forward maps x [N, D] to [N, D]; opt says what c_proj adds after its product (the
// block's residual and layer scale). The activation is fused into c_fc.
func (m *MLP) Forward(b *graph.Builder, x *G.Node, opt graph.LinearOptions) (*G.Node, error) {
	h, err := m.CFc.Fused(b, x, graph.LinearOptions{Act: m.Activation}) // [N, F]
	if err != nil {
		return nil, err
	}
	return m.CProj.Fused(b, h, opt) // [N, D]
}

// ResidualAttentionBlock is a pre-LN transformer block:
// x = x + ls_1 * attn(ln_1(x)); x = x + ls_2 * mlp(ln_2(x)), where the layer scales
// ls_1 and ls_2 (open_clip's LayerScale) are present only in some models.
type ResidualAttentionBlock struct {
	// Name is the module path, e.g. "transformer.resblocks.3".
	Name string
	// Ln1 normalises the attention input.
	Ln1 *LayerNorm
	// Attn is the self-attention.
	Attn *MultiheadAttention
	// Ls1 is the attention branch's per-channel gain ls_1.gamma [D], or nil.
	Ls1 *tensor.Dense
	// Ln2 normalises the MLP input.
	Ln2 *LayerNorm
	// MLP is the feed-forward network.
	MLP *MLP
	// Ls2 is the MLP branch's gain ls_2.gamma [D], or nil.
	Ls2 *tensor.Dense
}

// TransformerConfig is what a residual attention stack needs to know.
type TransformerConfig struct {
	// Width, Layers and Heads are D, the number of blocks and H.
	Width, Layers, Heads int
	// MLPWidth is F.
	MLPWidth int
	// LayerScaleInit adds ls_1/ls_2 gains initialised to it when not 0.
	LayerScaleInit float64
	// Causal masks future positions.
	Causal bool
	// Activation is the MLP's.
	Activation graph.Activation
	// Eps is LayerNorm's epsilon.
	Eps float32
}

// NewResidualAttentionBlock declares the block at name.
func NewResidualAttentionBlock(w *Weights, name string, c TransformerConfig) (*ResidualAttentionBlock, error) {
	d := c.Width
	// OpenAI's initialize_parameters: attn_std = D^-0.5, proj_std = D^-0.5 (2L)^-0.5,
	// fc_std = (2D)^-0.5.
	attnStd := 1 / sqrt(d)
	projStd := attnStd / math.Sqrt(2*float64(c.Layers))
	fcStd := 1 / math.Sqrt(2*float64(d))
	attn, err := NewMultiheadAttention(w, name+".attn", d, c.Heads, c.Causal, attnStd, projStd)
	if err != nil {
		return nil, err
	}
	r := &ResidualAttentionBlock{Name: name, Ln1: NewLayerNorm(w, name+".ln_1", d, c.Eps), Attn: attn}
	if c.LayerScaleInit != 0 {
		r.Ls1 = w.Param(name+".ls_1.gamma", Const(c.LayerScaleInit), d)
	}
	r.Ln2 = NewLayerNorm(w, name+".ln_2", d, c.Eps)
	r.MLP = NewMLP(w, name+".mlp", d, c.MLPWidth, c.Activation, fcStd, projStd)
	if c.LayerScaleInit != 0 {
		r.Ls2 = w.Param(name+".ls_2.gamma", Const(c.LayerScaleInit), d)
	}
	return r, nil
}

// branch returns the out-projection options that finish a residual branch: scale by
// the layer-scale gain (when there is one), then add the skip connection x.
func (r *ResidualAttentionBlock) branch(b *graph.Builder, key string, gamma *tensor.Dense, x *G.Node) graph.LinearOptions {
	opt := graph.LinearOptions{Residual: x}
	if gamma != nil {
		opt.Scale = b.Param(key, gamma)
	}
	return opt
}

// Forward maps x [B*T, D] to [B*T, D]; attn is the block's attention before out_proj
// (MultiheadAttention.Attend).
func (r *ResidualAttentionBlock) Forward(b *graph.Builder, x *G.Node, batch, seq int) (out, attn *G.Node, err error) {
	h, err := r.Ln1.Forward(b, x)
	if err != nil {
		return nil, nil, err
	}
	if attn, err = r.Attn.Attend(b, h, batch, seq); err != nil { // [B*T, D]
		return nil, nil, err
	}
	out, err = r.Finish(b, attn, x) // [B*T, D]
	return out, attn, err
}

// Finish is the block after its attention: out_proj with the skip connection x, then
// ln_2 and the MLP with theirs. Every op in it works row by row, so given the rows of
// attn and x [N, D] that an output reads (Transformer.Pooled) it computes only those.
func (r *ResidualAttentionBlock) Finish(b *graph.Builder, attn, x *G.Node) (*G.Node, error) {
	x, err := r.Attn.OutProj.Fused(b, attn, r.branch(b, r.Name+".ls_1.gamma", r.Ls1, x)) // [N, D]
	if err != nil {
		return nil, err
	}
	h, err := r.Ln2.Forward(b, x)
	if err != nil {
		return nil, err
	}
	return r.MLP.Forward(b, h, r.branch(b, r.Name+".ls_2.gamma", r.Ls2, x)) // [N, D]
}

// Transformer is a stack of residual attention blocks.
type Transformer struct {
	// Name is the module path, "visual.transformer" or "transformer".
	Name string
	// Resblocks are the blocks in order.
	Resblocks []*ResidualAttentionBlock
}

// NewTransformer declares name.resblocks.0 .. name.resblocks.{Layers-1}.
func NewTransformer(w *Weights, name string, c TransformerConfig) (*Transformer, error) {
	tr := &Transformer{Name: name}
	for i := range c.Layers {
		blk, err := NewResidualAttentionBlock(w, fmt.Sprintf("%s.resblocks.%d", name, i), c)
		if err != nil {
			return nil, err
		}
		tr.Resblocks = append(tr.Resblocks, blk)
	}
	return tr, nil
}

// Forward runs every block over x [B*T, D] and returns each block's output [B*T, D]
// and its attention before out_proj [B*T, D].
func (tr *Transformer) Forward(b *graph.Builder, x *G.Node, batch, seq int) (outs, attn []*G.Node, err error) {
	for _, blk := range tr.Resblocks {
		var a *G.Node
		if x, a, err = blk.Forward(b, x, batch, seq); err != nil {
			return nil, nil, err
		}
		outs, attn = append(outs, x), append(attn, a)
	}
	return outs, attn, nil
}

// Pooled returns the last block's output [B, D] at one row of each sequence, the
// row pick selects from a [B*T, D] node (the class token, the end-of-text token). x
// is Forward's input and outs, attn its results. Nothing but that row reaches a
// pooled output after the last attention, so out_proj and the MLP of the last block
// run for those rows only: one twelfth of a 12-block tower's projections and MLPs,
// 6% of its work, for the same values. Then the last block's taps do not reach the
// result: a tower picks from its taps instead when b.PoolFromTaps asks for the
// reference computation (gradients with respect to a tap need it).
func (tr *Transformer) Pooled(b *graph.Builder, x *G.Node, outs, attn []*G.Node, pick func(key string, rows *G.Node) (*G.Node, error)) (*G.Node, error) {
	last := len(outs) - 1
	if last < 0 {
		return nil, fmt.Errorf("%s: no blocks", tr.Name)
	}
	if last > 0 {
		x = outs[last-1]
	}
	blk := tr.Resblocks[last]
	a, err := pick(blk.Name+".attn", attn[last])
	if err != nil {
		return nil, err
	}
	if x, err = pick(blk.Name, x); err != nil {
		return nil, err
	}
	return blk.Finish(b, a, x)
}

// blockTaps names a stack's outputs [B*T, D] "block0".."blockN-1", then the last one
// again as "encoder".
func blockTaps(blocks []*G.Node, seq, width int) []Tap {
	taps := make([]Tap, 0, len(blocks)+1)
	for i, n := range blocks {
		taps = append(taps, Tap{Name: fmt.Sprintf("block%d", i), Node: n, Shape: []int{seq, width}})
	}
	last := taps[len(taps)-1]
	last.Name = "encoder"
	return append(taps, last)
}

// activation returns the MLP nonlinearity c asks for.
func (c Config) activation() graph.Activation {
	if c.QuickGELU {
		return graph.QuickGELU
	}
	return graph.GELU
}

// project is a bare projection parameter [In, E] applied as x @ P (OpenAI's
// visual.proj and text_projection), giving [B, E].
func project(b *graph.Builder, key string, p *tensor.Dense, x *G.Node) (*G.Node, error) {
	y, err := graph.Linear(key, x, b.Param(key, p), graph.LinearOptions{InOut: true})
	return y, wrap(key, err)
}

// sqrt is the square root of n as a float64 (initialisation scales).
func sqrt(n int) float64 { return math.Sqrt(float64(n)) }
