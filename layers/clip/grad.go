package clip

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/layers"
	G "gorgonia.org/gorgonia"
)

// What ImageGradients and TextGradients differentiate with respect to, besides a
// weight (by its key, e.g. "visual.proj") or a stage (a tap name, e.g. "layer4").
const (
	// WRTPixels is the CLIP-normalised pixels [N,3,R,R].
	WRTPixels = "pixels"
	// WRTEmbeddings is the token embeddings [M,L,W] before the positional embedding
	// is added: the input of prompt learning.
	WRTEmbeddings = "embeddings"
)

// TextInput is a batch of prompts as the text tower's graph takes them: token
// embeddings, before the positional embedding, and where each prompt ends. Prompt
// learning (CoOp) writes learned vectors into Embeddings.
type TextInput struct {
	// Embeddings is [Rows, Seq, W] row-major.
	Embeddings []float32
	// EOT holds each row's end-of-text position (< Seq): the token the tower pools.
	EOT []int
	// Rows and Seq are M and L.
	Rows, Seq int
}

// EmbedTokens looks up the embeddings of token ids [rows, L] (zero padded, as
// clip.tokenize writes them) for all L positions, with the end-of-text positions of
// EndOfText.
func (m *Model) EmbedTokens(tokens []int32, rows int) (*TextInput, error) {
	eot, err := EndOfText(tokens, rows)
	if err != nil {
		return nil, err
	}
	l := len(tokens) / rows
	if l > m.cfg.Text.ContextLength {
		return nil, fmt.Errorf("clip: prompts have %d positions, the model's context is %d", l, m.cfg.Text.ContextLength)
	}
	in := &TextInput{Embeddings: make([]float32, len(tokens)*m.cfg.Text.Width), EOT: eot, Rows: rows, Seq: l}
	if err := m.Text.Embed(in.Embeddings, tokens, rows, l); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	return in, nil
}

// check validates in for a tower of width w.
func (in *TextInput) check(w, context int) error {
	switch {
	case in == nil || in.Rows <= 0 || in.Seq <= 0:
		return errors.New("clip: empty text input")
	case in.Seq > context:
		return fmt.Errorf("clip: text input has %d positions, the model's context is %d", in.Seq, context)
	case len(in.Embeddings) != in.Rows*in.Seq*w:
		return fmt.Errorf("clip: text input has %d embedding values, want [%d,%d,%d]", len(in.Embeddings), in.Rows, in.Seq, w)
	case len(in.EOT) != in.Rows:
		return fmt.Errorf("clip: text input has %d end-of-text positions for %d rows", len(in.EOT), in.Rows)
	}
	for r, e := range in.EOT {
		if e < 0 || e >= in.Seq {
			return fmt.Errorf("clip: text input row %d: end-of-text position %d outside [0,%d)", r, e, in.Seq)
		}
	}
	return nil
}

// source presents in to textBatches.
func (in *TextInput) source(w int) textSource {
	return textSource{rows: in.Rows, seq: in.Seq, eot: in.EOT, embed: func(dst []float32, start, cur, seq int) error {
		for r := range cur {
			row := in.Embeddings[(start+r)*in.Seq*w:]
			copy(dst[r*seq*w:(r+1)*seq*w], row[:seq*w])
		}
		return nil
	}}
}

// EmbeddingStages is TextStages for prompts given as embeddings: the requested stages
// of in, each flattened over its rows. Like TextStages, it runs each batch only up to
// its last end-of-text position when only StagePooled and StageFeatures are asked for.
func (m *Model) EmbeddingStages(in *TextInput, stages ...Stage) (map[Stage][]float32, error) {
	stages, err := checkStages(stages)
	if err != nil {
		return nil, err
	}
	if err := in.check(m.cfg.Text.Width, m.cfg.Text.ContextLength); err != nil {
		return nil, err
	}
	trim := !slices.ContainsFunc(stages, func(s Stage) bool { return s != StagePooled && s != StageFeatures })
	return m.textStages(in.source(m.cfg.Text.Width), trim, stages)
}

// EncodeEmbeddings returns the projected features [Rows,E] (not normalised) of
// prompts given as embeddings.
func (m *Model) EncodeEmbeddings(in *TextInput) ([]float32, error) {
	out, err := m.EmbeddingStages(in, StageFeatures)
	if err != nil {
		return nil, err
	}
	return out[StageFeatures], nil
}

