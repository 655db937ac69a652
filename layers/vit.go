package layers

import (
	"github.com/gorgoclip/gorgoclip/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func init() {
	RegisterVision("vit", VisionKind{Validate: ValidateViT, New: func(c Config, w *Weights) (VisionTower, error) {
		return NewVisionTransformer(c, w)
	}})
}

// ValidateViT checks the fields of a "vit" tower (a kind built from
// NewVisionTransformer can reuse it), naming each bad one.
func ValidateViT(v VisionConfig) error {
	var p problems
	p.positive("vision image_resolution", v.ImageResolution, maxResolution)
	p.positive("vision patch_size", v.PatchSize, maxResolution)
	if v.PatchSize > 0 && v.ImageResolution%v.PatchSize != 0 {
		p.add("vision image_resolution %d is not a multiple of patch_size %d", v.ImageResolution, v.PatchSize)
	}
	validateTransformer(&p, "vision", v.Width, v.Layers, v.Heads, v.MLPRatio, v.LayerScaleInit)
	p.unused("vit", "vision stage_blocks", len(v.StageBlocks) > 0)
	return joinProblems(p)
}

// VisionTransformer is OpenAI's VisionTransformer (the image tower of the ViT models):
// patch embedding, class token, positional embedding, ln_pre, the blocks, ln_post of
// the class token, projection.
type VisionTransformer struct {
	// Config is the tower's configuration.
	Config VisionConfig
	// Conv1 is the patch embedding, a stride-P convolution without bias, stored
	// [D, 3, P, P] and reshaped at load to the matrix [D, 3*P*P] it is used as.
	Conv1 *tensor.Dense
	// ClassEmbedding is [D].
	ClassEmbedding *tensor.Dense
	// PositionalEmbedding is [T, D], T = G*G+1.
	PositionalEmbedding *tensor.Dense
	// LnPre normalises the token sequence before the blocks.
	LnPre *LayerNorm
	// Transformer is the block stack.
	Transformer *Transformer
	// LnPost normalises the class token after the blocks.
	LnPost *LayerNorm
	// Proj is [D, E], applied as x @ Proj (no bias).
	Proj *tensor.Dense
}

// NewVisionTransformer declares the "visual." weights of a ViT for config c.
func NewVisionTransformer(c Config, w *Weights) (*VisionTransformer, error) {
	v := c.Vision
	d, p := v.Width, v.PatchSize
	scale := 1 / sqrt(d) // OpenAI's init of the class, positional and projection
	m := &VisionTransformer{Config: v,
		Conv1:               w.Param("visual.conv1.weight", fanIn(3*p*p), d, 3, p, p),
		ClassEmbedding:      w.Param("visual.class_embedding", Normal(scale), d),
		PositionalEmbedding: w.Param("visual.positional_embedding", Normal(scale), v.Tokens(), d),
		LnPre:               NewLayerNorm(w, "visual.ln_pre", d, c.LayerNormEps),
	}
	var err error
	m.Transformer, err = NewTransformer(w, "visual.transformer", TransformerConfig{Width: d, Layers: v.Layers,
		Heads: v.Heads, MLPWidth: mlpWidth(d, v.MLPRatio), LayerScaleInit: v.LayerScaleInit,
		Activation: c.activation(), Eps: c.LayerNormEps})
	if err != nil {
		return nil, err
	}
	m.LnPost = NewLayerNorm(w, "visual.ln_post", d, c.LayerNormEps)
	m.Proj = w.Param("visual.proj", Normal(scale), d, c.EmbedDim)
	w.After(func() error { return wrap("visual.conv1.weight", m.Conv1.Reshape(d, 3*p*p)) })
	return m, nil
}

// Forward builds the image tower for CLIP-normalised pixels [B, 3*R*R].
func (m *VisionTransformer) Forward(b *graph.Builder, pixels *G.Node, batch int) (*TowerOutputs, error) {
	v := m.Config
	t, d := v.Tokens(), v.Width
	// conv1 + class token + positional embedding, one op: [B*T, D]
	x, err := graph.PatchEmbed("visual.conv1", pixels, b.Param("visual.conv1.weight", m.Conv1),
		b.Param("visual.class_embedding", m.ClassEmbedding), b.Param("visual.positional_embedding", m.PositionalEmbedding),
		batch, v.ImageResolution, v.PatchSize)
	if err != nil {
		return nil, wrap("visual.conv1", err)
	}
	if x, err = m.LnPre.Forward(b, x); err != nil { // [B*T, D]
		return nil, err
	}
	out := &TowerOutputs{Taps: []Tap{{Name: "embedded", Node: x, Shape: []int{t, d}}}}
	blocks, attn, err := m.Transformer.Forward(b, x, batch, t)
	if err != nil {
		return nil, err
	}
	out.Attention = attn
	out.Taps = append(out.Taps, blockTaps(blocks, t, d)...)
	pick := func(key string, rows *G.Node) (*G.Node, error) {
		n, err := graph.SelectRow(key+".class_token", rows, t, 0)
		return n, wrap(key, err)
	}
	var cls *G.Node // [B, D]
	if b.PoolFromTaps() {
		cls, err = pick("visual.transformer", blocks[len(blocks)-1])
	} else {
		cls, err = m.Transformer.Pooled(b, x, blocks, attn, pick)
	}
	if err != nil {
		return nil, err
	}
	if out.Pooled, err = m.LnPost.Forward(b, cls); err != nil { // [B, D]
		return nil, err
	}
	out.Features, err = project(b, "visual.proj", m.Proj, out.Pooled) // [B, E]
	return out, err
}

// FLOPs is the work the image tower does per image, counting a multiply-add as 2: the
// patch embedding, per block 24*T*D^2 for the four projections (with OpenAI's MLP
// ratio 4) plus 4*T^2*D for attention, except that the last block's out_proj and MLP
// run for the class token only (Transformer.Pooled), and the projection (8.30 GFLOP
// for ViT-B/32, 8.82 with every row of the last block).
func (m *VisionTransformer) FLOPs() float64 {
	v := m.Config
	t, d, g := float64(v.Tokens()), float64(v.Width), float64(v.Grid())
	f := float64(mlpWidth(v.Width, v.MLPRatio))
	patch := 2 * g * g * 3 * float64(v.PatchSize*v.PatchSize) * d
	attend := 6*t*d*d + 4*t*t*d // in_proj and attention, every row
	finish := 2*d*d + 4*d*f     // out_proj and the MLP, per row
	blocks := float64(v.Layers)*(attend+t*finish) - (t-1)*finish
	return patch + blocks + 2*d*float64(m.Proj.Shape()[1])
}
