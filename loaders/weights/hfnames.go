package weights

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gorgoclip/gorgoclip/layers"
)

// op is what a Hugging Face tensor goes through to become an OpenAI one.
type op int

const (
	asIs      op = iota // same values, same shape
	transpose           // 2-D [out, in] -> [in, out]
	qkvPart             // one third, along dim 0, of an OpenAI in_proj tensor
)

// nameRule is one row of hfNames. In the patterns {i} is a block index and {param}
// is "weight" or "bias", and both carry over to the OpenAI name.
type nameRule struct {
	HF, OpenAI string
	Op         op
	Part       int // qkvPart only: 0 q, 1 k, 2 v (nn.MultiheadAttention's order in in_proj)
	Why        string

	hfRE, oaRE *regexp.Regexp
	hfTmpl     string // HF with ${i}/${param}, for regexp.Expand
	oaTmpl     string
}

// Reasons shared by many rows.
const (
	whyRename = "same tensor; HF's module names differ from OpenAI's"
	whyQKV    = "HF splits nn.MultiheadAttention's packed in_proj into q/k/v nn.Linear; OpenAI keeps one [3W, W] in_proj (rows q;k;v), so the three are concatenated along dim 0 in that order"
	whyProj   = "HF stores an nn.Linear weight [out, in] (y = x W^T); OpenAI a bare parameter [in, out] used as x @ P, so the matrix is transposed"
)

// hfNames maps every tensor of transformers' CLIPModel to OpenAI's state dict, with the
// transform and the reason. It is the single source of truth for the renaming: the
// converter (FromHF) and the expected HF shapes (ExpectedHFShapes) both derive from it.
var hfNames = compileRules(slices.Concat(
	[]nameRule{
		{HF: "logit_scale", OpenAI: "logit_scale", Op: asIs, Why: "same scalar parameter, same name"},

		// Text tower.
		{HF: "text_model.embeddings.token_embedding.weight", OpenAI: "token_embedding.weight", Op: asIs, Why: whyRename},
		{HF: "text_model.embeddings.position_embedding.weight", OpenAI: "positional_embedding", Op: asIs,
			Why: "HF wraps the [L, W] table in an nn.Embedding (hence .weight); OpenAI holds the bare parameter"},
		{HF: "text_model.final_layer_norm.{param}", OpenAI: "ln_final.{param}", Op: asIs, Why: whyRename},
		{HF: "text_projection.weight", OpenAI: "text_projection", Op: transpose, Why: whyProj},

		// Vision tower.
		{HF: "vision_model.embeddings.class_embedding", OpenAI: "visual.class_embedding", Op: asIs, Why: whyRename},
		{HF: "vision_model.embeddings.patch_embedding.weight", OpenAI: "visual.conv1.weight", Op: asIs,
			Why: "both are the bias-free nn.Conv2d [W, 3, P, P]"},
		{HF: "vision_model.embeddings.position_embedding.weight", OpenAI: "visual.positional_embedding", Op: asIs,
			Why: "HF wraps the [G*G+1, W] table in an nn.Embedding; OpenAI holds the bare parameter"},
		{HF: "vision_model.pre_layrnorm.{param}", OpenAI: "visual.ln_pre.{param}", Op: asIs,
			Why: "HF's misspelling (pre_layrnorm) is kept in its checkpoints, so it is matched as written"},
		{HF: "vision_model.post_layernorm.{param}", OpenAI: "visual.ln_post.{param}", Op: asIs, Why: whyRename},
		{HF: "visual_projection.weight", OpenAI: "visual.proj", Op: transpose, Why: whyProj},
	},
	blockRules("text_model.encoder.layers.{i}.", "transformer.resblocks.{i}."),
	blockRules("vision_model.encoder.layers.{i}.", "visual.transformer.resblocks.{i}."),
))

// blockRules are the rows of one tower's residual blocks, the same in both towers but
// for the prefixes: HF's encoder layer hf, OpenAI's resblock oa.
func blockRules(hf, oa string) []nameRule {
	return []nameRule{
		{HF: hf + "self_attn.q_proj.{param}", OpenAI: oa + "attn.in_proj_{param}", Op: qkvPart, Part: 0, Why: whyQKV},
		{HF: hf + "self_attn.k_proj.{param}", OpenAI: oa + "attn.in_proj_{param}", Op: qkvPart, Part: 1, Why: whyQKV},
		{HF: hf + "self_attn.v_proj.{param}", OpenAI: oa + "attn.in_proj_{param}", Op: qkvPart, Part: 2, Why: whyQKV},
		{HF: hf + "self_attn.out_proj.{param}", OpenAI: oa + "attn.out_proj.{param}", Op: asIs,
			Why: "both are nn.Linear [out, in]: only the path differs"},
		{HF: hf + "layer_norm1.{param}", OpenAI: oa + "ln_1.{param}", Op: asIs, Why: whyRename},
		{HF: hf + "layer_norm2.{param}", OpenAI: oa + "ln_2.{param}", Op: asIs, Why: whyRename},
		{HF: hf + "mlp.fc1.{param}", OpenAI: oa + "mlp.c_fc.{param}", Op: asIs,
			Why: "both are nn.Linear [4W, W]: only the name differs"},
		{HF: hf + "mlp.fc2.{param}", OpenAI: oa + "mlp.c_proj.{param}", Op: asIs,
			Why: "both are nn.Linear [W, 4W]: only the name differs"},
	}
}

