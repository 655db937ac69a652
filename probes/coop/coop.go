// Package coop is CoOp, context optimisation (Zhou et al., "Learning to Prompt for
// Vision-Language Models", IJCV 2022): the zero-shot prompt's words before the class
// name are replaced by learned vectors in the token-embedding space, trained by
// gradient descent through the frozen text tower on k-shot image features. The
// classifier's class rows are then the text features of the learned prompts, scored
// against images as zero-shot CLIP scores them.
//
// The prompt of class c is [SOS] ctx_1 .. ctx_M name_c "." [EOS], with M context
// vectors (16 by default, random N(0, 0.02^2); or the embeddings of words such as
// "a photo of a", then M is their number of tokens), shared by all classes (unified)
// or one set per class (class-specific). Training follows the paper's schedule:
// SGD with momentum 0.9 and weight decay 5e-4, learning rate 0.002 with a cosine
// decay per epoch after one warm-up epoch at a constant 1e-5, batches of 32 images
// (the last partial batch dropped once there are 32), and 50, 100 or 200 epochs for
// 1, 2-4 or 8-16 shots. Each step runs the text tower over all classes' prompts (cut
// to the longest prompt), the loss on the host in float64 (clip.CrossEntropy,
// averaged over the batch) and the backward pass to the token embeddings, whose
// context rows are the gradient: one graph run when the classes fit one batch of the
// model (clip.Model.TextLossGradients).
//
// Image features stay fixed: CoOp's random crops and flips would need the image tower
// in the loop, and few-shot comparisons here run on cached features.
package coop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/probes"
)

// Tokenizer is what Fit needs of a BPE tokenizer; *tokenizer.Tokenizer is one.
type Tokenizer interface {
	// Tokenize returns [len(texts), contextLength] ids, zero padded.
	Tokenize(texts []string, contextLength int, truncate bool) ([]int32, error)
	// Encode returns a text's ids between the start and end tokens.
	Encode(text string) []int
}

// The paper's training settings (the defaults of Options).
const (
	DefaultNCtx        = 16
	DefaultBatchSize   = 32
	DefaultLR          = 0.002
	DefaultMomentum    = 0.9
	DefaultWeightDecay = 5e-4
	DefaultWarmupLR    = 1e-5
	// initStd is the standard deviation of randomly initialised context vectors.
	initStd = 0.02
)

// Options configure Fit. The zero value is the paper's default: 16 random unified
// context vectors, epochs by shots.
type Options struct {
	// NCtx is M, the number of context vectors (DefaultNCtx when 0). With Init set it
	// must be 0 or the number of Init's tokens.
	NCtx int
	// Init initialises the context with the token embeddings of these words (the
	// paper uses "a photo of a", 4 vectors); empty means random.
	Init string
	// ClassSpecific learns one context per class (the paper's CSC) instead of one
	// shared by all classes.
	ClassSpecific bool
	// Epochs is the number of passes over the training set; 0 chooses it from the
	// shots as the paper does (EpochsForShots).
	Epochs int
	// Shots is k, for choosing the epochs; 0 takes the largest number of examples of
	// a class in the training set.
	Shots int
	// BatchSize, LR, Momentum, WeightDecay and WarmupLR default to the paper's values
	// when 0. WarmupEpochs is 1 unless set; a negative value means no warm-up.
	BatchSize                           int
	LR, Momentum, WeightDecay, WarmupLR float64
	WarmupEpochs                        int
	// Seed drives the random context and the batches.
	Seed uint64
	// Progress, when set, is called after every epoch.
	Progress func(Progress)
}

// Progress is reported after each epoch.
type Progress struct {
	// Epoch counts finished epochs, of Epochs.
	Epoch, Epochs int
	// Loss is the epoch's mean training cross-entropy; LR the rate it used.
	Loss, LR float64
	Elapsed  time.Duration
}

// EpochsForShots is the paper's training length for k shots: 50 epochs for 1 shot,
// 100 for 2 and 4, 200 for 8 and 16 (ImageNet used 50 throughout: set
// Options.Epochs for it).
func EpochsForShots(k int) int {
	switch {
	case k <= 1:
		return 50
	case k <= 4:
		return 100
	}
	return 200
}

// Classifier is a trained CoOp prompt learner and the zero-shot head it gives.
type Classifier struct {
	// ClassNames are the classes, in label order.
	ClassNames []string
	// Context holds the learned vectors: [NCtx, W], or [C, NCtx, W] when
	// ClassSpecific.
	Context       []float32
	NCtx, Width   int
	ClassSpecific bool
	// Weights are the class rows [C, E]: the text features of the learned prompts,
	// L2-normalised.
	Weights []float32
	// Dim is E; Scale multiplies cosine similarities into logits (exp(logit_scale)).
	Dim   int
	Scale float32
	// Losses holds each epoch's mean training loss.
	Losses []float64
}

