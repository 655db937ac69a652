package weights

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/regfile"
	"github.com/gorgoclip/gorgoclip/layers"
)

// open_clip's hub layout (what open_clip's push_to_hub writes and
// create_model_from_pretrained reads): open_clip_config.json holding
// {"model_cfg": {...}, "preprocess_cfg": {...}} and the state dict, under OpenAI's key
// names, in open_clip_model.safetensors or open_clip_pytorch_model.bin.
const (
	openCLIPConfigFile  = "open_clip_config.json"
	openCLIPSafetensors = "open_clip_model.safetensors"
	openCLIPBin         = "open_clip_pytorch_model.bin"
)

// openCLIPOption is how one open_clip config field is treated: read into the Config
// (set), or accepted only at its default (a value that changes nothing here), or
// accepted at any value (fields that matter only when training).
type openCLIPOption struct {
	def any  // the default, as JSON decodes it (nil: must be absent or null)
	any bool // any value is fine
	set func(c *layers.Config, raw json.RawMessage) error
}

// decodeInto returns a setter that unmarshals the field into the pointer dst(c) picks.
func decodeInto[T any](dst func(c *layers.Config) *T) func(c *layers.Config, raw json.RawMessage) error {
	return func(c *layers.Config, raw json.RawMessage) error { return json.Unmarshal(raw, dst(c)) }
}

