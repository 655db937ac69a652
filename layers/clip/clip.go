// Package clip is a whole CLIP model on gorgonia graphs: load a checkpoint, encode
// images and texts in batches, and score them zero-shot.
//
// A Model builds one graph per (tower, batch size[, text length]) the first time it
// sees that shape and reuses it for every later batch; the weights are shared by all
// of them and never copied. Text runs stop at the last end-of-text position of each
// batch: the causal mask makes later positions irrelevant to the pooled token, so the
// result equals the full 77-position run.
//
// The towers also run backwards: ImageGradients and TextGradients take the gradient
// of a loss with respect to the features and return it with respect to the pixels,
// the token embeddings, a stage or a weight (graph.Builder.Backward); Gradients does
// so for CLIP's cross-entropy (CrossEntropy, on the host in float64), and
// TextLossGradients runs a host loss between the passes of one run (prompt learning,
// see probes/coop). StageAttention gives every block's attention weights, and
// Explain, AttentionRollout and PixelImage the saliency maps of gorgoclip explain.
package clip

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/images"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DefaultBatchSize is the number of images or prompts per graph run unless
// WithBatchSize says otherwise.
const DefaultBatchSize = 32

// Stage names an intermediate result a tower can return (see ImageStages,
// TextStages): one of the tower's taps (layers.Tap), or StagePooled or StageFeatures,
// which every tower has. Which taps exist depends on the tower kind.
type Stage string

const (
	// StageEmbedded is the input to the first block [N,T,D]: after ln_pre (vit), or
	// after the token and positional embeddings (text).
	StageEmbedded Stage = "embedded"
	// StageEncoder is the output of the last block [N,T,D], before ln_post/ln_final
	// (vit and text).
	StageEncoder Stage = "encoder"
	// StageFinal is ln_final at every position [N,L,D] (text only).
	StageFinal Stage = "ln_final"
	// StageStem is a ResNet's stem output [N,C,H,W] (resnet).
	StageStem Stage = "stem"
	// StagePooled is the pooled token after its LayerNorm [N,D]: pre-projection
	// features, the usual input of linear probes.
	StagePooled Stage = "pooled"
	// StageFeatures is the projected embedding [N,E] (not normalised).
	StageFeatures Stage = "features"
	// StageAttention is the softmax attention weights of every block,
	// [N, layers, heads, T, T] (vit and text; for text T is the positions the tower
	// ran: asking for it runs every position given). They are recomputed from each
	// block's projections only when asked (graph.AttentionProbs).
	StageAttention Stage = "attention"
)

// BlockStage names the output of residual block i [N,T,D] (vit and text).
func BlockStage(i int) Stage { return Stage(fmt.Sprintf("block%d", i)) }

// ResNetStage names the output of ResNet stage i = 1..4 [N,C,H,W] (resnet: layer1 ..
// layer4).
func ResNetStage(i int) Stage { return Stage(fmt.Sprintf("layer%d", i)) }

// Model is a CLIP model ready to encode. Its methods may be called from several
// goroutines; runs are serialised.
type Model struct {
	// CLIP holds the towers' modules; Visual and Text are its towers.
	*layers.CLIP

	cfg        layers.Config
	logitScale float32
	batchSize  int
	progress   func(done, total int)
	dev        graph.Device // nil: the CPU
	devErr     error
	prec       graph.Precision

	mu    sync.Mutex
	cache graph.Cache
	// head is the loss of the TextLossGradients run in progress (under mu), and
	// headLoss its value.
	head     Head
	headLoss float64
}

// Option configures a Model.
type Option func(*Model)

// WithBatchSize sets how many images or prompts go through a graph at once
// (DefaultBatchSize when n <= 0).
func WithBatchSize(n int) Option {
	return func(m *Model) {
		if n > 0 {
			m.batchSize = n
		}
	}
}

// WithProgress calls f after each batch with the items done so far and the total.
func WithProgress(f func(done, total int)) Option { return func(m *Model) { m.progress = f } }

