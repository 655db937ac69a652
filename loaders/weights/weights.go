// Package weights loads CLIP checkpoints into OpenAI's state-dict naming.
//
// Every layout ends as a Checkpoint: float32 tensors keyed by OpenAI's state-dict keys
// (visual.conv1.weight, transformer.resblocks.0.attn.in_proj_weight, text_projection,
// logit_scale, ...) with the model's layers.Config.
package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// Tensor is a C-ordered float32 array.
type Tensor = npy.Float32

// Checkpoint is a CLIP model's weights under OpenAI names, with its config.
type Checkpoint struct {
	// Config describes the architecture.
	Config layers.Config
	// Tensors maps OpenAI state-dict keys to weights.
	Tensors map[string]*Tensor
	// Dir is the directory the checkpoint was loaded from.
	Dir string
	// Format names the layout it was read from ("openai-npy", ...).
	Format string
}

// Load reads the checkpoint in dir, whichever layout it has.
func Load(dir string) (*Checkpoint, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("loaders: weights: %s is not a directory", dir)
	}
	return loadNpyDir(dir)
}

// openAIConfig is config.json as OpenAI's build_model arguments (the fixture layout).
type openAIConfig struct {
	EmbedDim          int   `json:"embed_dim"`
	ImageResolution   int   `json:"image_resolution"`
	VisionLayers      int   `json:"vision_layers"`
	VisionWidth       int   `json:"vision_width"`
	VisionPatchSize   int   `json:"vision_patch_size"`
	VisionHeads       int   `json:"vision_heads"`
	ContextLength     int   `json:"context_length"`
	VocabSize         int   `json:"vocab_size"`
	TransformerWidth  int   `json:"transformer_width"`
	TransformerHeads  int   `json:"transformer_heads"`
	TransformerLayers int   `json:"transformer_layers"`
	QuickGELU         *bool `json:"quick_gelu,omitempty"`
}

func (o openAIConfig) config() layers.Config {
	c := layers.Config{
		EmbedDim: o.EmbedDim, QuickGELU: true, LayerNormEps: 1e-5,
		Vision: layers.VisionConfig{ImageResolution: o.ImageResolution, PatchSize: o.VisionPatchSize,
			Width: o.VisionWidth, Layers: o.VisionLayers, Heads: o.VisionHeads},
		Text: layers.TextConfig{ContextLength: o.ContextLength, VocabSize: o.VocabSize,
			Width: o.TransformerWidth, Layers: o.TransformerLayers, Heads: o.TransformerHeads},
	}
	if c.Vision.Heads == 0 {
		c.Vision.Heads = c.Vision.Width / 64 // as OpenAI's build_model
	}
	if o.QuickGELU != nil {
		c.QuickGELU = *o.QuickGELU
	}
	return c
}

func loadNpyDir(dir string) (*Checkpoint, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.npy"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("loaders: weights: no .npy files in %s", dir)
	}
	ck := &Checkpoint{Tensors: map[string]*Tensor{}, Dir: dir, Format: "openai-npy"}
	for _, f := range files {
		t, err := npy.ReadFloat32(f)
		if err != nil {
			return nil, fmt.Errorf("loaders: weights: %w", err)
		}
		ck.Tensors[strings.TrimSuffix(filepath.Base(f), ".npy")] = t
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %w", err)
	}
	var oc openAIConfig
	if err := json.Unmarshal(b, &oc); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	ck.Config = oc.config()
	if err := ck.Config.Validate(); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
	}
	if err := Validate(ck.Config, ck.Tensors); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
	}
	return ck, nil
}

// ExpectedShapes returns every OpenAI state-dict key of a ViT CLIP with config c and
// its shape.
func ExpectedShapes(c layers.Config) map[string][]int {
	m := map[string][]int{}
	v, t := c.Vision, c.Text
	block := func(prefix string, w int) {
		m[prefix+"attn.in_proj_weight"] = []int{3 * w, w}
		m[prefix+"attn.in_proj_bias"] = []int{3 * w}
		m[prefix+"attn.out_proj.weight"] = []int{w, w}
		m[prefix+"attn.out_proj.bias"] = []int{w}
		m[prefix+"ln_1.weight"] = []int{w}
		m[prefix+"ln_1.bias"] = []int{w}
		m[prefix+"ln_2.weight"] = []int{w}
		m[prefix+"ln_2.bias"] = []int{w}
		m[prefix+"mlp.c_fc.weight"] = []int{4 * w, w}
		m[prefix+"mlp.c_fc.bias"] = []int{4 * w}
		m[prefix+"mlp.c_proj.weight"] = []int{w, 4 * w}
		m[prefix+"mlp.c_proj.bias"] = []int{w}
	}
	m["visual.class_embedding"] = []int{v.Width}
	m["visual.conv1.weight"] = []int{v.Width, 3, v.PatchSize, v.PatchSize}
	m["visual.positional_embedding"] = []int{v.Tokens(), v.Width}
	m["visual.ln_pre.weight"] = []int{v.Width}
	m["visual.ln_pre.bias"] = []int{v.Width}
	m["visual.ln_post.weight"] = []int{v.Width}
	m["visual.ln_post.bias"] = []int{v.Width}
	m["visual.proj"] = []int{v.Width, c.EmbedDim}
	for i := 0; i < v.Layers; i++ {
		block(fmt.Sprintf("visual.transformer.resblocks.%d.", i), v.Width)
	}
	m["token_embedding.weight"] = []int{t.VocabSize, t.Width}
	m["positional_embedding"] = []int{t.ContextLength, t.Width}
	m["ln_final.weight"] = []int{t.Width}
	m["ln_final.bias"] = []int{t.Width}
	m["text_projection"] = []int{t.Width, c.EmbedDim}
	m["logit_scale"] = []int{}
	for i := 0; i < t.Layers; i++ {
		block(fmt.Sprintf("transformer.resblocks.%d.", i), t.Width)
	}
	return m
}

// Validate checks tensors against the keys and shapes config c expects and lists every
// missing, unexpected and mis-shaped key in one error.
func Validate(c layers.Config, tensors map[string]*Tensor) error {
	want := ExpectedShapes(c)
	var missing, unexpected, misshaped []string
	for k, s := range want {
		t, ok := tensors[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		if !sameShape(t.Shape, s) {
			misshaped = append(misshaped, fmt.Sprintf("%s: got %v want %v", k, t.Shape, s))
		}
	}
	for k := range tensors {
		if _, ok := want[k]; !ok {
			unexpected = append(unexpected, k)
		}
	}
	if len(missing)+len(unexpected)+len(misshaped) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	sort.Strings(misshaped)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("missing %d keys: %s", len(missing), strings.Join(missing, ", ")))
	}
	if len(unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("unexpected %d keys: %s", len(unexpected), strings.Join(unexpected, ", ")))
	}
	if len(misshaped) > 0 {
		parts = append(parts, fmt.Sprintf("mis-shaped %d keys: %s", len(misshaped), strings.Join(misshaped, "; ")))
	}
	return errors.New(strings.Join(parts, "; "))
}

func sameShape(a, b []int) bool {
	// A scalar may be stored as shape () or (1,).
	if len(b) == 0 && len(a) == 1 && a[0] == 1 {
		return true
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