// openCLIPTop, openCLIPVision and openCLIPText are every field of open_clip's model
// config, CLIPVisionCfg and CLIPTextCfg (open_clip v2.24, src/open_clip/model.py) that
// gorgoclip knows. Fields read are marked by a setter; the others are accepted only at
// open_clip's default, since any other value selects an architecture gorgoclip does
// not build (an attentional pooler, timm or Hugging Face towers, ...) and ignoring it
// would give wrong features without an error (open_clip issue #771). Unknown fields
// are refused too.
var (
	openCLIPTop = map[string]openCLIPOption{
		"embed_dim":             {set: decodeInto(func(c *layers.Config) *int { return &c.EmbedDim })},
		"quick_gelu":            {set: decodeInto(func(c *layers.Config) *bool { return &c.QuickGELU })},
		"vision_cfg":            {any: true}, // parsed with openCLIPVision
		"text_cfg":              {any: true}, // parsed with openCLIPText
		"custom_text":           {any: true}, // keys under "text."; mapped in openCLIPKeys
		"cast_dtype":            {any: true}, // training precision; weights load as float32
		"init_logit_scale":      {any: true}, // initial value only; the checkpoint holds it
		"init_logit_bias":       {def: nil},  // SigLIP's logit bias
		"multimodal_cfg":        {def: nil},  // CoCa's decoder
		"output_dict":           {any: true}, // a Python return convention
		"nonscalar_logit_scale": {def: false},
	}
	openCLIPVision = map[string]openCLIPOption{
		"image_size": {set: decodeInto(func(c *layers.Config) *int { return &c.Vision.ImageResolution })},
		"layers":     {any: true}, // an int (ViT) or four ints (ResNet): see parseOpenCLIPConfig
		"width":      {set: decodeInto(func(c *layers.Config) *int { return &c.Vision.Width })},
		"head_width": {any: true}, // heads = width / head_width (ViT): see parseOpenCLIPConfig
		"mlp_ratio":  {set: decodeInto(func(c *layers.Config) *float64 { return &c.Vision.MLPRatio })},
		"patch_size": {set: func(c *layers.Config, raw json.RawMessage) error {
			if string(raw) == "null" { // ResNet configs carry "patch_size": null
				return nil
			}
			return json.Unmarshal(raw, &c.Vision.PatchSize)
		}},
		"ls_init_value":         {set: nullable(func(c *layers.Config) *float64 { return &c.Vision.LayerScaleInit })},
		"patch_dropout":         {any: true}, // training only
		"attentional_pool":      {def: false},
		"attn_pooler_queries":   {any: true}, // only read with attentional_pool
		"attn_pooler_heads":     {any: true},
		"no_ln_pre":             {def: false},
		"pos_embed_type":        {def: "learnable"},
		"final_ln_after_pool":   {def: false},
		"pool_type":             {def: "tok"},
		"output_tokens":         {def: false},
		"act_kwargs":            {def: nil},
		"norm_kwargs":           {def: nil},
		"input_patchnorm":       {def: false},
		"global_average_pool":   {def: false},
		"timm_model_name":       {def: nil},
		"timm_model_pretrained": {def: false},
		"timm_pool":             {any: true}, // only read with timm_model_name
		"timm_proj":             {any: true},
		"timm_proj_bias":        {any: true},
		"timm_drop":             {any: true},
		"timm_drop_path":        {any: true},
	}
	openCLIPText = map[string]openCLIPOption{
		"context_length":      {set: decodeInto(func(c *layers.Config) *int { return &c.Text.ContextLength })},
		"vocab_size":          {set: decodeInto(func(c *layers.Config) *int { return &c.Text.VocabSize })},
		"width":               {set: decodeInto(func(c *layers.Config) *int { return &c.Text.Width })},
		"heads":               {set: decodeInto(func(c *layers.Config) *int { return &c.Text.Heads })},
		"layers":              {set: decodeInto(func(c *layers.Config) *int { return &c.Text.Layers })},
		"mlp_ratio":           {set: decodeInto(func(c *layers.Config) *float64 { return &c.Text.MLPRatio })},
		"ls_init_value":       {set: nullable(func(c *layers.Config) *float64 { return &c.Text.LayerScaleInit })},
		"hf_tokenizer_name":   {def: nil},
		"tokenizer_kwargs":    {def: nil},
		"embed_cls":           {def: false},
		"pad_id":              {def: 0.0},
		"no_causal_mask":      {def: false},
		"final_ln_after_pool": {def: false},
		"pool_type":           {def: "argmax"},
		"proj_bias":           {def: false},
		"proj_type":           {def: "linear"},
		"output_tokens":       {def: false},
		"act_kwargs":          {def: nil},
		"norm_kwargs":         {def: nil},
		"hf_model_name":       {def: nil},
		"hf_model_pretrained": {any: true}, // only read with hf_model_name
		"hf_proj_type":        {any: true},
		"hf_pooler_type":      {any: true},
		"proj":                {any: true}, // older name of hf_proj_type
		"pooler_type":         {any: true}, // older name of hf_pooler_type
	}
	openCLIPPreprocess = map[string]openCLIPOption{
		"mean":          {set: decodeInto(func(c *layers.Config) *[3]float64 { return &c.Preprocess.Mean })},
		"std":           {set: decodeInto(func(c *layers.Config) *[3]float64 { return &c.Preprocess.Std })},
		"interpolation": {set: decodeInto(func(c *layers.Config) *string { return &c.Preprocess.Interpolation })},
		"resize_mode":   {set: decodeInto(func(c *layers.Config) *string { return &c.Preprocess.ResizeMode })},
		"size":          {any: true}, // checked against image_size below
		"fill_color":    {any: true}, // only read when resize_mode pads
	}
)

// nullable decodes a number that open_clip writes as null when unset (0 here).
func nullable(dst func(c *layers.Config) *float64) func(c *layers.Config, raw json.RawMessage) error {
	return func(c *layers.Config, raw json.RawMessage) error {
		if string(raw) == "null" {
			return nil
		}
		return json.Unmarshal(raw, dst(c))
	}
}