// Logits returns Scale * cos(image features, class rows) for features [n, E] (not
// normalised), as [n, C]: the scores probes.Evaluate reads.
func (c *Classifier) Logits(features []float32, n int) ([]float32, error) {
	if n <= 0 || len(features) != n*c.Dim {
		return nil, fmt.Errorf("coop: %d feature values for %d images of dimension %d", len(features), n, c.Dim)
	}
	return clip.Logits(features, c.Weights, c.Dim, c.Scale)
}

// Evaluate scores test features and labels with probes.Evaluate.
func (c *Classifier) Evaluate(test probes.Dataset) (probes.Metrics, error) {
	s, err := c.Logits(test.X, test.N)
	if err != nil {
		return probes.Metrics{}, err
	}
	return probes.Evaluate(s, test.Y, len(c.ClassNames))
}

// Fit learns a CoOp classifier for classNames on the image features and labels of
// train (train.X [N, E] as the image tower gives them) through m's frozen text
// tower.
func Fit(m *clip.Model, tok Tokenizer, classNames []string, train probes.Dataset, opt Options) (*Classifier, error) {
	cfg := m.Config()
	if err := train.Check(len(classNames)); err != nil {
		return nil, fmt.Errorf("coop: %w", err)
	}
	if train.D != cfg.EmbedDim {
		return nil, fmt.Errorf("coop: image features have dimension %d, the model's embedding %d", train.D, cfg.EmbedDim)
	}
	opt, err := opt.withDefaults(train, len(classNames))
	if err != nil {
		return nil, err
	}
	p, err := newPrompts(m, tok, classNames, opt)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
	if opt.Init == "" {
		for i := range p.ctx {
			p.ctx[i] = float32(initStd * rng.NormFloat64())
		}
	}
	c := &Classifier{ClassNames: slices.Clone(classNames), NCtx: p.nctx, Width: p.width, ClassSpecific: opt.ClassSpecific,
		Dim: cfg.EmbedDim, Scale: float32(math.Exp(float64(m.LogitScale())))}
	velocity := make([]float64, len(p.ctx))
	batches := max(1, train.N/opt.BatchSize) // the last partial batch is dropped ...
	size := opt.BatchSize
	if train.N < opt.BatchSize { // ... unless there is only one
		size = train.N
	}
	start := time.Now()
	for epoch := range opt.Epochs {
		lr := opt.lrAt(epoch)
		perm := rng.Perm(train.N)
		var total float64
		for b := range batches {
			loss, grad, err := p.step(m, train.Subset(perm[b*size:(b+1)*size]), float64(c.Scale))
			if err != nil {
				return nil, fmt.Errorf("coop: epoch %d: %w", epoch+1, err)
			}
			total += loss
			for i, g := range grad { // torch.optim.SGD: weight decay, then momentum
				velocity[i] = opt.Momentum*velocity[i] + g + opt.WeightDecay*float64(p.ctx[i])
				p.ctx[i] -= float32(lr * velocity[i])
			}
		}
		c.Losses = append(c.Losses, total/float64(batches))
		if opt.Progress != nil {
			opt.Progress(Progress{Epoch: epoch + 1, Epochs: opt.Epochs, Loss: total / float64(batches), LR: lr, Elapsed: time.Since(start)})
		}
	}
	feats, err := m.EncodeEmbeddings(p.input())
	if err != nil {
		return nil, err
	}
	clip.L2Normalize(feats, c.Dim)
	c.Context, c.Weights = p.ctx, feats
	return c, nil
}