// ImageGradients runs the image tower forward and backward over pixels [n,3,R,R],
// given dL/dfeatures dfeatures [n,E] (computed by the caller from the features, e.g.
// by CrossEntropy), and returns dL/d each name in wrt: WRTPixels [n,3,R,R], a stage
// (a tap name of the tower, or StagePooled: laid out as ImageStages returns it), or a
// weight key ("visual.proj", "visual.transformer.resblocks.0.attn.in_proj_weight",
// ...: the tensor as the graph holds it, e.g. ResNet convolutions with their
// BatchNorm folded in as [Cout, K*K*Cin]; summed over the images). Only the gradients
// asked for are computed, on the model's device.
func (m *Model) ImageGradients(pixels []float32, n int, dfeatures []float32, wrt ...string) (map[string][]float32, error) {
	v := m.cfg.Vision
	per := 3 * v.ImageResolution * v.ImageResolution
	if n <= 0 || len(pixels) != n*per {
		return nil, fmt.Errorf("clip: got %d pixel values for %d images, want %d images of [3,%d,%d]", len(pixels), n, n, v.ImageResolution, v.ImageResolution)
	}
	e := m.cfg.EmbedDim
	if len(dfeatures) != n*e {
		return nil, fmt.Errorf("clip: got %d feature gradient values for %d images, want [%d,%d]", len(dfeatures), n, n, e)
	}
	if err := m.checkGrad(wrt); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]float32{}
	for start := 0; start < n; start += m.batchSize {
		cur := min(m.batchSize, n-start)
		mach, err := m.cache.Get(fmt.Sprintf("vision-grad/b=%d/%s", cur, strings.Join(wrt, ",")), func() (*graph.Machine, error) {
			return m.buildGrad(wrt, nil, func(b *graph.Builder) (*layers.TowerOutputs, map[string]*G.Node, error) {
				x := b.Input("pixels", cur, per)
				o, err := m.Visual.Forward(b, x, cur)
				return o, map[string]*G.Node{WRTPixels: x}, err
			})
		})
		if err != nil {
			return nil, err
		}
		res, err := mach.Run(map[string][]float32{"pixels": pixels[start*per : (start+cur)*per],
			"dfeatures": dfeatures[start*e : (start+cur)*e]})
		if err != nil {
			return nil, fmt.Errorf("clip: images %d..%d: %w", start, start+cur-1, err)
		}
		gather(out, res, wrt)
		if m.progress != nil {
			m.progress(start+cur, n)
		}
	}
	return out, nil
}

// TextGradients is ImageGradients for the text tower: prompts in, dL/dfeatures
// dfeatures [Rows,E], and dL/d each name in wrt: WRTEmbeddings [Rows,Seq,W], a stage
// ([Rows,Seq,W] per position, or StagePooled), or a weight key. Each batch runs only
// up to its last end-of-text position: the causal mask hides every later position
// from the pooled token, so their gradients are zero.
func (m *Model) TextGradients(in *TextInput, dfeatures []float32, wrt ...string) (map[string][]float32, error) {
	tc := m.cfg.Text
	if err := in.check(tc.Width, tc.ContextLength); err != nil {
		return nil, err
	}
	e := m.cfg.EmbedDim
	if len(dfeatures) != in.Rows*e {
		return nil, fmt.Errorf("clip: got %d feature gradient values for %d prompts, want [%d,%d]", len(dfeatures), in.Rows, in.Rows, e)
	}
	if err := m.checkGrad(wrt); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]float32{}
	err := m.textBatches(in.source(tc.Width), true, func(start, cur, seq int, emb, pos []float32) error {
		mach, err := m.cache.Get(fmt.Sprintf("text-grad/b=%d/l=%d/%s", cur, seq, strings.Join(wrt, ",")), func() (*graph.Machine, error) {
			return m.buildTextGrad(cur, seq, wrt, nil)
		})
		if err != nil {
			return err
		}
		res, err := mach.Run(map[string][]float32{"tokens": emb, "eot": pos, "dfeatures": dfeatures[start*e : (start+cur)*e]})
		if err != nil {
			return err
		}
		padPositions(res, wrt, cur, seq, in.Seq, tc.Width)
		gather(out, res, wrt)
		return nil
	})
	return out, err
}

// padPositions extends a text batch's per-position gradients from the seq positions
// that ran to all full positions (zeros after: the causal mask hides them from the
// pooled tokens).
func padPositions(res map[string]graph.Output, wrt []string, cur, seq, full, width int) {
	for _, w := range wrt {
		d, ok := res[itemGrad+w]
		if !ok || w == string(StagePooled) || seq == full {
			continue
		}
		padded := make([]float32, cur*full*width)
		for r := range cur {
			copy(padded[r*full*width:], d.Data[r*seq*width:(r+1)*seq*width])
		}
		res[itemGrad+w] = graph.Output{Data: padded}
	}
}

// Head is a loss computed on the host from text features [Rows,E]: it returns the
// loss and writes its gradient with respect to the features into grad (zeroed).
type Head func(features, grad []float32) (float64, error)