// applyOptions reads the fields of one config object through table, refusing unknown
// fields and non-default values of fields gorgoclip does not implement, naming each
// by its path. It returns the raw object for the fields the caller reads itself.
func applyOptions(c *layers.Config, path string, raw json.RawMessage, table map[string]openCLIPOption, errs *[]string) map[string]json.RawMessage {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		*errs = append(*errs, fmt.Sprintf("%s: %v", path, err))
		return nil
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := fields[k]
		opt, known := table[k]
		switch {
		case !known:
			*errs = append(*errs, fmt.Sprintf("%s.%s is not an option gorgoclip knows", path, k))
		case opt.set != nil:
			if err := opt.set(c, v); err != nil {
				*errs = append(*errs, fmt.Sprintf("%s.%s: %v", path, k, err))
			}
		case opt.any:
		default:
			var got any
			if err := json.Unmarshal(v, &got); err != nil || !sameJSON(got, opt.def) {
				*errs = append(*errs, fmt.Sprintf("%s.%s = %s is not supported (only %s)", path, k, string(v), jsonString(opt.def)))
			}
		}
	}
	return fields
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// parseOpenCLIPConfig reads open_clip_config.json. vision_cfg.layers as a list means
// a ModifiedResNet (heads = width*32/64, as open_clip's ModifiedResNet); as an int a
// ViT (heads = width / head_width, head_width 64 by default).
func parseOpenCLIPConfig(b []byte) (cfg layers.Config, customText bool, err error) {
	var top struct {
		ModelCfg      json.RawMessage `json:"model_cfg"`
		PreprocessCfg json.RawMessage `json:"preprocess_cfg"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&top); err != nil {
		return cfg, false, err
	}
	if len(top.ModelCfg) == 0 {
		return cfg, false, fmt.Errorf("no model_cfg")
	}
	c := layers.Config{LayerNormEps: 1e-5, Preprocess: &layers.PreprocessConfig{},
		Vision: layers.VisionConfig{Kind: "vit", ImageResolution: 224, PatchSize: 16},
		Text:   layers.TextConfig{Kind: "transformer", ContextLength: 77, VocabSize: 49408, Width: 512, Heads: 8, Layers: 12}}
	*c.Preprocess = layers.OpenAIPreprocess
	var errs []string
	model := applyOptions(&c, "model_cfg", top.ModelCfg, openCLIPTop, &errs)
	if model == nil {
		return c, false, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	if raw, ok := model["custom_text"]; ok {
		_ = json.Unmarshal(raw, &customText)
	}
	if raw, ok := model["vision_cfg"]; ok {
		vision := applyOptions(&c, "model_cfg.vision_cfg", raw, openCLIPVision, &errs)
		var stages []int
		switch l := vision["layers"]; {
		case l == nil:
			errs = append(errs, "model_cfg.vision_cfg.layers is missing")
		case json.Unmarshal(l, &c.Vision.Layers) == nil:
			headWidth := 64
			if hw, ok := vision["head_width"]; ok {
				if err := json.Unmarshal(hw, &headWidth); err != nil || headWidth <= 0 {
					errs = append(errs, fmt.Sprintf("model_cfg.vision_cfg.head_width %s must be a positive int", string(hw)))
					headWidth = 64
				}
			}
			if c.Vision.Width%headWidth != 0 {
				errs = append(errs, fmt.Sprintf("model_cfg.vision_cfg.width %d is not a multiple of head_width %d", c.Vision.Width, headWidth))
			}
			c.Vision.Heads = c.Vision.Width / headWidth
		case json.Unmarshal(l, &stages) == nil:
			c.Vision = layers.VisionConfig{Kind: "resnet", ImageResolution: c.Vision.ImageResolution, Width: c.Vision.Width,
				StageBlocks: stages, Heads: c.Vision.Width * 32 / 64}
			for _, k := range []string{"head_width", "mlp_ratio", "ls_init_value"} {
				if _, ok := vision[k]; ok {
					errs = append(errs, fmt.Sprintf("model_cfg.vision_cfg.%s is not an option of a ResNet (layers %v)", k, stages))
				}
			}
		default:
			errs = append(errs, fmt.Sprintf("model_cfg.vision_cfg.layers %s: want an int (ViT) or four ints (ResNet)", string(l)))
		}
	}
	if raw, ok := model["text_cfg"]; ok {
		applyOptions(&c, "model_cfg.text_cfg", raw, openCLIPText, &errs)
	}
	if len(top.PreprocessCfg) > 0 {
		pre := applyOptions(&c, "preprocess_cfg", top.PreprocessCfg, openCLIPPreprocess, &errs)
		if raw, ok := pre["size"]; ok {
			var side int
			var hw []int
			if json.Unmarshal(raw, &side) == nil {
				hw = []int{side, side}
			} else if json.Unmarshal(raw, &hw) != nil || len(hw) != 2 {
				errs = append(errs, fmt.Sprintf("preprocess_cfg.size %s: want an int or [h, w]", string(raw)))
			}
			if len(hw) == 2 && (hw[0] != c.Vision.ImageResolution || hw[1] != c.Vision.ImageResolution) {
				errs = append(errs, fmt.Sprintf("preprocess_cfg.size %v differs from the model's square image_size %d", hw, c.Vision.ImageResolution))
			}
		}
	}
	if len(errs) > 0 {
		return c, customText, fmt.Errorf("unsupported open_clip config: %s", strings.Join(errs, "; "))
	}
	return c, customText, nil
}

// loadOpenCLIP reads an open_clip hub directory (open_clip_config.json present).
func loadOpenCLIP(dir string, o *options) (*Checkpoint, error) {
	cfgPath := filepath.Join(dir, openCLIPConfigFile)
	b, err := regfile.ReadFile(cfgPath, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %w", err)
	}
	c, customText, err := parseOpenCLIPConfig(b)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", cfgPath, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", cfgPath, err)
	}
	ck := &Checkpoint{Config: c, Dir: dir, Format: FormatOpenCLIP}
	want, err := o.expect(c)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", cfgPath, err)
	}
	if customText { // the file's keys, before openCLIPKeys maps them back
		shapes, skip, convert := map[string][]int{}, want.Skip, want.Convert
		for k, s := range want.Shapes {
			if !strings.HasPrefix(k, "visual.") && k != "logit_scale" {
				k = "text." + k
			}
			shapes[k] = s
		}
		want = &Expect{Shapes: shapes, Skip: func(k string) bool { return skip(strings.TrimPrefix(k, "text.")) }}
		if convert != nil {
			want.Convert = func(k string, t *Tensor) error { return convert(strings.TrimPrefix(k, "text."), t) }
		}
	}
	var source string
	var tensors map[string]*Tensor
	switch {
	case isFile(filepath.Join(dir, openCLIPSafetensors)):
		source = filepath.Join(dir, openCLIPSafetensors)
		tensors, err = ReadSafetensors(source, want)
	case isFile(filepath.Join(dir, openCLIPBin)):
		source = filepath.Join(dir, openCLIPBin)
		tensors, err = ReadTorchZip(source, want)
	default:
		return nil, fmt.Errorf("loaders: weights: %s: %s but neither %s nor %s", dir, openCLIPConfigFile, openCLIPSafetensors, openCLIPBin)
	}
	if err != nil {
		return nil, err
	}
	ck.Tensors = openCLIPKeys(tensors, customText)
	if err := Validate(c, ck.Tensors); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", source, err)
	}
	return ck, canonicalShapes(c, ck.Tensors)
}

// openCLIPKeys maps open_clip's state dict to OpenAI's keys: they are the same, except
// that a CustomTextCLIP (custom_text: true) keeps its text tower under "text.", and
// entries that are never weights (BatchNorm counters) are dropped.
func openCLIPKeys(t map[string]*Tensor, customText bool) map[string]*Tensor {
	out := make(map[string]*Tensor, len(t))
	for k, v := range t {
		if skipEntry(k) {
			continue
		}
		if customText {
			if rest, ok := strings.CutPrefix(k, "text."); ok {
				k = rest
			}
		}
		out[k] = v
	}
	return out
}
