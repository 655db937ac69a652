package layers

import (
	"fmt"
	"math"

	"github.com/gorgoclip/gorgoclip/graph"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func init() {
	RegisterVision("resnet", VisionKind{Validate: validateResNet, New: func(c Config, w *Weights) (VisionTower, error) {
		return NewModifiedResNet(c, w)
	}})
}

// validateResNet checks a "resnet" tower's fields.
func validateResNet(v VisionConfig) error {
	var p problems
	p.positive("vision image_resolution", v.ImageResolution, maxResolution)
	if v.ImageResolution%32 != 0 {
		p.add("vision image_resolution %d is not a multiple of 32 (the ResNet's total stride)", v.ImageResolution)
	}
	p.positive("vision width", v.Width, maxWidth/32)
	if v.Width%2 != 0 {
		p.add("vision width %d is odd (the stem's first convolutions have width/2 channels)", v.Width)
	}
	if len(v.StageBlocks) != 4 {
		p.add("vision stage_blocks %v: want blocks for 4 stages", v.StageBlocks)
	}
	for i, n := range v.StageBlocks {
		p.positive(fmt.Sprintf("vision stage_blocks[%d]", i), n, maxLayers)
	}
	if embed := 32 * v.Width; v.Heads <= 0 || embed%max(v.Heads, 1) != 0 {
		p.add("vision heads %d must divide the attention pool's width %d (32*width)", v.Heads, embed)
	}
	p.unused("resnet", "vision patch_size", v.PatchSize != 0)
	p.unused("resnet", "vision layers (use stage_blocks)", v.Layers != 0)
	p.unused("resnet", "vision mlp_ratio", v.MLPRatio != 0)
	p.unused("resnet", "vision ls_init_value", v.LayerScaleInit != 0)
	return joinProblems(p)
}

// ConvBN is a bias-free torch.nn.Conv2d followed by an eval-mode torch.nn.BatchNorm2d,
// folded at load into one convolution with a bias:
// W' = W * gamma/sqrt(var+eps), b' = beta - mean * gamma/sqrt(var+eps), per output
// channel, computed in float64. The weight is also permuted from PyTorch's
// [Cout, Cin, K, K] to [Cout, K*K*Cin], the (ky, kx, c) order of graph.Conv2dOp's
// channels-last receptive fields (for K = 1, the [Cout, Cin] of a LinearOp).
type ConvBN struct {
	// Conv and BN are the two modules' paths, e.g. "visual.layer1.0.conv1" and
	// "visual.layer1.0.bn1".
	Conv, BN string
	// In, Out, Kernel, Stride and Pad describe the convolution (padding K/2).
	In, Out, Kernel, Stride int
	// Weight [Out, K*K*In] and Bias [Out] are the folded parameters.
	Weight, Bias *tensor.Dense
}

// batchNormEps is torch.nn.BatchNorm2d's default epsilon, which OpenAI's ResNet keeps.
const batchNormEps = 1e-5

// NewConvBN declares conv.weight [out, in, k, k] and bn's weight, bias, running_mean
// and running_var [out] (and its num_batches_tracked counter, a buffer), and folds
// them when binding. zeroGamma initialises bn.weight to 0, as OpenAI does for the last
// BatchNorm of each bottleneck.
func NewConvBN(w *Weights, conv, bn string, in, out, k, stride int, zeroGamma bool) *ConvBN {
	c := &ConvBN{Conv: conv, BN: bn, In: in, Out: out, Kernel: k, Stride: stride}
	gammaInit := Const(1)
	if zeroGamma {
		gammaInit = Const(0)
	}
	kernel := w.Param(conv+".weight", fanIn(in*k*k), out, in, k, k)
	gamma := w.Param(bn+".weight", gammaInit, out)
	beta := w.Param(bn+".bias", Const(0), out)
	mean := w.Param(bn+".running_mean", Const(0), out)
	variance := w.Param(bn+".running_var", Const(1), out)
	w.Buffer(bn + "." + BatchNormCounter)
	w.After(func() error {
		wt, b := make([]float32, out*k*k*in), make([]float32, out)
		src, g, be, mu, va := floats(kernel), floats(gamma), floats(beta), floats(mean), floats(variance)
		for o := range out {
			if va[o] < 0 || math.IsNaN(float64(va[o])) {
				return fmt.Errorf("%s.running_var[%d] = %g is not a variance", bn, o, va[o])
			}
			s := float64(g[o]) / math.Sqrt(float64(va[o])+batchNormEps)
			b[o] = float32(float64(be[o]) - float64(mu[o])*s)
			for ci := range in {
				for ky := range k {
					for kx := range k {
						wt[o*k*k*in+(ky*k+kx)*in+ci] = float32(float64(src[((o*in+ci)*k+ky)*k+kx]) * s)
					}
				}
			}
		}
		c.Weight, c.Bias = dense(wt, out, k*k*in), dense(b, out)
		return nil
	})
	return c
}

// fmap is a channels-last feature map in a graph: rows [B*H*W, C].
type fmap struct {
	node          *G.Node
	batch, h, w   int
	c             int
	channelsFirst bool // pixels [B, C*H*W] as they come (the stem's input)
}

// Forward applies the folded convolution (padding K/2), then act; residual, when not
// nil, is added before act (a 1x1 convolution only: the bottleneck's conv3).
func (c *ConvBN) Forward(b *graph.Builder, x fmap, act graph.Activation, residual *G.Node) (fmap, error) {
	wk, bk := b.Param(c.Conv+".weight", c.Weight), b.Param(c.BN+".bias", c.Bias)
	if c.Kernel == 1 && c.Stride == 1 && !x.channelsFirst {
		// A 1x1 convolution over channels-last rows is a matrix product.
		y, err := graph.Linear(c.Conv, x.node, wk, graph.LinearOptions{Bias: bk, Residual: residual, Act: act})
		return fmap{y, x.batch, x.h, x.w, c.Out, false}, wrap(c.Conv, err)
	}
	if residual != nil {
		return fmap{}, fmt.Errorf("%s: a residual is only fused into 1x1 convolutions", c.Conv)
	}
	opt := graph.ConvOptions{Batch: x.batch, Height: x.h, Width: x.w, In: c.In, Kernel: c.Kernel, Stride: c.Stride,
		Pad: c.Kernel / 2, ChannelsFirst: x.channelsFirst, Act: act}
	y, err := graph.Conv2d(c.Conv, x.node, wk, bk, opt)
	if err != nil {
		return fmap{}, wrap(c.Conv, err)
	}
	ho, wo := graph.ConvOutput(x.h, c.Kernel, c.Stride, opt.Pad), graph.ConvOutput(x.w, c.Kernel, c.Stride, opt.Pad)
	return fmap{y, x.batch, ho, wo, c.Out, false}, nil
}

// avgPool is torch.nn.AvgPool2d(k); k <= 1 is the identity, as in OpenAI's code.
func avgPool(name string, x fmap, k int) (fmap, error) {
	if k <= 1 {
		return x, nil
	}
	y, err := graph.AvgPool(name, x.node, x.batch, x.h, x.w, k)
	return fmap{y, x.batch, x.h / k, x.w / k, x.c, false}, wrap(name, err)
}

// Bottleneck is OpenAI's anti-aliased ResNet bottleneck: 1x1, 3x3, average pool of
// the stride, 1x1 with expansion 4; the skip connection average-pools then applies a
// 1x1 convolution when the stride or the width changes.
type Bottleneck struct {
	// Name is the module path, e.g. "visual.layer2.0".
	Name string
	// Conv1, Conv2 and Conv3 are the main path, each with its BatchNorm folded in.
	Conv1, Conv2, Conv3 *ConvBN
	// Stride is the average pool's kernel and stride (1 or 2).
	Stride int
	// Downsample is the skip path's convolution (downsample.0 with BatchNorm
	// downsample.1; downsample.-1 is the parameter-free average pool), or nil.
	Downsample *ConvBN
}

// NewBottleneck declares the block at name: inplanes channels in, planes*4 out.
func NewBottleneck(w *Weights, name string, inplanes, planes, stride int) *Bottleneck {
	out := 4 * planes
	bl := &Bottleneck{Name: name, Stride: stride,
		Conv1: NewConvBN(w, name+".conv1", name+".bn1", inplanes, planes, 1, 1, false),
		Conv2: NewConvBN(w, name+".conv2", name+".bn2", planes, planes, 3, 1, false),
		Conv3: NewConvBN(w, name+".conv3", name+".bn3", planes, out, 1, 1, true),
	}
	if stride > 1 || inplanes != out {
		bl.Downsample = NewConvBN(w, name+".downsample.0", name+".downsample.1", inplanes, out, 1, 1, false)
	}
	return bl
}

// Forward maps x [B*H*W, inplanes] to [B*(H/s)*(W/s), 4*planes].
func (bl *Bottleneck) Forward(b *graph.Builder, x fmap) (fmap, error) {
	h, err := bl.Conv1.Forward(b, x, graph.ReLU, nil)
	if err != nil {
		return h, err
	}
	if h, err = bl.Conv2.Forward(b, h, graph.ReLU, nil); err != nil {
		return h, err
	}
	if h, err = avgPool(bl.Name+".avgpool", h, bl.Stride); err != nil {
		return h, err
	}
	identity := x
	if bl.Downsample != nil {
		if identity, err = avgPool(bl.Name+".downsample.-1", x, bl.Stride); err != nil {
			return h, err
		}
		if identity, err = bl.Downsample.Forward(b, identity, graph.Identity, nil); err != nil {
			return h, err
		}
	}
	return bl.Conv3.Forward(b, h, graph.ReLU, identity.node) // relu(bn3(conv3(h)) + identity)
}

// AttentionPool2d is OpenAI's attention pooling: the spatial tokens of the last stage
// plus their mean, with a positional embedding, attended to by one query (the mean
// token) with separate q/k/v projections, then c_proj to the embedding.
type AttentionPool2d struct {
	// PositionalEmbedding is [S+1, C], S = (R/32)^2.
	PositionalEmbedding *tensor.Dense
	// QProj is q_proj (C -> C); KVWeight [2C, C] and KVBias [2C] stack k_proj and
	// v_proj at load, so one product gives both.
	QProj            *Linear
	KVWeight, KVBias *tensor.Dense
	// CProj maps C to the embedding E.
	CProj *Linear
	// Heads is H.
	Heads int
	// Spatial is S.
	Spatial int
}

// NewAttentionPool2d declares visual.attnpool.*, initialised as OpenAI does (std
// C^-0.5 for the four projections, positional embedding N(0, 1/C)).
func NewAttentionPool2d(w *Weights, spatial, c, heads, embed int) *AttentionPool2d {
	const name = "visual.attnpool"
	std := 1 / sqrt(c)
	a := &AttentionPool2d{Heads: heads, Spatial: spatial,
		PositionalEmbedding: w.Param(name+".positional_embedding", Normal(std), spatial+1, c),
		QProj:               NewLinear(w, name+".q_proj", c, c, Normal(std)),
	}
	k := NewLinear(w, name+".k_proj", c, c, Normal(std))
	v := NewLinear(w, name+".v_proj", c, c, Normal(std))
	a.CProj = NewLinear(w, name+".c_proj", c, embed, Normal(std))
	w.After(func() error {
		a.KVWeight = dense(append(append(make([]float32, 0, 2*c*c), floats(k.Weight)...), floats(v.Weight)...), 2*c, c)
		a.KVBias = dense(append(append(make([]float32, 0, 2*c), floats(k.Bias)...), floats(v.Bias)...), 2*c)
		return nil
	})
	return a
}

// Forward pools x [B*S, C] to the attention output [B, C] (before c_proj) and the
// projected features [B, E].
func (a *AttentionPool2d) Forward(b *graph.Builder, x fmap) (pooled, features *G.Node, err error) {
	const name = "visual.attnpool"
	t := a.Spatial + 1
	tok, err := graph.PoolTokens(name+".tokens", x.node, b.Param(name+".positional_embedding", a.PositionalEmbedding), x.batch, a.Spatial) // [B*T, C]
	if err != nil {
		return nil, nil, wrap(name, err)
	}
	query, err := graph.SelectRow(name+".query", tok, t, 0) // the mean token [B, C]
	if err != nil {
		return nil, nil, wrap(name, err)
	}
	q, err := a.QProj.Forward(b, query) // [B, C]
	if err != nil {
		return nil, nil, err
	}
	kv, err := graph.Linear(name+".kv_proj", tok, b.Param(name+".kv_proj.weight", a.KVWeight),
		graph.LinearOptions{Bias: b.Param(name+".kv_proj.bias", a.KVBias)}) // [B*T, 2C]
	if err != nil {
		return nil, nil, wrap(name, err)
	}
	if pooled, err = graph.QueryAttention(name, q, kv, x.batch, t, a.Heads); err != nil { // [B, C]
		return nil, nil, wrap(name, err)
	}
	features, err = a.CProj.Forward(b, pooled) // [B, E]
	return pooled, features, err
}

// ModifiedResNet is OpenAI's ResNet image tower (RN50, RN101, RN50x4, RN50x16,
// RN50x64): a three-convolution stem with an average pool, four stages of
// bottlenecks, and an attention pool in place of global average pooling. Feature maps
// are channels last ([B*H*W, C] rows) throughout, so 1x1 convolutions are plain
// matrix products; the taps give them back as PyTorch's [C, H, W].
type ModifiedResNet struct {
	// Config is the tower's configuration.
	Config VisionConfig
	// Conv1, Conv2 and Conv3 are the stem (3 -> W/2 stride 2, W/2 -> W/2, W/2 -> W).
	Conv1, Conv2, Conv3 *ConvBN
	// Layers are the four stages, visual.layer1 .. visual.layer4.
	Layers [4][]*Bottleneck
	// AttnPool pools the last stage into the embedding.
	AttnPool *AttentionPool2d
}

// NewModifiedResNet declares the "visual." weights of a ResNet for config c.
func NewModifiedResNet(c Config, w *Weights) (*ModifiedResNet, error) {
	v := c.Vision
	wd := v.Width
	m := &ModifiedResNet{Config: v,
		Conv1: NewConvBN(w, "visual.conv1", "visual.bn1", 3, wd/2, 3, 2, false),
		Conv2: NewConvBN(w, "visual.conv2", "visual.bn2", wd/2, wd/2, 3, 1, false),
		Conv3: NewConvBN(w, "visual.conv3", "visual.bn3", wd/2, wd, 3, 1, false),
	}
	inplanes := wd
	for s := range 4 {
		planes, stride := wd<<s, min(s, 1)+1 // stage 1 keeps the resolution, the others halve it
		for i := range v.StageBlocks[s] {
			st := stride
			if i > 0 {
				st = 1
			}
			m.Layers[s] = append(m.Layers[s], NewBottleneck(w, fmt.Sprintf("visual.layer%d.%d", s+1, i), inplanes, planes, st))
			inplanes = 4 * planes
		}
	}
	grid := v.ImageResolution / 32
	m.AttnPool = NewAttentionPool2d(w, grid*grid, 32*wd, v.Heads, c.EmbedDim)
	return m, nil
}

// Forward builds the image tower for CLIP-normalised pixels [B, 3*R*R].
func (m *ModifiedResNet) Forward(b *graph.Builder, pixels *G.Node, batch int) (*TowerOutputs, error) {
	r := m.Config.ImageResolution
	x := fmap{pixels, batch, r, r, 3, true}
	var err error
	for _, c := range []*ConvBN{m.Conv1, m.Conv2, m.Conv3} {
		if x, err = c.Forward(b, x, graph.ReLU, nil); err != nil {
			return nil, err
		}
	}
	if x, err = avgPool("visual.avgpool", x, 2); err != nil {
		return nil, err
	}
	tap := func(name string, x fmap) Tap {
		return Tap{Name: name, Node: x.node, Shape: []int{x.h, x.w, x.c}, ChannelsLast: true}
	}
	out := &TowerOutputs{Taps: []Tap{tap("stem", x)}}
	for s, blocks := range m.Layers {
		for _, bl := range blocks {
			if x, err = bl.Forward(b, x); err != nil {
				return nil, err
			}
		}
		out.Taps = append(out.Taps, tap(fmt.Sprintf("layer%d", s+1), x))
	}
	if out.Pooled, out.Features, err = m.AttnPool.Forward(b, x); err != nil {
		return nil, err
	}
	return out, nil
}

// FLOPs is the image tower's cost per image, counting a multiply-add as 2: every
// convolution at its output size, and the attention pool's projections and
// attention (11.6 GFLOP for RN50 at 224 px: 5.8 G multiply-adds, against 4.1 G for
// torchvision's ResNet-50, whose strided 3x3 convolutions run at a quarter of the
// resolution).
func (m *ModifiedResNet) FLOPs() float64 {
	side := m.Config.ImageResolution
	conv := func(c *ConvBN) float64 {
		side = graph.ConvOutput(side, c.Kernel, c.Stride, c.Kernel/2)
		return 2 * float64(side*side) * float64(c.Out*c.In*c.Kernel*c.Kernel)
	}
	var f float64
	for _, c := range []*ConvBN{m.Conv1, m.Conv2, m.Conv3} {
		f += conv(c)
	}
	side /= 2 // the stem's average pool
	for _, stage := range m.Layers {
		for _, bl := range stage {
			in := side
			f += conv(bl.Conv1) + conv(bl.Conv2)
			side /= bl.Stride
			f += conv(bl.Conv3)
			if bl.Downsample != nil {
				out := side
				side = in / bl.Stride
				f += conv(bl.Downsample)
				side = out
			}
		}
	}
	a := m.AttnPool
	c, t := float64(a.QProj.Weight.Shape()[0]), float64(a.Spatial+1)
	e := float64(a.CProj.Weight.Shape()[0])
	return f + 2*c*c + 4*t*c*c + 4*t*c + 2*c*e
}
