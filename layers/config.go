package layers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// VisionConfig describes CLIP's image tower. Kind picks the architecture (a registered
// tower kind, see RegisterVision): "vit" (OpenAI's VisionTransformer) or "resnet"
// (OpenAI's ModifiedResNet). Each kind uses some of the fields and refuses the others
// (Config.Validate names them). Defaults reproduce ViT-B/32.
type VisionConfig struct {
	// Kind is the tower architecture: "vit" or "resnet".
	Kind string `json:"kind"`
	// ImageResolution is the side of the square input in pixels (224 for ViT-B/32).
	ImageResolution int `json:"image_resolution"`
	// PatchSize is the side of a patch and the stride of conv1 (vit: 32 for ViT-B/32).
	PatchSize int `json:"patch_size,omitempty"`
	// Width is the residual stream width (vit: 768 for ViT-B/32), or the stem width
	// (resnet: 64 for RN50; stage s has Width*2^s bottleneck channels, 4x that out).
	Width int `json:"width"`
	// Layers is the number of residual attention blocks (vit: 12 for ViT-B/32).
	Layers int `json:"layers,omitempty"`
	// StageBlocks is the number of bottleneck blocks in each of the four stages
	// (resnet: [3,4,6,3] for RN50).
	StageBlocks []int `json:"stage_blocks,omitempty"`
	// Heads is the number of attention heads: of every block (vit; OpenAI uses
	// Width/64, open_clip Width/head_width) or of the attention pool (resnet:
	// Width*32/64).
	Heads int `json:"heads"`
	// MLPRatio sets the MLP hidden width to int(Width*MLPRatio) (vit; 0 means 4, as in
	// every OpenAI model; ViT-bigG-14 uses 4.9231).
	MLPRatio float64 `json:"mlp_ratio,omitempty"`
	// LayerScaleInit, when not 0, multiplies each residual branch by a learned
	// per-channel gain (ls_1.gamma, ls_2.gamma) initialised to it (vit; open_clip's
	// ls_init_value).
	LayerScaleInit float64 `json:"ls_init_value,omitempty"`
}

// TextConfig describes CLIP's text tower. Kind "transformer" (the default and only
// one built in) is OpenAI's causal transformer with end-of-text pooling.
type TextConfig struct {
	// Kind is the tower architecture: "transformer".
	Kind string `json:"kind"`
	// ContextLength is the number of token positions (77).
	ContextLength int `json:"context_length"`
	// VocabSize is the BPE vocabulary size (49408).
	VocabSize int `json:"vocab_size"`
	// Width is the residual stream width (512 for ViT-B/32).
	Width int `json:"width"`
	// Layers is the number of residual attention blocks (12 for ViT-B/32).
	Layers int `json:"layers"`
	// Heads is the number of attention heads (8 for ViT-B/32). Not always Width/64
	// (the fixtures' tiny model has 4 heads of 16), so it is never inferred.
	Heads int `json:"heads"`
	// MLPRatio sets the MLP hidden width to int(Width*MLPRatio) (0 means 4).
	MLPRatio float64 `json:"mlp_ratio,omitempty"`
	// LayerScaleInit is as in VisionConfig.
	LayerScaleInit float64 `json:"ls_init_value,omitempty"`
}

// PreprocessConfig is the image preprocessing a model was trained with (open_clip's
// preprocess_cfg). The zero value means OpenAI's: bicubic resize of the shorter
// side, centre crop, CLIP's mean and std.
type PreprocessConfig struct {
	// Mean and Std normalise each RGB channel after scaling to [0, 1].
	Mean [3]float64 `json:"mean"`
	Std  [3]float64 `json:"std"`
	// Interpolation is the resize filter: "bicubic" (the only one implemented).
	Interpolation string `json:"interpolation,omitempty"`
	// ResizeMode is how the image is fitted: "shortest" (resize the shorter side, then
	// centre crop; the only one implemented).
	ResizeMode string `json:"resize_mode,omitempty"`
}

// Config describes a whole CLIP model: two towers projected into one embedding space.
type Config struct {
	// Name is a human-readable model name such as "ViT-B/32" (informational).
	Name string `json:"name,omitempty"`
	// EmbedDim is the width of the shared image-text embedding space (512 for ViT-B/32).
	EmbedDim int          `json:"embed_dim"`
	Vision   VisionConfig `json:"vision"`
	Text     TextConfig   `json:"text"`
	// QuickGELU selects x*sigmoid(1.702x) as the MLP activation of both towers. OpenAI's
	// weights were trained with it; LAION and DataComp models (open_clip's
	// quick_gelu: false) use exact erf GELU, and the other one gives wrong features.
	QuickGELU bool `json:"quick_gelu"`
	// LayerNormEps is LayerNorm's epsilon (1e-5 in all OpenAI and open_clip models).
	LayerNormEps float32 `json:"layer_norm_eps"`
	// Preprocess is the model's image preprocessing; nil means OpenAI's.
	Preprocess *PreprocessConfig `json:"preprocess,omitempty"`
}

// OpenAIPreprocess is OpenAI's CLIP preprocessing (clip.py's _transform).
var OpenAIPreprocess = PreprocessConfig{
	Mean:          [3]float64{0.48145466, 0.4578275, 0.40821073},
	Std:           [3]float64{0.26862954, 0.26130258, 0.27577711},
	Interpolation: "bicubic", ResizeMode: "shortest",
}

// ImagePreprocess returns the model's preprocessing (OpenAIPreprocess when unset).
func (c Config) ImagePreprocess() PreprocessConfig {
	if c.Preprocess == nil {
		return OpenAIPreprocess
	}
	return *c.Preprocess
}