// WithDevice runs the towers on the named device: "cpu" (the default) or "cuda" /
// "cuda:N" (weights uploaded once, activations kept on the GPU; needs a build with
// make cuda, else New fails with graph.ErrNoCUDA).
func WithDevice(name string) Option {
	return func(m *Model) { m.dev, m.devErr = graph.OpenDevice(name) }
}

// WithPrecision runs the towers in precision p: graph.FP32 (the default) or graph.BF16
// anywhere, graph.FP16 or graph.TF32 on a CUDA device (New refuses them on the CPU).
// In BF16 and FP16, New converts the towers' GEMM weights (and the token embedding,
// read on the host, to bfloat16 in both) to 16 bits once, in place: the model's modules then hold them as graph.BFloat16-typed
// tensors and no longer reference their float32 data (half the memory; a checkpoint
// passed to New still holds it until the caller drops it). The GEMMs run on 16-bit
// operands with float32 accumulation (on the CPU oneDNN in a build with it, see
// graph.BF16Backend; on a GPU cuBLAS's tensor cores); the package graph
// documentation says what else is kept in bfloat16.
func WithPrecision(p graph.Precision) Option { return func(m *Model) { m.prec = p } }

// Precision returns the precision the towers run in.
func (m *Model) Precision() graph.Precision { return m.prec }

// Device describes where the towers run ("cpu", or the GPU and its libraries).
func (m *Model) Device() string { return graph.DeviceName(m.dev) }

// Load reads the checkpoint in dir (any layout weights.Load accepts) and builds a
// Model. In BF16 and FP16 each weight the model keeps in 16 bits is converted as it
// is read (weights.ConvertEach), so the checkpoint is never whole in float32.
func Load(dir string, opts ...Option) (*Model, error) {
	m, err := configure(opts)
	if err != nil {
		return nil, err
	}
	ck, err := weights.Load(dir, weights.ConvertEach(m.converter))
	if err != nil {
		return nil, err
	}
	return m.bind(ck, true)
}

// New builds a Model over ck's tensors, which it shares rather than copies: ck's data
// must not change afterwards. In BF16 and FP16 the weights the model keeps in 16 bits
// are converted in place (ck's own float32 data is left as it was).
func New(ck *weights.Checkpoint, opts ...Option) (*Model, error) {
	if ck == nil {
		return nil, errors.New("clip: nil checkpoint")
	}
	m, err := configure(opts)
	if err != nil {
		return nil, err
	}
	return m.bind(ck, false)
}

// configure returns a Model without towers, set up by opts, after checking that its
// precision can run on its device.
func configure(opts []Option) (*Model, error) {
	m := &Model{batchSize: DefaultBatchSize}
	m.cache.Max = 16
	for _, o := range opts {
		o(m)
	}
	if m.devErr != nil {
		return nil, fmt.Errorf("clip: %w", m.devErr)
	}
	switch {
	case m.prec != graph.FP32 && m.prec != graph.BF16 && m.prec != graph.FP16 && m.prec != graph.TF32:
		return nil, fmt.Errorf("clip: unsupported precision %d", m.prec)
	case m.dev == nil && !m.prec.CPU():
		return nil, fmt.Errorf("clip: %v: %v runs on a CUDA device only (--device cuda); on the CPU use bf16", m.prec, m.prec)
	}
	return m, nil
}

// half reports whether the model keeps its GEMM weights in 16 bits.
func (m *Model) half() bool { return m.prec == graph.BF16 || m.prec == graph.FP16 }

