package layers

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/graph"
	G "gorgonia.org/gorgonia"
)

// VisionTower is an image tower: a module tree built from a Config and Weights that
// adds its forward pass to a graph.
type VisionTower interface {
	// Forward builds the tower for CLIP-normalised pixels [B, 3*R*R] (each image
	// [3,R,R] row-major).
	Forward(b *graph.Builder, pixels *G.Node, batch int) (*TowerOutputs, error)
}

// TextTower is a text tower. Token ids are looked up on the host (Embed) and the
// graph starts from their embeddings, so that gradients with respect to the token
// embeddings (prompt learning) need no gather op.
type TextTower interface {
	// Embed writes the token embeddings of tokens [B, L] into dst [B*L, W].
	Embed(dst []float32, tokens []int32, batch, seq int) error
	// Forward builds the tower for embedded tokens [B*L, W] and end-of-text positions
	// eot [B] (integers as float32, each < L).
	Forward(b *graph.Builder, emb, eot *G.Node, batch, seq int) (*TowerOutputs, error)
}

// Tap is one named intermediate result of a tower, for inspection and parity tests.
type Tap struct {
	// Name is the stage name: "embedded", "block0", "encoder", "ln_final" (vit and
	// text); "stem", "layer1".."layer4" (resnet).
	Name string
	// Node holds the batch's values as rows: [B*T, D] for token sequences, [B*H*W, C]
	// for feature maps (channels last).
	Node *G.Node
	// Shape is one item's shape as stored: [T, D], or [H, W, C].
	Shape []int
	// ChannelsLast says Shape is [H, W, C] and readers should present [C, H, W]
	// (PyTorch's NCHW, the layout of the reference goldens).
	ChannelsLast bool
}

// TowerOutputs are the nodes of one tower's graph that callers may read.
type TowerOutputs struct {
	// Taps are the intermediate results, in forward order.
	Taps []Tap
	// Pooled is the pre-projection representation [B, P]: the class token after
	// ln_post (vit), ln_final at the end-of-text token (text), the attention pool
	// before c_proj (resnet). The usual input of linear probes.
	Pooled *G.Node
	// Features is the projected embedding [B, E], not normalised.
	Features *G.Node
	// Attention holds each transformer block's self-attention [B*T, D] before
	// out_proj (a graph.Attention node), in order: graph.AttentionProbs gives its
	// softmax weights. Empty for towers without blocks (resnet).
	Attention []*G.Node
}

// Tap returns the tap called name, or nil.
func (o *TowerOutputs) Tap(name string) *Tap {
	for i := range o.Taps {
		if o.Taps[i].Name == name {
			return &o.Taps[i]
		}
	}
	return nil
}

// VisionKind is a registered image-tower architecture.
type VisionKind struct {
	// Validate checks the fields of v that the kind reads, and refuses those it does
	// not, naming each (nil when v is valid).
	Validate func(v VisionConfig) error
	// New builds the tower's modules for c, taking every weight from w (see Weights).
	New func(c Config, w *Weights) (VisionTower, error)
}

// TextKind is a registered text-tower architecture.
type TextKind struct {
	// Validate checks the fields of t, naming each bad one (nil when valid).
	Validate func(t TextConfig) error
	// New builds the tower's modules for c, taking every weight from w.
	New func(c Config, w *Weights) (TextTower, error)
}

var (
	visionKinds = map[string]VisionKind{}
	textKinds   = map[string]TextKind{}
)

// RegisterVision makes kind available as Config.Vision.Kind. It panics when kind is
// taken or k is incomplete (registration happens in init functions).
func RegisterVision(kind string, k VisionKind) {
	if _, dup := visionKinds[kind]; dup || kind == "" || k.New == nil || k.Validate == nil {
		panic(fmt.Sprintf("layers: RegisterVision(%q): empty, incomplete or registered twice", kind))
	}
	visionKinds[kind] = k
}

// RegisterText makes kind available as Config.Text.Kind (see RegisterVision).
func RegisterText(kind string, k TextKind) {
	if _, dup := textKinds[kind]; dup || kind == "" || k.New == nil || k.Validate == nil {
		panic(fmt.Sprintf("layers: RegisterText(%q): empty, incomplete or registered twice", kind))
	}
	textKinds[kind] = k
}

func kindNames[K any](m map[string]K) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CLIP is the whole model's module tree: the two towers and the temperature.
type CLIP struct {
	// Config is the model's configuration.
	Config Config
	// Visual is the image tower (OpenAI's key prefix "visual.").
	Visual VisionTower
	// Text is the text tower (OpenAI keeps its keys at the top level).
	Text TextTower
	// LogitScale is the learned log temperature [1]: logits = exp(LogitScale) * cos.
	LogitScale float32
}

// NewCLIP builds the towers of kind c.Vision.Kind and c.Text.Kind over w. Binding, it
// returns every missing, mis-shaped and unexpected weight in one error.
func NewCLIP(c Config, w *Weights) (*CLIP, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &CLIP{Config: c}
	var err error
	if m.Visual, err = visionKinds[c.Vision.Kind].New(c, w); err != nil {
		return nil, err
	}
	if m.Text, err = textKinds[c.Text.Kind].New(c, w); err != nil {
		return nil, err
	}
	ls := w.Param("logit_scale", Const(math.Log(1/0.07))) // OpenAI's initial temperature, a scalar
	w.After(func() error { m.LogitScale = floats(ls)[0]; return nil })
	if err := w.Err(); err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	return m, nil
}

// Declared returns every weight a model with config c owns, in declaration order,
// and its known non-weight buffers: the one list that loading, shape checks and
// random checkpoints read.
func Declared(c Config) (*Weights, error) {
	w := Declare()
	if _, err := NewCLIP(c, w); err != nil {
		return nil, err
	}
	return w, nil
}

// wrap prefixes err with the module path name.
func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// joinProblems turns a problem list into an error (nil when empty).
func joinProblems(p problems) error {
	if len(p) == 0 {
		return nil
	}
	return errors.New(strings.Join(p, "; "))
}