// TextLossGradients runs the text tower over in, head on its features, and the
// backward pass from head's gradient, returning the loss and its gradients with
// respect to each name in wrt (as TextGradients). When in fits one batch (Rows <=
// BatchSize) it is one graph run over all rows, cut to the longest prompt: head runs
// between the forward and the backward pass (graph.Host), so the forward pass runs
// once. Larger inputs are encoded batch by batch first, then differentiated batch by
// batch: one forward pass more.
func (m *Model) TextLossGradients(in *TextInput, head Head, wrt ...string) (float64, map[string][]float32, error) {
	tc := m.cfg.Text
	if err := in.check(tc.Width, tc.ContextLength); err != nil {
		return 0, nil, err
	}
	if err := m.checkGrad(wrt); err != nil {
		return 0, nil, err
	}
	e := m.cfg.EmbedDim
	if in.Rows > m.batchSize {
		feats, err := m.EncodeEmbeddings(in)
		if err != nil {
			return 0, nil, err
		}
		grad := make([]float32, len(feats))
		loss, err := head(feats, grad)
		if err != nil {
			return 0, nil, err
		}
		g, err := m.TextGradients(in, grad, wrt...)
		return loss, g, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]float32{}
	var loss float64
	err := m.textBatches(in.source(tc.Width), true, func(_, cur, seq int, emb, pos []float32) error {
		mach, err := m.cache.Get(fmt.Sprintf("text-loss/b=%d/l=%d/%s", cur, seq, strings.Join(wrt, ",")), func() (*graph.Machine, error) {
			return m.buildTextGrad(cur, seq, wrt, func(o *layers.TowerOutputs) (*G.Node, error) {
				return graph.Host("head", func(grad []float32, in [][]float32) error {
					l, err := m.head(in[0], grad)
					m.headLoss = l
					return err
				}, []int{cur, e}, o.Features)
			})
		})
		if err != nil {
			return err
		}
		m.head = head
		defer func() { m.head = nil }()
		res, err := mach.Run(map[string][]float32{"tokens": emb, "eot": pos})
		if err != nil {
			return err
		}
		loss = m.headLoss
		padPositions(res, wrt, cur, seq, in.Seq, tc.Width)
		gather(out, res, wrt)
		return nil
	})
	return loss, out, err
}

// buildTextGrad builds the text tower's gradient graph for batches of cur prompts of
// seq positions; seed, when not nil, makes the backward pass's seed from the tower's
// outputs (otherwise it is an input "dfeatures").
func (m *Model) buildTextGrad(cur, seq int, wrt []string, seed func(o *layers.TowerOutputs) (*G.Node, error)) (*graph.Machine, error) {
	return m.buildGrad(wrt, seed, func(b *graph.Builder) (*layers.TowerOutputs, map[string]*G.Node, error) {
		x, eot := b.Input("tokens", cur*seq, m.cfg.Text.Width), b.Input("eot", cur)
		o, err := m.Text.Forward(b, x, eot, cur, seq)
		return o, map[string]*G.Node{WRTEmbeddings: x}, err
	})
}

// buildGrad builds a tower's gradient graph: forward adds the tower to a builder and
// returns its outputs and the inputs one may differentiate with respect to; then
// gradGraph. The towers pool the last block's pooled rows only
// (layers.Transformer.Pooled), which no tap of that block reaches: when wrt names a
// tap, the tower is built again pooling from its taps (graph.Builder.SetPoolFromTaps).
func (m *Model) buildGrad(wrt []string, seed func(o *layers.TowerOutputs) (*G.Node, error),
	forward func(b *graph.Builder) (*layers.TowerOutputs, map[string]*G.Node, error)) (*graph.Machine, error) {
	build := func(fromTaps bool) (*graph.Builder, *layers.TowerOutputs, map[string]*G.Node, error) {
		b := graph.NewBuilderOn(m.dev)
		b.SetPoolFromTaps(fromTaps)
		o, inputs, err := forward(b)
		return b, o, inputs, err
	}
	b, o, inputs, err := build(false)
	if err == nil && slices.ContainsFunc(wrt, func(w string) bool { return o.Tap(w) != nil }) {
		b, o, inputs, err = build(true)
	}
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	var s *G.Node
	if seed != nil {
		if s, err = seed(o); err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
	}
	return gradGraph(b, o, inputs, wrt, s)
}

// checkGrad refuses gradients of a model whose weights are 16-bit (its backward ops
// read float32 weights), and an empty or repeated list.
func (m *Model) checkGrad(wrt []string) error {
	if m.prec == graph.BF16 || m.prec == graph.FP16 {
		return fmt.Errorf("clip: gradients need the model's float32 weights, and this model holds them in %v: load it in fp32 (--precision fp32)", m.prec)
	}
	if len(wrt) == 0 {
		return errors.New("clip: no gradient requested")
	}
	for i, w := range wrt {
		if slices.Contains(wrt[:i], w) {
			return fmt.Errorf("clip: gradient with respect to %q requested twice", w)
		}
	}
	return nil
}