// bind builds m's towers over ck's tensors and converts the weights it keeps in 16
// bits that are not yet. In BF16 on the CPU it then repacks the GEMM weights for
// oneDNN (graph.Builder.PackWeights): all of them when owned (ck is the model's own, not a caller's),
// else only those it converted itself, so that a caller's tensors never change.
func (m *Model) bind(ck *weights.Checkpoint, owned bool) (*Model, error) {
	if err := ck.Config.Validate(); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	towers, err := layers.NewCLIP(ck.Config, layers.Bind(ck.Tensors))
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	m.CLIP, m.cfg, m.logitScale = towers, ck.Config, towers.LogitScale
	if !m.half() {
		return m, nil
	}
	bs, ws, err := halfWeights(towers, ck.Config, m.prec)
	if err != nil {
		return nil, fmt.Errorf("clip: %v: %w", m.prec, err)
	}
	fresh := map[*tensor.Dense]bool{}
	for w, p := range ws {
		convert := graph.ToBF16
		if p == graph.FP16 {
			convert = graph.ToFP16
		}
		n, err := convert(w)
		if err != nil {
			return nil, fmt.Errorf("clip: %v: %w", m.prec, err)
		}
		fresh[w] = n > 0
	}
	debug.FreeOSMemory() // the float32 weights the conversion released
	if m.prec == graph.BF16 && m.dev == nil {
		// oneDNN's blocked layout (graph.Builder.PackWeights, where oneDNN runs the
		// GEMMs): every GEMM then reads its weight as it is instead of repacking it.
		keep := func(w *tensor.Dense) bool { return owned || fresh[w] }
		for _, b := range bs {
			if _, err := b.PackWeights(keep); err != nil {
				return nil, fmt.Errorf("clip: %v: %w", m.prec, err)
			}
		}
	}
	return m, nil
}

// towerGraphs builds a graph of one item for each tower in precision prec: what the
// rules over a model's weights (which are stored in 16 bits, which repacked) read.
func towerGraphs(towers *layers.CLIP, c layers.Config, prec graph.Precision) ([]*graph.Builder, error) {
	v := graph.NewBuilder()
	v.SetPrecision(prec)
	if _, err := towers.Visual.Forward(v, v.Input("pixels", 1, 3*c.Vision.ImageResolution*c.Vision.ImageResolution), 1); err != nil {
		return nil, err
	}
	t := graph.NewBuilder()
	t.SetPrecision(prec)
	if _, err := towers.Text.Forward(t, t.Input("tokens", 1, c.Text.Width), t.Input("eot", 1), 1, 1); err != nil {
		return nil, err
	}
	return []*graph.Builder{v, t}, nil
}

// halfWeights returns the weights that towers, of config c, keep in 16 bits at
// precision prec (BF16 or FP16), and each one's format: the GEMM weights of their
// graphs bs (towerGraphs, also returned; graph.Builder.GEMMWeights: the rule), in
// prec, and the tables a tower reads on the host (the token embedding), in bfloat16
// even in an FP16 model (host code widens it).
func halfWeights(towers *layers.CLIP, c layers.Config, prec graph.Precision) (bs []*graph.Builder, half map[*tensor.Dense]graph.Precision, err error) {
	if bs, err = towerGraphs(towers, c, prec); err != nil {
		return nil, nil, err
	}
	out := map[*tensor.Dense]graph.Precision{}
	for _, b := range bs {
		ws, err := b.GEMMWeights()
		if err != nil {
			return nil, nil, err
		}
		for _, w := range ws {
			out[w] = prec
		}
	}
	if h, ok := towers.Text.(hostTables); ok {
		for _, w := range h.Tables() {
			out[w] = graph.BF16
		}
	}
	return bs, out, nil
}