// Grid is the number of patches along one side of the image (vit).
func (v VisionConfig) Grid() int {
	if v.PatchSize <= 0 {
		return 0
	}
	return v.ImageResolution / v.PatchSize
}

// String describes the tower in a line, by kind: "vit 224px/32, width 768 x 12
// layers, 12 heads" or "resnet 224px, width 64, stages [3 4 6 3], 32 heads".
func (v VisionConfig) String() string {
	if v.Kind == "resnet" {
		return fmt.Sprintf("resnet %dpx, width %d, stages %v, %d heads", v.ImageResolution, v.Width, v.StageBlocks, v.Heads)
	}
	return fmt.Sprintf("%s %dpx/%d, width %d x %d layers, %d heads", v.Kind, v.ImageResolution, v.PatchSize, v.Width, v.Layers, v.Heads)
}

// Tokens is the vit sequence length: one class token plus Grid()^2 patches.
func (v VisionConfig) Tokens() int { return v.Grid()*v.Grid() + 1 }

// mlpWidth is open_clip's int(width * mlp_ratio), with OpenAI's ratio 4 by default.
func mlpWidth(width int, ratio float64) int {
	if ratio == 0 {
		ratio = 4
	}
	return int(float64(width) * ratio)
}

// Sanity bounds: far above every released CLIP (ViT-bigG-14: width 1664, 48 layers;
// RN50x64: 448 px, 36 blocks in a stage), low enough that a corrupt config cannot make
// the key list or the graph explode before a tensor is read.
const (
	maxWidth      = 1 << 14
	maxLayers     = 256
	maxResolution = 4096
	maxContext    = 1 << 14
	maxVocab      = 1 << 22
)

// problems collects a config's faults, each naming its field.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// positive checks that v is in [1, hi].
func (p *problems) positive(field string, v, hi int) {
	if v <= 0 || v > hi {
		p.add("%s %d must be in [1, %d]", field, v, hi)
	}
}

// unused refuses a field that the kind does not read.
func (p *problems) unused(kind, field string, set bool) {
	if set {
		p.add("%s is not a field of a %q tower", field, kind)
	}
}

// Validate reports every inconsistent field of c in one error, naming each; a field
// the tower kind does not use is refused rather than ignored.
func (c Config) Validate() error {
	var p problems
	p.positive("embed_dim", c.EmbedDim, maxWidth)
	if !(c.LayerNormEps > 0) || c.LayerNormEps > 1 {
		p.add("layer_norm_eps %g must be in (0, 1]", c.LayerNormEps)
	}
	vk, ok := visionKinds[c.Vision.Kind]
	if !ok {
		p.add("vision kind %q is not a registered tower kind (%s)", c.Vision.Kind, strings.Join(kindNames(visionKinds), ", "))
	} else if err := vk.Validate(c.Vision); err != nil {
		p.add("%v", err)
	}
	tk, ok := textKinds[c.Text.Kind]
	if !ok {
		p.add("text kind %q is not a registered tower kind (%s)", c.Text.Kind, strings.Join(kindNames(textKinds), ", "))
	} else if err := tk.Validate(c.Text); err != nil {
		p.add("%v", err)
	}
	if pp := c.Preprocess; pp != nil {
		for i := range 3 {
			if !(pp.Std[i] > 0) || math.IsInf(pp.Std[i], 0) || math.IsNaN(pp.Mean[i]) || math.IsInf(pp.Mean[i], 0) {
				p.add("preprocess mean %v and std %v must be finite with std > 0", pp.Mean, pp.Std)
				break
			}
		}
		if pp.Interpolation != "" && pp.Interpolation != "bicubic" {
			p.add("preprocess interpolation %q is not supported (bicubic)", pp.Interpolation)
		}
		if pp.ResizeMode != "" && pp.ResizeMode != "shortest" {
			p.add("preprocess resize_mode %q is not supported (shortest)", pp.ResizeMode)
		}
	}
	if len(p) > 0 {
		return errors.New("layers: invalid config: " + strings.Join(p, "; "))
	}
	return nil
}

// validateTransformer checks the fields of a residual attention stack: the tower's
// prefix names them ("vision", "text").
func validateTransformer(p *problems, prefix string, width, layers, heads int, mlpRatio, lsInit float64) {
	p.positive(prefix+" width", width, maxWidth)
	p.positive(prefix+" layers", layers, maxLayers)
	if heads <= 0 || heads > max(width, 1) {
		p.add("%s heads %d must be in [1, width %d]", prefix, heads, width)
	} else if width > 0 && width%heads != 0 {
		p.add("%s width %d is not divisible by heads %d", prefix, width, heads)
	}
	if mlpRatio < 0 || mlpRatio > 64 || math.IsNaN(mlpRatio) || (mlpRatio > 0 && mlpWidth(width, mlpRatio) < 1) {
		p.add("%s mlp_ratio %g must be in (0, 64]", prefix, mlpRatio)
	}
	if math.IsNaN(lsInit) || math.IsInf(lsInit, 0) {
		p.add("%s ls_init_value %g must be finite", prefix, lsInit)
	}
}

// ParseConfig reads a gorgoclip config (the JSON form of Config, as presets and Save
// write it), refusing unknown fields by name. A vision or text kind left out means
// "vit" and "transformer" (configs written before towers had kinds).
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt or unsupported option must not be dropped
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("layers: config: %w", err)
	}
	if c.Vision.Kind == "" {
		c.Vision.Kind = "vit"
	}
	if c.Text.Kind == "" {
		c.Text.Kind = "transformer"
	}
	return c, c.Validate()
}