// The outputs of a gradient graph: itemGrad+name for inputs and stages (one row per
// image or prompt), weightGrad+name for weights (summed over the batch).
const itemGrad, weightGrad = "d/", "dw/"

// gradGraph completes a tower graph b with outputs o: seed (or, when nil, an input
// "dfeatures") seeds the backward pass from o.Features, and dL/d each wrt name
// becomes an output (itemGrad or weightGrad + name; stages stored channels last are
// transposed to [C,H,W], as outputs does).
func gradGraph(b *graph.Builder, o *layers.TowerOutputs, inputs map[string]*G.Node, wrt []string, seed *G.Node) (*graph.Machine, error) {
	nodes := make([]*G.Node, len(wrt))
	taps := make([]*layers.Tap, len(wrt))
	prefix := make([]string, len(wrt))
	for i, w := range wrt {
		prefix[i] = itemGrad
		switch {
		case inputs[w] != nil:
			nodes[i] = inputs[w]
		case w == string(StagePooled):
			nodes[i] = o.Pooled
		case o.Tap(w) != nil:
			taps[i] = o.Tap(w)
			nodes[i] = taps[i].Node
		default:
			nodes[i], prefix[i] = b.Lookup(w), weightGrad
		}
		if nodes[i] == nil {
			names := []string{string(StagePooled)}
			for k := range inputs {
				names = append(names, k)
			}
			for _, t := range o.Taps {
				names = append(names, t.Name)
			}
			return nil, fmt.Errorf("clip: no input, stage or weight %q to differentiate with respect to (stages and inputs: %s)", w, strings.Join(names, ", "))
		}
	}
	if seed == nil {
		seed = b.Input("dfeatures", o.Features.Shape()...)
	}
	grads, err := b.Backward([]*G.Node{o.Features}, []*G.Node{seed}, nodes)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	for i, g := range grads {
		if taps[i] != nil && taps[i].ChannelsLast {
			if g, err = graph.ChannelsFirst(itemGrad+wrt[i]+".nchw", g, taps[i].Shape); err != nil {
				return nil, fmt.Errorf("clip: %w", err)
			}
		}
		if err := b.Output(prefix[i]+wrt[i], g); err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
	}
	return b.Compile()
}

// gather appends a batch's per-item gradients to out and adds its weight gradients.
func gather(out map[string][]float32, res map[string]graph.Output, wrt []string) {
	for _, w := range wrt {
		if d, ok := res[itemGrad+w]; ok {
			out[w] = append(out[w], d.Data...)
			continue
		}
		d := res[weightGrad+w].Data
		if out[w] == nil {
			out[w] = make([]float32, len(d))
		}
		for i, v := range d {
			out[w][i] += v
		}
	}
}

// LossGradients are what Gradients returns: CLIP's loss on the features, and its
// gradients with respect to the two towers' inputs.
type LossGradients struct {
	*Loss
	// Pixels is dL/dpixels [N,3,R,R].
	Pixels []float32
	// TokenEmbeddings is dL/d the token embeddings [M,L,W], before the positional
	// embedding is added (zero after each prompt's end-of-text token).
	TokenEmbeddings []float32
}

// Gradients computes L = sum_i cross_entropy(logits_per_image[i,:], targets[i]) for
// images pixels [n,3,R,R] against all prompts tokens [rows,L] (logits_per_image =
// exp(logit_scale) * norm(img) @ norm(txt)^T), and its gradients with respect to the
// pixels and the token embeddings: the features by the towers, the head and loss on
// the host in float64 (CrossEntropy), then each tower's backward pass seeded with
// its features' gradient.
func (m *Model) Gradients(pixels []float32, n int, tokens []int32, rows int, targets []int) (*LossGradients, error) {
	in, err := m.EmbedTokens(tokens, rows)
	if err != nil {
		return nil, err
	}
	img, err := m.EncodeImages(pixels, n)
	if err != nil {
		return nil, err
	}
	txt, err := m.EncodeEmbeddings(in)
	if err != nil {
		return nil, err
	}
	loss, err := CrossEntropy(img, txt, m.cfg.EmbedDim, math.Exp(float64(m.logitScale)), targets)
	if err != nil {
		return nil, err
	}
	dpx, err := m.ImageGradients(pixels, n, loss.Images, WRTPixels)
	if err != nil {
		return nil, err
	}
	demb, err := m.TextGradients(in, loss.Texts, WRTEmbeddings)
	if err != nil {
		return nil, err
	}
	return &LossGradients{Loss: loss, Pixels: dpx[WRTPixels], TokenEmbeddings: demb[WRTEmbeddings]}, nil
}