// halfKeys returns the checkpoint keys of a model of config c whose tensors it keeps
// in 16 bits at precision prec, with each one's format: those of halfWeights, found by
// building the towers over stand-in tensors (zeros that take no memory) and matching
// the weights' data to the tensors'. A weight derived from several tensors (a
// ResNet's BatchNorm folded into its convolution) has no key: bind converts it once
// derived.
func halfKeys(c layers.Config, prec graph.Precision) (map[string]graph.Precision, error) {
	declared, err := layers.Declared(c)
	if err != nil {
		return nil, err
	}
	params := declared.Params()
	total := 0
	for _, p := range params {
		total += p.Size()
	}
	zeros, free := graph.ZeroFloats(total)
	defer free() // nothing reads the stand-ins once the weights are matched
	stand := layers.Tensors{}
	type span struct {
		at *float32
		n  int
	}
	keyOf := map[span]string{}
	off := 0
	for _, p := range params {
		n := p.Size()
		data := zeros[off : off+n : off+n]
		stand[p.Key] = &layers.Tensor{Shape: p.Shape, Data: data}
		if n > 0 {
			keyOf[span{&data[0], n}] = p.Key
		}
		off += n
	}
	towers, err := layers.NewCLIP(c, layers.Bind(stand))
	if err != nil {
		return nil, err
	}
	_, ws, err := halfWeights(towers, c, prec)
	if err != nil {
		return nil, err
	}
	keys := map[string]graph.Precision{}
	for w, p := range ws {
		if f, ok := w.Data().([]float32); ok && len(f) > 0 {
			if k, ok := keyOf[span{&f[0], len(f)}]; ok {
				keys[k] = p
			}
		}
	}
	return keys, nil
}

// converter returns what a model of config c does to each checkpoint tensor as it is
// read or drawn (weights.ConvertEach): in BF16 and FP16 it replaces the float32
// values of the weights the model keeps in 16 bits (halfKeys) by their 16-bit form,
// the values bind's conversion would give; nil otherwise.
func (m *Model) converter(c layers.Config) (func(key string, t *layers.Tensor) error, error) {
	if !m.half() {
		return nil, nil
	}
	keys, err := halfKeys(c, m.prec)
	if err != nil {
		return nil, fmt.Errorf("clip: %v: %w", m.prec, err)
	}
	return func(key string, t *layers.Tensor) error {
		p, ok := keys[key]
		if !ok || t.Half != nil {
			return nil
		}
		h, free, err := graph.Halve(p, t.Data)
		if err != nil {
			return err
		}
		t.SetHalf(h, free)
		if len(h) >= collectAt {
			// Its float32 values (and the bytes they were read from) are garbage now:
			// collected before the next tensor is read, they make room for it, where
			// the heap would otherwise grow to twice the largest tensor.
			runtime.GC()
		}
		return nil
	}, nil
}

// collectAt is the size (values) from which a converted tensor's float32 data is
// collected at once: a few dozen collections of a small heap for a ViT-B/32.
const collectAt = 1 << 20

// hostTables is a tower with weights it reads on the host rather than in its graph
// (layers.TextTransformer's token embedding).
type hostTables interface {
	Tables() []*tensor.Dense
}

// Transform is the model's image preprocessing: OpenAI's transform at the model's
// resolution, with the normalisation of its config (open_clip's preprocess_cfg), so
// that pixels fed to EncodeImages match what the model was trained on.
func (m *Model) Transform() images.Transform {
	p := m.cfg.ImagePreprocess()
	t := images.Transform{Size: m.cfg.Vision.ImageResolution}
	for c := range 3 {
		t.Norm.Mean[c], t.Norm.Std[c] = float32(p.Mean[c]), float32(p.Std[c])
	}
	return t
}

// Config returns the model's configuration.
func (m *Model) Config() layers.Config { return m.cfg }

// LogitScale returns the learned temperature as stored (a log): logits multiply
// cosine similarities by exp(LogitScale()).
func (m *Model) LogitScale() float32 { return m.logitScale }

// BatchSize returns the number of items per graph run.
func (m *Model) BatchSize() int { return m.batchSize }

// Close releases the compiled graphs. The Model stays usable; graphs are rebuilt.
func (m *Model) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cache.Close()
}

// EncodeImages returns the projected features [n,E] (not normalised) of n images
// given as CLIP-normalised pixels [n,3,R,R].
func (m *Model) EncodeImages(pixels []float32, n int) ([]float32, error) {
	out, err := m.ImageStages(pixels, n, StageFeatures)
	if err != nil {
		return nil, err
	}
	return out[StageFeatures], nil
}