// withDefaults fills the zero fields and checks the others.
func (o Options) withDefaults(train probes.Dataset, classes int) (Options, error) {
	if o.Shots == 0 {
		counts := make([]int, classes)
		for _, y := range train.Y {
			counts[y]++
		}
		o.Shots = slices.Max(counts)
	}
	if o.Epochs == 0 {
		o.Epochs = EpochsForShots(o.Shots)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	for _, f := range []struct {
		v   *float64
		def float64
	}{{&o.LR, DefaultLR}, {&o.Momentum, DefaultMomentum}, {&o.WeightDecay, DefaultWeightDecay}, {&o.WarmupLR, DefaultWarmupLR}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if o.WarmupEpochs == 0 {
		o.WarmupEpochs = 1
	}
	switch {
	case o.NCtx < 0:
		return o, fmt.Errorf("coop: %d context vectors", o.NCtx)
	case o.Epochs < 0 || o.BatchSize < 0 || o.Shots < 0:
		return o, fmt.Errorf("coop: epochs %d, batch size %d, shots %d: none may be negative", o.Epochs, o.BatchSize, o.Shots)
	case o.LR < 0 || o.Momentum < 0 || o.Momentum >= 1 || o.WeightDecay < 0 || o.WarmupLR < 0:
		return o, fmt.Errorf("coop: learning rate %g, momentum %g, weight decay %g, warm-up rate %g out of range", o.LR, o.Momentum, o.WeightDecay, o.WarmupLR)
	}
	return o, nil
}

// lrAt is the learning rate of epoch e (from 0): the constant warm-up rate for the
// warm-up epochs, then LR * (1 + cos(pi e / Epochs)) / 2, Dassl's per-epoch cosine
// schedule picking up after the warm-up.
func (o Options) lrAt(e int) float64 {
	if e < o.WarmupEpochs {
		return o.WarmupLR
	}
	return o.LR * (1 + math.Cos(math.Pi*float64(e)/float64(o.Epochs))) / 2
}

// prompts are the classes' prompts as embeddings: the token embeddings of
// "[SOS] X .. X name." (or of Init's words before the name) cut to the longest
// prompt, with the context rows 1..M overwritten by ctx before every run.
type prompts struct {
	emb         []float32 // [C, seq, W] token embeddings (context rows refreshed by input)
	eot         []int
	classes     int
	seq, width  int
	nctx        int
	ctx         []float32 // [M, W] or [C, M, W]
	perClassCtx bool
}

func newPrompts(m *clip.Model, tok Tokenizer, classNames []string, opt Options) (*prompts, error) {
	cfg := m.Config()
	nctx, prefix := opt.NCtx, ""
	if opt.Init != "" {
		words := strings.Join(strings.Fields(strings.ReplaceAll(opt.Init, "_", " ")), " ")
		n := len(tok.Encode(words)) - 2 // without the start and end tokens
		if n <= 0 {
			return nil, fmt.Errorf("coop: context initialisation %q has no tokens", opt.Init)
		}
		if nctx != 0 && nctx != n {
			return nil, fmt.Errorf("coop: %d context vectors asked for, but %q is %d tokens (leave NCtx 0)", nctx, opt.Init, n)
		}
		nctx, prefix = n, words
	}
	if nctx == 0 {
		nctx = DefaultNCtx
	}
	if prefix == "" {
		prefix = strings.TrimSpace(strings.Repeat("X ", nctx))
	}
	texts := make([]string, len(classNames))
	for i, name := range classNames {
		texts[i] = prefix + " " + strings.ReplaceAll(name, "_", " ") + "."
	}
	ids, err := tok.Tokenize(texts, cfg.Text.ContextLength, false)
	if err != nil {
		return nil, fmt.Errorf("coop: prompts: %w", err)
	}
	in, err := m.EmbedTokens(ids, len(texts))
	if err != nil {
		return nil, err
	}
	w := cfg.Text.Width
	seq := slices.Max(in.EOT) + 1 // trimmed to the longest prompt
	p := &prompts{eot: in.EOT, classes: len(texts), seq: seq, width: w, nctx: nctx, perClassCtx: opt.ClassSpecific,
		emb: make([]float32, len(texts)*seq*w)}
	for c := range p.classes {
		if in.EOT[c] <= nctx {
			return nil, fmt.Errorf("coop: prompt %q: the class name has no tokens after the context", texts[c])
		}
		copy(p.emb[c*seq*w:(c+1)*seq*w], in.Embeddings[c*in.Seq*w:])
	}
	n := nctx * w
	if opt.ClassSpecific {
		n *= p.classes
	}
	p.ctx = make([]float32, n)
	if opt.Init != "" { // every class's copy starts from the words' embeddings
		for i := 0; i < n; i += nctx * w {
			copy(p.ctx[i:i+nctx*w], p.emb[w:(1+nctx)*w])
		}
	}
	return p, nil
}

// ctxOf returns the context vectors class c uses.
func (p *prompts) ctxOf(c int) []float32 {
	n := p.nctx * p.width
	if p.perClassCtx {
		return p.ctx[c*n : (c+1)*n]
	}
	return p.ctx[:n]
}

// input returns the prompts with the current context, as the text tower takes them.
func (p *prompts) input() *clip.TextInput {
	w := p.width
	for c := range p.classes {
		copy(p.emb[(c*p.seq+1)*w:(c*p.seq+1+p.nctx)*w], p.ctxOf(c))
	}
	return &clip.TextInput{Embeddings: p.emb, EOT: p.eot, Rows: p.classes, Seq: p.seq}
}

// step returns the batch's mean cross-entropy and its gradient with respect to the
// context.
func (p *prompts) step(m *clip.Model, batch probes.Dataset, scale float64) (float64, []float64, error) {
	head := func(txt, grad []float32) (float64, error) {
		l, err := clip.CrossEntropy(batch.X, txt, batch.D, scale, batch.Y)
		if err != nil {
			return 0, err
		}
		inv := 1 / float64(batch.N)
		for i, g := range l.Texts {
			grad[i] = float32(float64(g) * inv)
		}
		return l.Value * inv, nil
	}
	loss, g, err := m.TextLossGradients(p.input(), head, clip.WRTEmbeddings)
	if err != nil {
		return 0, nil, err
	}
	demb := g[clip.WRTEmbeddings] // [C, seq, W]
	grad := make([]float64, len(p.ctx))
	n := p.nctx * p.width
	for c := range p.classes {
		dst := grad[:n]
		if p.perClassCtx {
			dst = grad[c*n : (c+1)*n]
		}
		for i, v := range demb[(c*p.seq+1)*p.width : (c*p.seq+1)*p.width+n] {
			dst[i] += float64(v)
		}
	}
	return loss, grad, nil
}
