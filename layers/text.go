package layers

import (
	"fmt"

	"github.com/gorgoclip/gorgoclip/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func init() {
	RegisterText("transformer", TextKind{Validate: validateText, New: func(c Config, w *Weights) (TextTower, error) {
		return NewTextTransformer(c, w)
	}})
}

// validateText checks a "transformer" text tower's fields.
func validateText(t TextConfig) error {
	var p problems
	p.positive("text context_length", t.ContextLength, maxContext)
	p.positive("text vocab_size", t.VocabSize, maxVocab)
	validateTransformer(&p, "text", t.Width, t.Layers, t.Heads, t.MLPRatio, t.LayerScaleInit)
	return joinProblems(p)
}

// TextTransformer is CLIP's text tower: token and positional embeddings, causal
// blocks, ln_final, the end-of-text token projected. OpenAI keeps these fields at the
// top level of its CLIP class, so their keys have no prefix (token_embedding.weight,
// ln_final, ...).
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

// NewTextTransformer declares the text weights for config c.
func NewTextTransformer(c Config, w *Weights) (*TextTransformer, error) {
	tc := c.Text
	d := tc.Width
	m := &TextTransformer{Config: tc,
		TokenEmbedding:      w.Param("token_embedding.weight", Normal(0.02), tc.VocabSize, d),
		PositionalEmbedding: w.Param("positional_embedding", Normal(0.01), tc.ContextLength, d),
	}
	var err error
	m.Transformer, err = NewTransformer(w, "transformer", TransformerConfig{Width: d, Layers: tc.Layers,
		Heads: tc.Heads, MLPWidth: mlpWidth(d, tc.MLPRatio), LayerScaleInit: tc.LayerScaleInit, Causal: true,
		Activation: c.activation(), Eps: c.LayerNormEps})
	if err != nil {
		return nil, err
	}
	m.LnFinal = NewLayerNorm(w, "ln_final", d, c.LayerNormEps)
	m.TextProjection = w.Param("text_projection", Normal(1/sqrt(d)), d, c.EmbedDim)
	return m, nil
}

// Embed gathers token_embedding rows for tokens [B, L] into dst [B*L, D] (widened to
// float32 when a bf16 model stores the table in bfloat16; see Tables).
func (m *TextTransformer) Embed(dst []float32, tokens []int32, batch, seq int) error {
	d := m.Config.Width
	if len(tokens) != batch*seq || len(dst) != batch*seq*d {
		return fmt.Errorf("token_embedding: %d tokens and %d outputs for [%d,%d]", len(tokens), len(dst), batch, seq)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= m.Config.VocabSize {
			return fmt.Errorf("token_embedding: token %d at row %d position %d is outside the vocabulary [0,%d)", id, i/seq, i%seq, m.Config.VocabSize)
		}
		switch table := m.TokenEmbedding.Data().(type) {
		case []uint16:
			graph.WidenBF16(dst[i*d:(i+1)*d], table[int(id)*d:(int(id)+1)*d])
		default:
			copy(dst[i*d:(i+1)*d], floats(m.TokenEmbedding)[int(id)*d:(int(id)+1)*d])
		}
	}
	return nil
}

// Tables returns the weights Embed reads on the host, the token embedding: a bf16
// model (clip.WithPrecision) stores them in bfloat16 like its GEMM weights.
func (m *TextTransformer) Tables() []*tensor.Dense { return []*tensor.Dense{m.TokenEmbedding} }

// Forward builds the text tower for embedded tokens [B*L, D] (see Embed) and
// end-of-text positions eot [B] (integers as float32, each < L).
func (m *TextTransformer) Forward(b *graph.Builder, emb, eot *G.Node, batch, seq int) (*TowerOutputs, error) {
	d := m.Config.Width
	x, err := graph.AddPositional("positional_embedding.add", emb, b.Param("positional_embedding", m.PositionalEmbedding), seq) // [B*L, D]
	if err != nil {
		return nil, wrap("positional_embedding", err)
	}
	out := &TowerOutputs{Taps: []Tap{{Name: "embedded", Node: x, Shape: []int{seq, d}}}}
	blocks, attn, err := m.Transformer.Forward(b, x, batch, seq)
	if err != nil {
		return nil, err
	}
	out.Attention = attn
	out.Taps = append(out.Taps, blockTaps(blocks, seq, d)...)
	final, err := m.LnFinal.Forward(b, blocks[len(blocks)-1]) // [B*L, D]
	if err != nil {
		return nil, err
	}
	out.Taps = append(out.Taps, Tap{Name: "ln_final", Node: final, Shape: []int{seq, d}})
	pick := func(key string, rows *G.Node) (*G.Node, error) {
		n, err := graph.SelectRows(key+".eot", rows, eot, seq)
		return n, wrap(key, err)
	}
	if b.PoolFromTaps() {
		out.Pooled, err = pick("ln_final", final)
	} else if out.Pooled, err = m.Transformer.Pooled(b, x, blocks, attn, pick); err == nil {
		out.Pooled, err = m.LnFinal.Forward(b, out.Pooled) // row by row: the same values
	}
	if err != nil { // [B, D]
		return nil, err
	}
	out.Features, err = project(b, "text_projection", m.TextProjection, out.Pooled) // [B, E]
	return out, err
}