// EncodeTexts returns the projected features [M,E] (not normalised) of m prompts given
// as token ids [M,L] (L <= the context length, zero padded, as clip.tokenize writes them).
// Each row is pooled at its end-of-text token: the first position holding the row's
// largest id.
func (m *Model) EncodeTexts(tokens []int32, rows int) ([]float32, error) {
	out, err := m.TextStages(tokens, rows, StageFeatures)
	if err != nil {
		return nil, err
	}
	return out[StageFeatures], nil
}

// checkStages sorts and dedups the requested stages.
func checkStages(stages []Stage) ([]Stage, error) {
	if len(stages) == 0 {
		return nil, errors.New("clip: no stage requested")
	}
	out := slices.Clone(stages)
	slices.Sort(out)
	return slices.Compact(out), nil
}

func stagesKey(stages []Stage) string {
	s := make([]string, len(stages))
	for i, st := range stages {
		s[i] = string(st)
	}
	return strings.Join(s, ",")
}

// ImageStages runs the image tower over pixels [n,3,R,R] and returns the requested
// stages, each flattened over n images in order.
func (m *Model) ImageStages(pixels []float32, n int, stages ...Stage) (map[Stage][]float32, error) {
	v := m.cfg.Vision
	stages, err := checkStages(stages)
	if err != nil {
		return nil, err
	}
	per := 3 * v.ImageResolution * v.ImageResolution
	if n <= 0 || len(pixels) != n*per {
		return nil, fmt.Errorf("clip: got %d pixel values for %d images, want %d images of [3,%d,%d]", len(pixels), n, n, v.ImageResolution, v.ImageResolution)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[Stage][]float32{}
	for start := 0; start < n; start += m.batchSize {
		cur := min(m.batchSize, n-start)
		mach, err := m.cache.Get(fmt.Sprintf("vision/b=%d/%s", cur, stagesKey(stages)), func() (*graph.Machine, error) {
			return m.buildVision(cur, stages)
		})
		if err != nil {
			return nil, err
		}
		res, err := mach.Run(map[string][]float32{"pixels": pixels[start*per : (start+cur)*per]})
		if err != nil {
			return nil, fmt.Errorf("clip: images %d..%d: %w", start, start+cur-1, err)
		}
		collect(out, res, stages, cur)
		if m.progress != nil {
			m.progress(start+cur, n)
		}
	}
	return out, nil
}

func (m *Model) buildVision(batch int, stages []Stage) (*graph.Machine, error) {
	v := m.cfg.Vision
	b := graph.NewBuilderOn(m.dev)
	b.SetPrecision(m.prec)
	x := b.Input("pixels", batch, 3*v.ImageResolution*v.ImageResolution)
	o, err := m.Visual.Forward(b, x, batch)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	if err := outputs(b, o, stages); err != nil {
		return nil, err
	}
	return b.Compile()
}

// outputs marks the requested stages of o as the graph's outputs: a tap, or the
// pooled or projected features. A tap stored channels last is transposed to [C,H,W]
// on its way out.
func outputs(b *graph.Builder, o *layers.TowerOutputs, stages []Stage) error {
	for _, s := range stages {
		var n *G.Node
		switch s {
		case StagePooled:
			n = o.Pooled
		case StageFeatures:
			n = o.Features
		case StageAttention:
			if err := attentionOutputs(b, o); err != nil {
				return err
			}
			continue
		default:
			tap := o.Tap(string(s))
			if tap == nil {
				names := []string{string(StagePooled), string(StageFeatures)}
				for _, t := range o.Taps {
					names = append(names, t.Name)
				}
				return fmt.Errorf("clip: unknown stage %q (this tower has %s)", s, strings.Join(names, ", "))
			}
			n = tap.Node
			if tap.ChannelsLast {
				var err error
				if n, err = graph.ChannelsFirst(string(s)+".nchw", n, tap.Shape); err != nil {
					return fmt.Errorf("clip: %w", err)
				}
			}
		}
		if err := b.Output(string(s), n); err != nil {
			return fmt.Errorf("clip: %w", err)
		}
	}
	return nil
}

// attentionOutputs marks the softmax weights of every block of o as outputs
// "attention0", "attention1", ...
func attentionOutputs(b *graph.Builder, o *layers.TowerOutputs) error {
	if len(o.Attention) == 0 {
		return fmt.Errorf("clip: stage %q: this tower has no attention blocks", StageAttention)
	}
	for i, a := range o.Attention {
		name := fmt.Sprintf("%s%d", StageAttention, i)
		p, err := graph.AttentionProbs(name, a)
		if err != nil {
			return fmt.Errorf("clip: %w", err)
		}
		if err := b.Output(name, p); err != nil {
			return fmt.Errorf("clip: %w", err)
		}
	}
	return nil
}

// collect appends one batch of cur items' results to out, stage by stage. The
// attention of the blocks, one output each, is interleaved item by item into
// [items, layers, heads, T, T].
func collect(out map[Stage][]float32, res map[string]graph.Output, stages []Stage, cur int) {
	for _, s := range stages {
		if s != StageAttention {
			out[s] = append(out[s], res[string(s)].Data...)
			continue
		}
		var layers [][]float32
		for i := 0; ; i++ {
			o, ok := res[fmt.Sprintf("%s%d", StageAttention, i)]
			if !ok {
				break
			}
			layers = append(layers, o.Data)
		}
		per := len(layers[0]) / cur
		for r := range cur {
			for _, l := range layers {
				out[s] = append(out[s], l[r*per:(r+1)*per]...)
			}
		}
	}
}

// LayerMajor reorders StageAttention's item-major weights [n, layers, heads, T, T]
// into [layers, n, heads, T, T], the layout of the per-block attention maps stacked.
func LayerMajor(att []float32, n, layers int) []float32 {
	per := len(att) / max(n*layers, 1)
	out := make([]float32, 0, len(att))
	for l := range layers {
		for i := range n {
			out = append(out, att[(i*layers+l)*per:(i*layers+l+1)*per]...)
		}
	}
	return out
}

// EndOfText returns each row's pooling position in tokens [rows, L]: the first
// position holding the row's largest id (torch.argmax), as OpenAI's encode_text does.
func EndOfText(tokens []int32, rows int) ([]int, error) {
	if rows <= 0 || len(tokens)%rows != 0 || len(tokens) == 0 {
		return nil, fmt.Errorf("clip: %d token ids do not form %d rows", len(tokens), rows)
	}
	l := len(tokens) / rows
	eot := make([]int, rows)
	for r := range eot {
		row := tokens[r*l : (r+1)*l]
		for j, id := range row {
			if id > row[eot[r]] {
				eot[r] = j
			}
		}
	}
	return eot, nil
}

// TextStages runs the text tower over tokens [rows, L] and returns the requested stages,
// each flattened over rows in order. When only StagePooled and StageFeatures are asked
// for, each batch runs only up to its last end-of-text position; otherwise all L
// positions run and per-position stages are [rows, L, D].
func (m *Model) TextStages(tokens []int32, rows int, stages ...Stage) (map[Stage][]float32, error) {
	tc := m.cfg.Text
	stages, err := checkStages(stages)
	if err != nil {
		return nil, err
	}
	eot, err := EndOfText(tokens, rows)
	if err != nil {
		return nil, err
	}
	l := len(tokens) / rows
	if l > tc.ContextLength {
		return nil, fmt.Errorf("clip: prompts have %d positions, the model's context is %d", l, tc.ContextLength)
	}
	trim := true
	for _, s := range stages {
		trim = trim && (s == StagePooled || s == StageFeatures)
	}
	src := textSource{rows: rows, seq: l, eot: eot, embed: func(dst []float32, start, cur, seq int) error {
		ids := make([]int32, cur*seq)
		for r := range cur {
			copy(ids[r*seq:(r+1)*seq], tokens[(start+r)*l:(start+r)*l+seq])
		}
		return m.Text.Embed(dst, ids, cur, seq)
	}}
	return m.textStages(src, trim, stages)
}

// textStages runs the text tower over src (see textBatches) and collects stages.
func (m *Model) textStages(src textSource, trim bool, stages []Stage) (map[Stage][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[Stage][]float32{}
	err := m.textBatches(src, trim, func(start, cur, seq int, emb, pos []float32) error {
		mach, err := m.cache.Get(fmt.Sprintf("text/b=%d/l=%d/%s", cur, seq, stagesKey(stages)), func() (*graph.Machine, error) {
			return m.buildText(cur, seq, stages)
		})
		if err != nil {
			return err
		}
		res, err := mach.Run(map[string][]float32{"tokens": emb, "eot": pos})
		if err != nil {
			return err
		}
		collect(out, res, stages, cur)
		return nil
	})
	return out, err
}

// textSource is a set of prompts the text tower runs over: rows of seq positions,
// each with its end-of-text position, and a way to embed a row's first positions.
type textSource struct {
	rows, seq int
	eot       []int
	// embed writes the token embeddings of rows [start, start+cur), their first seq
	// positions each, into dst [cur*seq, W].
	embed func(dst []float32, start, cur, seq int) error
}

// textBatches runs run over src in batches of at most BatchSize rows: rows
// [start, start+cur) embedded into emb [cur*seq, W], their end-of-text positions pos
// [cur]. With trim, each batch runs only up to its last end-of-text position (the
// causal mask makes later positions irrelevant to the pooled token); otherwise all
// src.seq positions. Errors name the batch's prompts; progress is reported per batch.
// The caller holds m.mu.
func (m *Model) textBatches(src textSource, trim bool, run func(start, cur, seq int, emb, pos []float32) error) error {
	w := m.cfg.Text.Width
	for start := 0; start < src.rows; start += m.batchSize {
		cur := min(m.batchSize, src.rows-start)
		seq := src.seq
		if trim {
			seq = 1
			for _, e := range src.eot[start : start+cur] {
				seq = max(seq, e+1)
			}
		}
		emb, pos := make([]float32, cur*seq*w), make([]float32, cur)
		if err := src.embed(emb, start, cur, seq); err != nil {
			return fmt.Errorf("clip: prompts %d..%d: %w", start, start+cur-1, err)
		}
		for r := range cur {
			pos[r] = float32(src.eot[start+r])
		}
		if err := run(start, cur, seq, emb, pos); err != nil {
			return fmt.Errorf("clip: prompts %d..%d: %w", start, start+cur-1, err)
		}
		if m.progress != nil {
			m.progress(start+cur, src.rows)
		}
	}
	return nil
}

func (m *Model) buildText(batch, seq int, stages []Stage) (*graph.Machine, error) {
	b := graph.NewBuilderOn(m.dev)
	b.SetPrecision(m.prec)
	x := b.Input("tokens", batch*seq, m.cfg.Text.Width)
	eot := b.Input("eot", batch)
	o, err := m.Text.Forward(b, x, eot, batch, seq)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	if err := outputs(b, o, stages); err != nil {
		return nil, err
	}
	return b.Compile()
}

// L2Normalize scales each row of x [N,dim] to unit length in place (zero rows stay zero).
func L2Normalize(x []float32, dim int) {
	for r := 0; r+dim <= len(x); r += dim {
		var ss float64
		for _, v := range x[r : r+dim] {
			ss += float64(v) * float64(v)
		}
		if ss == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(ss))
		for j := r; j < r+dim; j++ {
			x[j] *= inv
		}
	}
}