// hfIgnored matches HF keys that are not weights: the position_ids buffers (int64
// arange(L)) older transformers versions saved with the model; OpenAI computes none.
var hfIgnored = regexp.MustCompile(`^(text_model|vision_model)\.embeddings\.position_ids$`)

func compileRules(rules []nameRule) []nameRule {
	pattern := func(s string) *regexp.Regexp {
		q := regexp.QuoteMeta(s)
		q = strings.ReplaceAll(q, `\{i\}`, `(?P<i>\d+)`)
		q = strings.ReplaceAll(q, `\{param\}`, `(?P<param>weight|bias)`)
		return regexp.MustCompile("^" + q + "$")
	}
	tmpl := strings.NewReplacer("{i}", "${i}", "{param}", "${param}")
	for i := range rules {
		r := &rules[i]
		r.hfRE, r.oaRE = pattern(r.HF), pattern(r.OpenAI)
		r.hfTmpl, r.oaTmpl = tmpl.Replace(r.HF), tmpl.Replace(r.OpenAI)
	}
	return rules
}

// hfRule returns the rule matching HF key k and the OpenAI key it becomes.
func hfRule(k string) (*nameRule, string) {
	for i := range hfNames {
		r := &hfNames[i]
		if m := r.hfRE.FindStringSubmatchIndex(k); m != nil {
			return r, string(r.hfRE.ExpandString(nil, r.oaTmpl, k, m))
		}
	}
	return nil, ""
}

// ExpectedHFShapes returns every tensor name of a Hugging Face CLIPModel with config c
// and its shape, derived from ExpectedShapes through the name table.
func ExpectedHFShapes(c layers.Config) (map[string][]int, error) {
	if c.Vision.Kind != "vit" || c.Text.Kind != "transformer" {
		return nil, fmt.Errorf("Hugging Face's CLIPModel has ViT image towers only, not %q", c.Vision.Kind)
	}
	shapes, err := ExpectedShapes(c)
	if err != nil {
		return nil, err
	}
	out := map[string][]int{}
	for k, s := range shapes {
		for i := range hfNames {
			r := &hfNames[i]
			m := r.oaRE.FindStringSubmatchIndex(k)
			if m == nil {
				continue
			}
			hs := append([]int{}, s...)
			switch r.Op {
			case transpose:
				hs[0], hs[1] = s[1], s[0]
			case qkvPart:
				hs[0] = s[0] / 3
			}
			out[string(r.oaRE.ExpandString(nil, r.hfTmpl, k, m))] = hs
		}
	}
	return out, nil
}

// FromHF converts Hugging Face CLIPModel tensors into OpenAI's state dict for config
// c. It first checks hf against ExpectedHFShapes and reports every missing, unknown and
// mis-shaped tensor by its Hugging Face name in one error; position_ids buffers are
// ignored. hf's tensors are not modified; as-is tensors are shared, not copied.
func FromHF(c layers.Config, hf map[string]*Tensor) (map[string]*Tensor, error) {
	return fromHF(c, hf, nil)
}

