package layers

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// VisionConfig describes CLIP's image tower, a ViT (OpenAI's VisionTransformer).
// The zero value is not valid; start from a preset such as ViTB32.
type VisionConfig struct {
	// ImageResolution is the side of the square input in pixels (224 for ViT-B/32).
	ImageResolution int `json:"image_resolution"`
	// PatchSize is the side of a patch and the stride of conv1 (32 for ViT-B/32).
	PatchSize int `json:"patch_size"`
	// Width is the residual stream width (768 for ViT-B/32).
	Width int `json:"width"`
	// Layers is the number of residual attention blocks (12 for ViT-B/32).
	Layers int `json:"layers"`
	// Heads is the number of attention heads; OpenAI uses Width/64.
	Heads int `json:"heads"`
}

// TextConfig describes CLIP's causal text tower.
type TextConfig struct {
	// ContextLength is the number of token positions (77).
	ContextLength int `json:"context_length"`
	// VocabSize is the BPE vocabulary size (49408).
	VocabSize int `json:"vocab_size"`
	// Width is the residual stream width (512 for ViT-B/32).
	Width int `json:"width"`
	// Layers is the number of residual attention blocks (12 for ViT-B/32).
	Layers int `json:"layers"`
	// Heads is the number of attention heads (8 for ViT-B/32). Unlike the vision
	// tower it is not always Width/64, so it is read from the config when present.
	Heads int `json:"heads"`
}

// Config describes a whole CLIP model: two towers projected into one embedding space.
type Config struct {
	// Name is a human-readable model name such as "ViT-B/32" (informational).
	Name string `json:"name,omitempty"`
	// EmbedDim is the width of the shared image-text embedding space (512 for ViT-B/32).
	EmbedDim int          `json:"embed_dim"`
	Vision   VisionConfig `json:"vision"`
	Text     TextConfig   `json:"text"`
	// QuickGELU selects x*sigmoid(1.702x) as the MLP activation. OpenAI's weights were
	// trained with it; exact GELU gives slightly different features. Always true for
	// OpenAI checkpoints; it exists for open_clip-style models trained with nn.GELU.
	QuickGELU bool `json:"quick_gelu"`
	// LayerNormEps is LayerNorm's epsilon (1e-5 in all OpenAI models).
	LayerNormEps float32 `json:"layer_norm_eps"`
}

// Grid is the number of patches along one side of the image.
func (v VisionConfig) Grid() int { return v.ImageResolution / v.PatchSize }

// Tokens is the vision sequence length: one class token plus Grid()^2 patches.
func (v VisionConfig) Tokens() int { return v.Grid()*v.Grid() + 1 }

// Validate reports every inconsistent field of c in one error, naming the values.
func (c Config) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.EmbedDim <= 0 {
		bad("embed_dim %d must be positive", c.EmbedDim)
	}
	v, t := c.Vision, c.Text
	if v.ImageResolution <= 0 || v.PatchSize <= 0 {
		bad("vision image_resolution %d and patch_size %d must be positive", v.ImageResolution, v.PatchSize)
	} else if v.ImageResolution%v.PatchSize != 0 {
		bad("vision image_resolution %d is not a multiple of patch_size %d", v.ImageResolution, v.PatchSize)
	}
	if v.Width <= 0 || v.Layers <= 0 || v.Heads <= 0 {
		bad("vision width %d, layers %d and heads %d must be positive", v.Width, v.Layers, v.Heads)
	} else if v.Width%v.Heads != 0 {
		bad("vision width %d is not divisible by heads %d", v.Width, v.Heads)
	}
	if t.ContextLength <= 0 || t.VocabSize <= 0 {
		bad("text context_length %d and vocab_size %d must be positive", t.ContextLength, t.VocabSize)
	}
	if t.Width <= 0 || t.Layers <= 0 || t.Heads <= 0 {
		bad("text width %d, layers %d and heads %d must be positive", t.Width, t.Layers, t.Heads)
	} else if t.Width%t.Heads != 0 {
		bad("text width %d is not divisible by heads %d", t.Width, t.Heads)
	}
	if c.LayerNormEps <= 0 {
		bad("layer_norm_eps %g must be positive", c.LayerNormEps)
	}
	if len(errs) > 0 {
		return errors.New("layers: invalid config: " + strings.Join(errs, "; "))
	}
	return nil
}

// openAIText is the text tower shared by every OpenAI ViT model of a given width.
func openAIText(width int) TextConfig {
	return TextConfig{ContextLength: 77, VocabSize: 49408, Width: width, Layers: 12, Heads: width / 64}
}

// Presets are OpenAI's released ViT CLIP models, keyed by their OpenAI names.
// Parameter counts are for the whole model (both towers).
var Presets = map[string]Config{
	// 151M parameters; openai/clip-vit-base-patch32 on the Hugging Face hub.
	"ViT-B/32": {Name: "ViT-B/32", EmbedDim: 512, QuickGELU: true, LayerNormEps: 1e-5,
		Vision: VisionConfig{ImageResolution: 224, PatchSize: 32, Width: 768, Layers: 12, Heads: 12},
		Text:   openAIText(512)},
	// 150M parameters; openai/clip-vit-base-patch16.
	"ViT-B/16": {Name: "ViT-B/16", EmbedDim: 512, QuickGELU: true, LayerNormEps: 1e-5,
		Vision: VisionConfig{ImageResolution: 224, PatchSize: 16, Width: 768, Layers: 12, Heads: 12},
		Text:   openAIText(512)},
	// 428M parameters; openai/clip-vit-large-patch14.
	"ViT-L/14": {Name: "ViT-L/14", EmbedDim: 768, QuickGELU: true, LayerNormEps: 1e-5,
		Vision: VisionConfig{ImageResolution: 224, PatchSize: 14, Width: 1024, Layers: 24, Heads: 16},
		Text:   openAIText(768)},
	// 428M parameters; openai/clip-vit-large-patch14-336.
	"ViT-L/14@336px": {Name: "ViT-L/14@336px", EmbedDim: 768, QuickGELU: true, LayerNormEps: 1e-5,
		Vision: VisionConfig{ImageResolution: 336, PatchSize: 14, Width: 1024, Layers: 24, Heads: 16},
		Text:   openAIText(768)},
}

// Preset returns the named preset. "ViT-L/14@336" is accepted for "ViT-L/14@336px".
func Preset(name string) (Config, error) {
	if name == "ViT-L/14@336" {
		name = "ViT-L/14@336px"
	}
	c, ok := Presets[name]
	if !ok {
		names := make([]string, 0, len(Presets))
		for n := range Presets {
			names = append(names, n)
		}
		sort.Strings(names)
		return Config{}, fmt.Errorf("layers: unknown model %q (known: %s)", name, strings.Join(names, ", "))
	}
	return c, nil
}
