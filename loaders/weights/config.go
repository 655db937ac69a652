package weights

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gorgoclip/gorgoclip/layers"
)

// configKind says which of the three config.json dialects a file is written in.
type configKind int

const (
	configNone      configKind = iota // no config.json
	configOpenAI                      // OpenAI's build_model arguments (vision_width, ...)
	configGorgoclip                   // layers.Config JSON ("vision" and "text" objects)
	configHF                          // Hugging Face CLIPConfig (vision_config, text_config)
)

// readConfigFile reads dir/config.json and says which dialect it is; configNone when
// the file does not exist.
func readConfigFile(dir string) (configKind, []byte, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return configNone, nil, nil
	}
	if err != nil {
		return configNone, nil, fmt.Errorf("loaders: weights: %w", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return configNone, nil, fmt.Errorf("loaders: weights: %s: %v", path, err)
	}
	has := func(k string) bool { _, ok := keys[k]; return ok }
	switch {
	case has("vision") && has("text"):
		return configGorgoclip, b, nil
	case has("vision_config") || has("text_config") || has("vision_config_dict") ||
		has("text_config_dict") || has("projection_dim") || has("model_type"):
		return configHF, b, nil
	case has("vision_width") || has("transformer_width") || has("embed_dim"):
		return configOpenAI, b, nil
	}
	return configNone, nil, fmt.Errorf("loaders: weights: %s: not a CLIP config "+
		"(expected OpenAI keys such as vision_width, Hugging Face vision_config/text_config, or gorgoclip vision/text)", path)
}

