package layers

import (
	"fmt"

	"github.com/gorgoclip/gorgoclip/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TowerOutputs are the nodes of one tower's graph that callers may want to read.
type TowerOutputs struct {
	// Embedded is the input to the first block [B*T, D]: after ln_pre for vision,
	// after the token and positional embeddings for text.
	Embedded *G.Node
	// Blocks holds each residual block's output [B*T, D].
	Blocks []*G.Node
	// Final is ln_final over every position [B*T, D] (text only; nil for vision).
	Final *G.Node
	// Pooled is the pooled token after its LayerNorm [B, D]: ln_post of the class token
	// (vision) or ln_final at the end-of-text position (text). These are the
	// pre-projection features.
	Pooled *G.Node
	// Features is Pooled @ projection [B, E].
	Features *G.Node
}

// VisionTransformer is OpenAI's VisionTransformer (the image tower).
type VisionTransformer struct {
	// Config is the tower's configuration.
	Config VisionConfig
	// Conv1 is the patch embedding, a convolution without bias: [D, 3, P, P]
	// stored, used as the matrix [D, 3*P*P].
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

// NewVisionTransformer wraps the "visual." weights of t for config c.
func NewVisionTransformer(c Config, t Tensors) (*VisionTransformer, error) {
	v := c.Vision
	p := 3 * v.PatchSize * v.PatchSize
	m := &VisionTransformer{Config: v}
	var err error
	if m.Conv1, err = dense(t, "visual.conv1.weight", v.Width, p); err != nil {
		return nil, err
	}
	if m.ClassEmbedding, err = dense(t, "visual.class_embedding", v.Width); err != nil {
		return nil, err
	}
	if m.PositionalEmbedding, err = dense(t, "visual.positional_embedding", v.Tokens(), v.Width); err != nil {
		return nil, err
	}
	if m.LnPre, err = NewLayerNorm(t, "visual.ln_pre", v.Width, c.LayerNormEps); err != nil {
		return nil, err
	}
	if m.Transformer, err = NewTransformer(t, "visual.transformer", v.Width, v.Layers, v.Heads, false, c.activation(), c.LayerNormEps); err != nil {
		return nil, err
	}
	if m.LnPost, err = NewLayerNorm(t, "visual.ln_post", v.Width, c.LayerNormEps); err != nil {
		return nil, err
	}
	if m.Proj, err = dense(t, "visual.proj", v.Width, c.EmbedDim); err != nil {
		return nil, err
	}
	return m, nil
}

// Forward builds the image tower for CLIP-normalised pixels [B, 3*R*R] (each image
// [3,R,R] row-major).
func (m *VisionTransformer) Forward(b *graph.Builder, pixels *G.Node, batch int) (*TowerOutputs, error) {
	v := m.Config
	t := v.Tokens()
	// conv1 + class token + positional embedding, one op: [B*T, D]
	x, err := graph.PatchEmbed("visual.conv1", pixels, b.Param("visual.conv1.weight", m.Conv1),
		b.Param("visual.class_embedding", m.ClassEmbedding), b.Param("visual.positional_embedding", m.PositionalEmbedding),
		batch, v.ImageResolution, v.PatchSize)
	if err != nil {
		return nil, fmt.Errorf("visual.conv1: %w", err)
	}
	out := &TowerOutputs{}
	if out.Embedded, err = m.LnPre.Forward(b, x); err != nil { // [B*T, D]
		return nil, err
	}
	if out.Blocks, err = m.Transformer.Forward(b, out.Embedded, batch, t); err != nil {
		return nil, err
	}
	cls, err := graph.SelectRow("visual.class_token", out.Blocks[len(out.Blocks)-1], t, 0) // [B, D]
	if err != nil {
		return nil, fmt.Errorf("visual.ln_post: %w", err)
	}
	if out.Pooled, err = m.LnPost.Forward(b, cls); err != nil { // [B, D]
		return nil, err
	}
	out.Features, err = graph.Linear("visual.proj", out.Pooled, b.Param("visual.proj", m.Proj), graph.LinearOptions{InOut: true}) // [B, E]
	if err != nil {
		return nil, fmt.Errorf("visual.proj: %w", err)
	}
	return out, nil
}

// TextTransformer is CLIP's text tower. OpenAI keeps these fields at the top level of
// its CLIP class, so their keys have no prefix (token_embedding.weight, ln_final, ...).
type TextTransformer struct {
	// Config is the tower's configuration.
	Config TextConfig
	// TokenEmbedding is [V, D]; rows are gathered on the host (see Embed).
	TokenEmbedding *tensor.Dense
	// PositionalEmbedding is [77, D]; a run of L positions uses its first L rows.
	PositionalEmbedding *tensor.Dense
	// Transformer is the causal block stack.
	Transformer *Transformer
	// LnFinal normalises every position after the blocks.
	LnFinal *LayerNorm
	// TextProjection is [D, E], applied as x @ TextProjection (no bias).
	TextProjection *tensor.Dense
}

// NewTextTransformer wraps the text weights of t for config c.
func NewTextTransformer(c Config, t Tensors) (*TextTransformer, error) {
	tc := c.Text
	m := &TextTransformer{Config: tc}
	var err error
	if m.TokenEmbedding, err = dense(t, "token_embedding.weight", tc.VocabSize, tc.Width); err != nil {
		return nil, err
	}
	if m.PositionalEmbedding, err = dense(t, "positional_embedding", tc.ContextLength, tc.Width); err != nil {
		return nil, err
	}
	if m.Transformer, err = NewTransformer(t, "transformer", tc.Width, tc.Layers, tc.Heads, true, c.activation(), c.LayerNormEps); err != nil {
		return nil, err
	}
	if m.LnFinal, err = NewLayerNorm(t, "ln_final", tc.Width, c.LayerNormEps); err != nil {
		return nil, err
	}
	if m.TextProjection, err = dense(t, "text_projection", tc.Width, c.EmbedDim); err != nil {
		return nil, err
	}
	return m, nil
}

// Embed gathers token_embedding rows for tokens [B, L] into dst [B*L, D].
func (m *TextTransformer) Embed(dst []float32, tokens []int32, batch, seq int) error {
	d := m.Config.Width
	if len(tokens) != batch*seq || len(dst) != batch*seq*d {
		return fmt.Errorf("token_embedding: %d tokens and %d outputs for [%d,%d]", len(tokens), len(dst), batch, seq)
	}
	table := m.TokenEmbedding.Data().([]float32)
	for i, id := range tokens {
		if id < 0 || int(id) >= m.Config.VocabSize {
			return fmt.Errorf("token_embedding: token %d at row %d position %d is outside the vocabulary [0,%d)", id, i/seq, i%seq, m.Config.VocabSize)
		}
		copy(dst[i*d:(i+1)*d], table[int(id)*d:(int(id)+1)*d])
	}
	return nil
}

// Forward builds the text tower for embedded tokens [B*L, D] (see Embed) and
// end-of-text positions eot [B] (integers as float32, each < L).
func (m *TextTransformer) Forward(b *graph.Builder, emb, eot *G.Node, batch, seq int) (*TowerOutputs, error) {
	x, err := graph.AddPositional("positional_embedding.add", emb, b.Param("positional_embedding", m.PositionalEmbedding), seq) // [B*L, D]
	if err != nil {
		return nil, fmt.Errorf("positional_embedding: %w", err)
	}
	out := &TowerOutputs{Embedded: x}
	if out.Blocks, err = m.Transformer.Forward(b, x, batch, seq); err != nil {
		return nil, err
	}
	if out.Final, err = m.LnFinal.Forward(b, out.Blocks[len(out.Blocks)-1]); err != nil { // [B*L, D]
		return nil, err
	}
	if out.Pooled, err = graph.SelectRows("ln_final.eot", out.Final, eot, seq); err != nil { // [B, D]
		return nil, fmt.Errorf("ln_final: %w", err)
	}
	out.Features, err = graph.Linear("text_projection", out.Pooled, b.Param("text_projection", m.TextProjection), graph.LinearOptions{InOut: true}) // [B, E]
	if err != nil {
		return nil, fmt.Errorf("text_projection: %w", err)
	}
	return out, nil
}