// fromHF is FromHF taking the tensors in done (hfAssembly's, under their OpenAI keys)
// as they are rather than transposing or concatenating them again. A non-nil done must
// hold every such tensor: Load converts nothing after fromHF.
func fromHF(c layers.Config, hf, done map[string]*Tensor) (map[string]*Tensor, error) {
	want, err := ExpectedHFShapes(c)
	if err != nil {
		return nil, err
	}
	if err := compare(want, hf, hfIgnored.MatchString); err != nil {
		return nil, fmt.Errorf("Hugging Face names: %w", err)
	}
	out := map[string]*Tensor{}
	for k, t := range hf {
		if hfIgnored.MatchString(k) {
			continue
		}
		r, oa := hfRule(k)
		if r == nil { // unreachable after compare; kept so a table bug cannot panic
			return nil, fmt.Errorf("Hugging Face names: no rule for %s", k)
		}
		if r.Op != asIs && done != nil {
			d, ok := done[oa]
			if !ok { // unreachable after compare: hfAssembly.read assembles every well-shaped one
				return nil, fmt.Errorf("Hugging Face names: %s was not assembled as it was read", k)
			}
			out[oa] = d
			continue
		}
		if t.Half != nil && r.Op != asIs {
			return nil, fmt.Errorf("Hugging Face names: %s is 16-bit: only float32 tensors are transposed or concatenated", k)
		}
		switch r.Op {
		case asIs:
			out[oa] = t
		case transpose:
			out[oa] = transpose2D(t)
		case qkvPart:
			dst, ok := out[oa]
			if !ok {
				shape := append([]int{}, t.Shape...)
				shape[0] *= 3
				dst = &Tensor{Shape: shape, Data: make([]float32, 3*len(t.Data))}
				out[oa] = dst
			}
			copy(dst.Data[r.Part*len(t.Data):], t.Data)
		}
	}
	if err := Validate(c, out); err != nil { // a safety net for the table itself
		return nil, fmt.Errorf("after renaming: %w", err)
	}
	return out, nil
}

// transpose2D returns the [cols, rows] transpose of a 2-D tensor.
func transpose2D(t *Tensor) *Tensor {
	r, c := t.Shape[0], t.Shape[1]
	out := &Tensor{Shape: []int{c, r}, Data: make([]float32, len(t.Data))}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out.Data[j*r+i] = t.Data[i*c+j]
		}
	}
	return out
}

// hfAssembly converts, as they are read, the tensors OpenAI's layout takes from a
// Hugging Face checkpoint (read is the reader's Expect.Convert; done holds the
// results under their OpenAI keys). It applies ConvertEach's convert, when there is
// one, at once to a tensor OpenAI's layout takes as it is, to a projection once
// transposed, and to a block's in_proj as soon as the last of its q, k and v is read.
// The Hugging Face tensor then views the values it became instead of holding its own,
// so no tensor is ever in memory twice, and a 16-bit model holds the float32 parts of
// one block at a time rather than all of them until the end (for ViT-B/32, 120 MB and
// as much again for the concatenations). The views, in the wrong order for their
// Hugging Face shape, live in the reader's map only while Load runs, alongside done;
// fromHF takes done's tensors.
type hfAssembly struct {
	convert func(string, *Tensor) error
	parts   map[string]*[3]*Tensor
	done    map[string]*Tensor
}

func newHFAssembly(convert func(string, *Tensor) error) *hfAssembly {
	return &hfAssembly{convert: convert, parts: map[string]*[3]*Tensor{}, done: map[string]*Tensor{}}
}

// read is convert for the tensor t read under Hugging Face key k.
func (a *hfAssembly) read(k string, t *Tensor) error {
	r, oa := hfRule(k)
	switch {
	case r == nil:
		return nil // fromHF reports it
	case r.Op == asIs:
		if a.convert == nil {
			return nil
		}
		return a.convert(oa, t)
	case t.Half != nil || len(t.Data) != elems(t.Shape):
		return nil // fromHF reports it
	case r.Op == transpose:
		if len(t.Shape) != 2 {
			return nil // fromHF reports the shape
		}
		return a.finish(oa, transpose2D(t), t)
	}
	p := a.parts[oa]
	if p == nil {
		p = new([3]*Tensor)
		a.parts[oa] = p
	}
	p[r.Part] = t
	for _, q := range p {
		// Not all read yet, or mismatched: fromHF reports the shapes.
		if q == nil || !sameShape(q.Shape, p[0].Shape) || len(q.Data) != len(p[0].Data) {
			return nil
		}
	}
	delete(a.parts, oa)
	n := len(p[0].Data)
	shape := slices.Clone(p[0].Shape)
	shape[0] *= 3
	whole := &Tensor{Shape: shape, Data: make([]float32, 3*n)}
	for i, q := range p {
		copy(whole.Data[i*n:], q.Data)
	}
	return a.finish(oa, whole, p[:]...)
}

// finish converts whole, the tensor made under OpenAI key oa from the Hugging Face
// tensors from, records it in done, and has each of from view its share of whole's
// values in place of its own, which are garbage from then on.
func (a *hfAssembly) finish(oa string, whole *Tensor, from ...*Tensor) error {
	if a.convert != nil {
		if err := a.convert(oa, whole); err != nil {
			return err
		}
	}
	n := whole.Len() / len(from)
	for i, q := range from {
		if whole.Half != nil { // converted: the float32 values are garbage too
			q.Data, q.Half = nil, whole.Half[i*n:(i+1)*n:(i+1)*n]
		} else {
			q.Data = whole.Data[i*n : (i+1)*n : (i+1)*n]
		}
	}
	a.done[oa] = whole
	return nil
}