// parseConfig turns config.json of the given kind into a layers.Config.
func parseConfig(kind configKind, b []byte, path string) (layers.Config, error) {
	var c layers.Config
	var err error
	switch kind {
	case configOpenAI:
		var oc openAIConfig
		if err = json.Unmarshal(b, &oc); err == nil {
			c = oc.config()
		}
	case configGorgoclip:
		err = json.Unmarshal(b, &c)
	case configHF:
		c, err = parseHFConfig(b)
	default:
		err = fmt.Errorf("unknown config dialect")
	}
	if err != nil {
		return c, fmt.Errorf("loaders: weights: %s: %v", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("loaders: weights: %s: %w", path, err)
	}
	return c, nil
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
	// build_model's rule, used only when the file does not say: heads = width/64.
	if c.Vision.Heads == 0 {
		c.Vision.Heads = c.Vision.Width / 64
	}
	if c.Text.Heads == 0 {
		c.Text.Heads = c.Text.Width / 64
	}
	if o.QuickGELU != nil {
		c.QuickGELU = *o.QuickGELU
	}
	return c
}

// hfTower holds the fields of CLIPTextConfig and CLIPVisionConfig that fix the weights'
// shapes or the maths. Fields absent from the file keep the defaults set before
// unmarshalling.
type hfTower struct {
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	HiddenAct             string  `json:"hidden_act"`
	LayerNormEps          float64 `json:"layer_norm_eps"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"` // text only
	VocabSize             int     `json:"vocab_size"`              // text only
	ImageSize             int     `json:"image_size"`              // vision only
	PatchSize             int     `json:"patch_size"`              // vision only
	NumChannels           int     `json:"num_channels"`            // vision only
}

// hfTextDefaults and hfVisionDefaults are the defaults of transformers'
// CLIPTextConfig and CLIPVisionConfig (configuration_clip.py); together with
// projection_dim 512 they reproduce openai/clip-vit-base-patch32, so older config
// files that omit fields mean ViT-B/32 values.
var (
	hfTextDefaults = hfTower{HiddenSize: 512, IntermediateSize: 2048, NumHiddenLayers: 12,
		NumAttentionHeads: 8, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		MaxPositionEmbeddings: 77, VocabSize: 49408}
	hfVisionDefaults = hfTower{HiddenSize: 768, IntermediateSize: 3072, NumHiddenLayers: 12,
		NumAttentionHeads: 12, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		ImageSize: 224, PatchSize: 32, NumChannels: 3}
)

// parseHFConfig reads a Hugging Face CLIPConfig. Very old files carry the towers as
// text_config_dict/vision_config_dict; as in CLIPConfig.__init__, those override
// text_config/vision_config.
func parseHFConfig(b []byte) (layers.Config, error) {
	var raw struct {
		ProjectionDim    *int            `json:"projection_dim"`
		TextConfig       json.RawMessage `json:"text_config"`
		TextConfigDict   json.RawMessage `json:"text_config_dict"`
		VisionConfig     json.RawMessage `json:"vision_config"`
		VisionConfigDict json.RawMessage `json:"vision_config_dict"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return layers.Config{}, err
	}
	text, vision := hfTextDefaults, hfVisionDefaults
	for _, p := range []struct {
		dst  *hfTower
		name string
		msgs []json.RawMessage
	}{
		{&text, "text_config", []json.RawMessage{raw.TextConfig, raw.TextConfigDict}},
		{&vision, "vision_config", []json.RawMessage{raw.VisionConfig, raw.VisionConfigDict}},
	} {
		for _, m := range p.msgs {
			if len(m) == 0 || string(m) == "null" {
				continue
			}
			if err := json.Unmarshal(m, p.dst); err != nil {
				return layers.Config{}, fmt.Errorf("%s: %v", p.name, err)
			}
		}
	}
	c := layers.Config{EmbedDim: 512,
		Vision: layers.VisionConfig{ImageResolution: vision.ImageSize, PatchSize: vision.PatchSize,
			Width: vision.HiddenSize, Layers: vision.NumHiddenLayers, Heads: vision.NumAttentionHeads},
		Text: layers.TextConfig{ContextLength: text.MaxPositionEmbeddings, VocabSize: text.VocabSize,
			Width: text.HiddenSize, Layers: text.NumHiddenLayers, Heads: text.NumAttentionHeads},
		LayerNormEps: float32(vision.LayerNormEps),
	}
	if raw.ProjectionDim != nil {
		c.EmbedDim = *raw.ProjectionDim
	}
	// What layers.Config cannot express is refused rather than silently changed.
	var errs []string
	if text.HiddenAct != vision.HiddenAct {
		errs = append(errs, fmt.Sprintf("text hidden_act %q differs from vision hidden_act %q", text.HiddenAct, vision.HiddenAct))
	}
	switch vision.HiddenAct {
	case "quick_gelu":
		c.QuickGELU = true
	case "gelu":
		c.QuickGELU = false
	default:
		errs = append(errs, fmt.Sprintf("hidden_act %q is not supported (quick_gelu or gelu)", vision.HiddenAct))
	}
	if text.LayerNormEps != vision.LayerNormEps {
		errs = append(errs, fmt.Sprintf("text layer_norm_eps %g differs from vision layer_norm_eps %g", text.LayerNormEps, vision.LayerNormEps))
	}
	if text.IntermediateSize != 4*text.HiddenSize {
		errs = append(errs, fmt.Sprintf("text intermediate_size %d is not 4*hidden_size %d", text.IntermediateSize, 4*text.HiddenSize))
	}
	if vision.IntermediateSize != 4*vision.HiddenSize {
		errs = append(errs, fmt.Sprintf("vision intermediate_size %d is not 4*hidden_size %d", vision.IntermediateSize, 4*vision.HiddenSize))
	}
	if vision.NumChannels != 3 {
		errs = append(errs, fmt.Sprintf("vision num_channels %d is not 3", vision.NumChannels))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("unsupported CLIPConfig: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// inferConfig derives the architecture from the tensors' shapes as OpenAI's
// clip/model.py build_model does: widths from conv1 and ln_final, patch from conv1's
// kernel, grid from the positional embedding, layer counts from resblock keys, heads =
// width/64 for both towers. The text tower of some models has other head counts: give
// a config.json for those.
func inferConfig(tensors map[string]*Tensor) (layers.Config, error) {
	need := []string{"visual.conv1.weight", "visual.positional_embedding", "text_projection",
		"positional_embedding", "token_embedding.weight", "ln_final.weight"}
	var missing []string
	for _, k := range need {
		if _, ok := tensors[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return layers.Config{}, fmt.Errorf("cannot infer the config without config.json: missing %s", strings.Join(missing, ", "))
	}
	shapeErr := func(k string, want string) error {
		return fmt.Errorf("cannot infer the config: %s has shape %v, want %s", k, tensors[k].Shape, want)
	}
	conv := tensors["visual.conv1.weight"].Shape
	if len(conv) != 4 || conv[2] != conv[3] {
		return layers.Config{}, shapeErr("visual.conv1.weight", "[width 3 patch patch]")
	}
	vpos := tensors["visual.positional_embedding"].Shape
	if len(vpos) != 2 || vpos[0] < 2 {
		return layers.Config{}, shapeErr("visual.positional_embedding", "[grid*grid+1 width]")
	}
	grid := int(math.Round(math.Sqrt(float64(vpos[0] - 1))))
	if grid*grid != vpos[0]-1 {
		return layers.Config{}, shapeErr("visual.positional_embedding", "[grid*grid+1 width]")
	}
	for _, k := range []string{"text_projection", "positional_embedding", "token_embedding.weight"} {
		if len(tensors[k].Shape) != 2 {
			return layers.Config{}, shapeErr(k, "2 dimensions")
		}
	}
	if len(tensors["ln_final.weight"].Shape) != 1 {
		return layers.Config{}, shapeErr("ln_final.weight", "[width]")
	}
	c := layers.Config{
		EmbedDim: tensors["text_projection"].Shape[1], QuickGELU: true, LayerNormEps: 1e-5,
		Vision: layers.VisionConfig{ImageResolution: conv[3] * grid, PatchSize: conv[3], Width: conv[0],
			Layers: countBlocks(tensors, "visual.transformer.resblocks."), Heads: conv[0] / 64},
		Text: layers.TextConfig{ContextLength: tensors["positional_embedding"].Shape[0],
			VocabSize: tensors["token_embedding.weight"].Shape[0], Width: tensors["ln_final.weight"].Shape[0],
			Layers: countBlocks(tensors, "transformer.resblocks.")},
	}
	c.Text.Heads = c.Text.Width / 64
	return c, nil
}

// countBlocks counts the distinct block indices under prefix ("...resblocks.").
func countBlocks(tensors map[string]*Tensor, prefix string) int {
	seen := map[int]bool{}
	for k := range tensors {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		idx, _, _ := strings.Cut(rest, ".")
		if i, err := strconv.Atoi(idx); err == nil {
			seen[i] = true
		}
	}
	return len(seen)
}
