package weights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/regfile"
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

// maxConfigBytes bounds a config file (a real one is a few kB): a link to /dev/zero or
// a huge file is refused before it is read, and a FIFO is refused unopened.
const maxConfigBytes = 4 << 20

// readConfigFile reads dir/config.json and says which dialect it is; configNone when
// the file does not exist.
func readConfigFile(dir string) (configKind, []byte, error) {
	path := filepath.Join(dir, "config.json")
	b, err := regfile.ReadFile(path, maxConfigBytes)
	if errors.Is(err, fs.ErrNotExist) {
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
		c, err = parseOpenAIConfig(b)
	case configGorgoclip:
		c, err = layers.ParseConfig(b)
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

// openAIConfig is config.json as OpenAI's build_model arguments (the fixture layout),
// plus vision_heads and quick_gelu. Pointers tell a field left out (its value then
// follows build_model's rules) from one given, which is used as it is.
type openAIConfig struct {
	EmbedDim          int             `json:"embed_dim"`
	ImageResolution   int             `json:"image_resolution"`
	VisionLayers      json.RawMessage `json:"vision_layers"` // an int (ViT) or four ints (ResNet)
	VisionWidth       int             `json:"vision_width"`
	VisionPatchSize   *int            `json:"vision_patch_size"`
	VisionHeads       *int            `json:"vision_heads"`
	ContextLength     int             `json:"context_length"`
	VocabSize         int             `json:"vocab_size"`
	TransformerWidth  int             `json:"transformer_width"`
	TransformerHeads  *int            `json:"transformer_heads"`
	TransformerLayers int             `json:"transformer_layers"`
	QuickGELU         *bool           `json:"quick_gelu"`
}

// parseOpenAIConfig reads OpenAI's build_model arguments, refusing unknown fields by
// name. vision_layers as a list means ModifiedResNet, as in OpenAI's CLIP class.
func parseOpenAIConfig(b []byte) (layers.Config, error) {
	var o openAIConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return layers.Config{}, err
	}
	c := layers.Config{EmbedDim: o.EmbedDim, QuickGELU: true, LayerNormEps: 1e-5,
		Vision: layers.VisionConfig{Kind: "vit", ImageResolution: o.ImageResolution, Width: o.VisionWidth},
		Text: layers.TextConfig{Kind: "transformer", ContextLength: o.ContextLength, VocabSize: o.VocabSize,
			Width: o.TransformerWidth, Layers: o.TransformerLayers, Heads: o.TransformerWidth / 64}}
	var stages []int
	switch {
	case json.Unmarshal(o.VisionLayers, &c.Vision.Layers) == nil:
		c.Vision.Kind = "vit"
		c.Vision.Heads = c.Vision.Width / 64 // build_model's rule
		if o.VisionPatchSize != nil {
			c.Vision.PatchSize = *o.VisionPatchSize
		}
	case json.Unmarshal(o.VisionLayers, &stages) == nil:
		c.Vision.Kind, c.Vision.StageBlocks = "resnet", stages
		c.Vision.Heads = c.Vision.Width * 32 / 64 // build_model's rule for the attention pool
		if o.VisionPatchSize != nil {
			return c, fmt.Errorf("vision_patch_size %d: a ResNet (vision_layers %v) has no patches", *o.VisionPatchSize, stages)
		}
	default:
		return c, fmt.Errorf("vision_layers %s: want an int (ViT) or a list of four ints (ResNet)", string(o.VisionLayers))
	}
	if o.VisionHeads != nil {
		c.Vision.Heads = *o.VisionHeads // 0 is refused by Validate, not replaced
	}
	if o.TransformerHeads != nil {
		c.Text.Heads = *o.TransformerHeads
	}
	if o.QuickGELU != nil {
		c.QuickGELU = *o.QuickGELU
	}
	return c, nil
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
		Vision: layers.VisionConfig{Kind: "vit", ImageResolution: vision.ImageSize, PatchSize: vision.PatchSize,
			Width: vision.HiddenSize, Layers: vision.NumHiddenLayers, Heads: vision.NumAttentionHeads,
			MLPRatio: hfMLPRatio(vision)},
		Text: layers.TextConfig{Kind: "transformer", ContextLength: text.MaxPositionEmbeddings, VocabSize: text.VocabSize,
			Width: text.HiddenSize, Layers: text.NumHiddenLayers, Heads: text.NumAttentionHeads, MLPRatio: hfMLPRatio(text)},
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
	for _, t := range []struct {
		name  string
		tower hfTower
	}{{"text", text}, {"vision", vision}} {
		if t.tower.IntermediateSize <= 0 {
			errs = append(errs, fmt.Sprintf("%s intermediate_size %d must be positive", t.name, t.tower.IntermediateSize))
		}
	}
	if vision.NumChannels != 3 {
		errs = append(errs, fmt.Sprintf("vision num_channels %d is not 3", vision.NumChannels))
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("unsupported CLIPConfig: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// hfMLPRatio is intermediate_size / hidden_size, or 0 (layers.Config's default, 4)
// when that is 4 or hidden_size is not set.
func hfMLPRatio(t hfTower) float64 {
	if t.HiddenSize <= 0 || t.IntermediateSize == 4*t.HiddenSize {
		return 0
	}
	r := float64(t.IntermediateSize) / float64(t.HiddenSize)
	if int(float64(t.HiddenSize)*r) != t.IntermediateSize { // rounded down: aim mid-integer
		r = (float64(t.IntermediateSize) + 0.5) / float64(t.HiddenSize)
	}
	return r
}

// inferConfig derives the architecture from the tensors' shapes as OpenAI's
// clip/model.py build_model does. ViT (visual.proj present): widths from conv1 and
// ln_final, patch from conv1's kernel, grid from the positional embedding, block
// counts from the resblock keys. ResNet (visual.attnpool present): blocks per stage
// from the layerN.M keys, width from layer1.0.conv1, resolution 32x the attention
// pool's grid. Heads are width/64 for the text tower and the ViT, width*32/64 for the
// attention pool: the text tower of some models has other head counts, so give a
// config.json for those.
func inferConfig(tensors map[string]*Tensor) (layers.Config, error) {
	resnet := tensors["visual.attnpool.positional_embedding"] != nil
	need := []string{"text_projection", "positional_embedding", "token_embedding.weight", "ln_final.weight"}
	if resnet {
		need = append(need, "visual.layer1.0.conv1.weight")
	} else {
		need = append(need, "visual.conv1.weight", "visual.positional_embedding")
	}
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
	for _, k := range []string{"text_projection", "positional_embedding", "token_embedding.weight"} {
		if len(tensors[k].Shape) != 2 {
			return layers.Config{}, shapeErr(k, "2 dimensions")
		}
	}
	if len(tensors["ln_final.weight"].Shape) != 1 {
		return layers.Config{}, shapeErr("ln_final.weight", "[width]")
	}
	// grid reads [grid*grid+1, width] positional embeddings.
	grid := func(k string) (int, error) {
		s := tensors[k].Shape
		if len(s) != 2 || s[0] < 2 {
			return 0, shapeErr(k, "[grid*grid+1 width]")
		}
		g := int(math.Round(math.Sqrt(float64(s[0] - 1))))
		if g*g != s[0]-1 {
			return 0, shapeErr(k, "[grid*grid+1 width]")
		}
		return g, nil
	}
	c := layers.Config{EmbedDim: tensors["text_projection"].Shape[1], QuickGELU: true, LayerNormEps: 1e-5,
		Text: layers.TextConfig{Kind: "transformer", ContextLength: tensors["positional_embedding"].Shape[0],
			VocabSize: tensors["token_embedding.weight"].Shape[0], Width: tensors["ln_final.weight"].Shape[0],
			Layers: countBlocks(tensors, "transformer.resblocks.")},
	}
	c.Text.Heads = c.Text.Width / 64
	if resnet {
		g, err := grid("visual.attnpool.positional_embedding")
		if err != nil {
			return c, err
		}
		w := tensors["visual.layer1.0.conv1.weight"].Shape
		if len(w) != 4 {
			return c, shapeErr("visual.layer1.0.conv1.weight", "[width width 1 1]")
		}
		c.Vision = layers.VisionConfig{Kind: "resnet", ImageResolution: 32 * g, Width: w[0], Heads: w[0] * 32 / 64}
		for i := 1; i <= 4; i++ {
			c.Vision.StageBlocks = append(c.Vision.StageBlocks, countBlocks(tensors, fmt.Sprintf("visual.layer%d.", i)))
		}
		return c, nil
	}
	conv := tensors["visual.conv1.weight"].Shape
	if len(conv) != 4 || conv[2] != conv[3] {
		return c, shapeErr("visual.conv1.weight", "[width 3 patch patch]")
	}
	g, err := grid("visual.positional_embedding")
	if err != nil {
		return c, err
	}
	c.Vision = layers.VisionConfig{Kind: "vit", ImageResolution: conv[3] * g, PatchSize: conv[3], Width: conv[0],
		Layers: countBlocks(tensors, "visual.transformer.resblocks."), Heads: conv[0] / 64}
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
