package weights

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// tinyConfig is clip-tiny-a's architecture (fixtures/README.md).
var tinyConfig = layers.Config{EmbedDim: 32, QuickGELU: true, LayerNormEps: 1e-5,
	Vision: layers.VisionConfig{Kind: "vit", ImageResolution: 64, PatchSize: 16, Width: 128, Layers: 2, Heads: 2},
	Text:   layers.TextConfig{Kind: "transformer", ContextLength: 77, VocabSize: 49408, Width: 64, Layers: 2, Heads: 4}}

// expectedCount is the number of weights tinyConfig declares.
func expectedCount(t testing.TB) int {
	t.Helper()
	shapes, err := ExpectedShapes(tinyConfig)
	if err != nil {
		t.Fatal(err)
	}
	return len(shapes)
}

func fixture(t testing.TB, name string) string {
	t.Helper()
	return testfix.Shared(t, "fixtures/clip-tiny-a/"+name)
}

// sameTensors reports the first difference between two tensor maps, comparing bits.
func sameTensors(got, want map[string]*Tensor) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d tensors want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Errorf("missing %s", k)
		}
		if !sameShape(g.Shape, w.Shape) || len(g.Data) != len(w.Data) {
			return fmt.Errorf("%s: shape %v want %v", k, g.Shape, w.Shape)
		}
		for i := range w.Data {
			if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
				return fmt.Errorf("%s[%d]: got %v want %v", k, i, g.Data[i], w.Data[i])
			}
		}
	}
	return nil
}

func loadOpenAI(t *testing.T) *Checkpoint {
	t.Helper()
	ck, err := Load(fixture(t, "openai"))
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

func TestLoadLayouts(t *testing.T) {
	ref := loadOpenAI(t)
	if n := expectedCount(t); len(ref.Tensors) != n {
		t.Fatalf("openai fixture: %d tensors want %d", len(ref.Tensors), n)
	}
	for i, test := range []struct {
		dir, format string
	}{
		{"openai", FormatOpenAINpy},
		{"hf", FormatHFSafetensors},
		{"hf-bin", FormatHFBin},
	} {
		ck, err := Load(fixture(t, test.dir))
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if ck.Format != test.format {
			t.Errorf("test %d: got format %q want %q", i, ck.Format, test.format)
		}
		if !reflect.DeepEqual(ck.Config, tinyConfig) {
			t.Errorf("test %d: got config %+v want %+v", i, ck.Config, tinyConfig)
		}
		if err := sameTensors(ck.Tensors, ref.Tensors); err != nil {
			t.Errorf("test %d (%s): %v", i, test.dir, err)
		}
	}
}

// linkDir makes a temporary directory holding symlinks to the files of src, except
// those skip names; files then added to it replace nothing in src.
func linkDir(t *testing.T, src string, skip ...string) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	skipped := map[string]bool{}
	for _, s := range skip {
		skipped[s] = true
	}
	for _, e := range ents {
		if skipped[e.Name()] {
			continue
		}
		if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestInferConfigFromShapes(t *testing.T) {
	ck, err := Load(linkDir(t, fixture(t, "openai"), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := tinyConfig
	want.Text.Heads = 1 // build_model's width/64; the fixture's real 4 needs its config.json
	if !reflect.DeepEqual(ck.Config, want) || ck.Format != FormatOpenAINpy {
		t.Fatalf("got %+v (%s) want %+v", ck.Config, ck.Format, want)
	}
}

func TestInferConfigErrors(t *testing.T) {
	ref := loadOpenAI(t)
	for i, test := range []struct {
		drop    string
		reshape map[string][]int
		want    string
	}{
		{drop: "visual.conv1.weight", want: "missing visual.conv1.weight"},
		{reshape: map[string][]int{"visual.positional_embedding": {18, 128}}, want: "grid*grid+1"},
		{reshape: map[string][]int{"visual.conv1.weight": {128, 3, 16}}, want: "[width 3 patch patch]"},
		{reshape: map[string][]int{"ln_final.weight": {8, 8}}, want: "ln_final.weight"},
	} {
		m := map[string]*Tensor{}
		for k, v := range ref.Tensors {
			m[k] = v
		}
		delete(m, test.drop)
		for k, s := range test.reshape {
			m[k] = &Tensor{Shape: s, Data: make([]float32, elems(s))}
		}
		_, err := inferConfig(m)
		if err == nil || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v want error containing %q", i, err, test.want)
		}
	}
}

func TestConfigDialects(t *testing.T) {
	vitb32, err := layers.Preset("ViT-B/32")
	if err != nil {
		t.Fatal(err)
	}
	vitb32.Name = ""
	wideMLP := vitb32
	wideMLP.Vision.MLPRatio = 1000.0 / 768
	gelu := tinyConfig
	gelu.QuickGELU = false
	project, err := json.Marshal(tinyConfig)
	if err != nil {
		t.Fatal(err)
	}
	for i, test := range []struct {
		json    string
		kind    configKind
		want    layers.Config
		wantErr string
	}{
		// HF defaults reproduce ViT-B/32.
		{json: `{"model_type": "clip"}`, kind: configHF, want: vitb32},
		{json: `{"projection_dim": 512, "text_config": {}, "vision_config": {}}`, kind: configHF, want: vitb32},
		{json: `{"projection_dim": 32,
			"text_config": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_act": "gelu"},
			"vision_config": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 2,
				"image_size": 64, "patch_size": 16, "hidden_act": "gelu"}}`, kind: configHF, want: gelu},
		// text_config_dict overrides text_config, as in old CLIPConfig.
		{json: `{"projection_dim": 32,
			"text_config": {"hidden_size": 999},
			"text_config_dict": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4},
			"vision_config_dict": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 2,
				"image_size": 64, "patch_size": 16}}`, kind: configHF, want: tinyConfig},
		{json: `{"text_config": {"hidden_act": "gelu_new"}, "vision_config": {"hidden_act": "gelu_new"}}`, kind: configHF, wantErr: `hidden_act "gelu_new"`},
		{json: `{"vision_config": {"intermediate_size": 1000}}`, kind: configHF, want: wideMLP},
		{json: `{"vision_config": {"intermediate_size": 0}}`, kind: configHF, wantErr: "vision intermediate_size 0"},
		{json: `{"vision_config": {"hidden_size": 100, "intermediate_size": 400}}`, kind: configHF, wantErr: "not divisible by heads"},
		{json: `{"vision_config": {"layer_norm_eps": 1e-6}}`, kind: configHF, wantErr: "layer_norm_eps"},
		// OpenAI build_model arguments; heads default to width/64 when absent.
		{json: `{"embed_dim": 32, "image_resolution": 64, "vision_layers": 2, "vision_width": 128, "vision_patch_size": 16,
			"context_length": 77, "vocab_size": 49408, "transformer_width": 64, "transformer_heads": 4, "transformer_layers": 2}`,
			kind: configOpenAI, want: tinyConfig},
		{json: string(project), kind: configGorgoclip, want: tinyConfig},
		{json: `{"embed_dim": "x"}`, kind: configOpenAI, wantErr: "config.json"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(test.json), 0o644); err != nil {
			t.Fatal(err)
		}
		kind, b, err := readConfigFile(dir)
		if err != nil || kind != test.kind {
			t.Errorf("test %d: got kind %v (%v) want %v", i, kind, err, test.kind)
			continue
		}
		got, err := parseConfig(kind, b, filepath.Join(dir, "config.json"))
		if test.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), test.wantErr) {
				t.Errorf("test %d: got error %v want one containing %q", i, err, test.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, test.want) {
			t.Errorf("test %d: got %+v (%v) want %+v", i, got, err, test.want)
		}
	}
}

func TestExpectedShapesParameterCounts(t *testing.T) {
	// ViT-B/32 by hand: vision 87,849,216 (conv1 2,359,296; class 768; pos 50*768;
	// ln_pre/post 3,072; proj 393,216; 12 blocks of 12w^2+13w = 7,087,872) plus text
	// 63,428,097 (tokens 25,296,896; pos 39,424; ln_final 1,024; projection 262,144;
	// logit_scale 1; 12 blocks of 3,152,384); HF reports 151,277,313 for
	// openai/clip-vit-base-patch32. The others follow from the same formula.
	for i, test := range []struct {
		name string
		want int
	}{
		{"ViT-B/32", 151_277_313},
		{"ViT-B/16", 149_620_737},
		{"ViT-L/14", 427_616_513},
		{"ViT-L/14@336px", 427_944_193},
	} {
		c, err := layers.Preset(test.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("test %d: %v", i, err)
		}
		shapes, err := ExpectedShapes(c)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, s := range shapes {
			got += elems(s)
		}
		if got != test.want {
			t.Errorf("test %d (%s): got %d parameters want %d", i, test.name, got, test.want)
		}
	}
}

func TestExpectedHFShapesMatchFixture(t *testing.T) {
	hf, err := ReadSafetensors(filepath.Join(fixture(t, "hf"), "model.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ExpectedHFShapes(tinyConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := compare(want, hf, nil); err != nil {
		t.Fatal(err)
	}
	// Each block's in_proj weight and bias become three HF tensors each.
	b32, err := layers.Preset("ViT-B/32")
	if err != nil {
		t.Fatal(err)
	}
	hfShapes, err := ExpectedHFShapes(b32)
	if err != nil {
		t.Fatal(err)
	}
	oaShapes, err := ExpectedShapes(b32)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(hfShapes), len(oaShapes)+4*24; got != want {
		t.Fatalf("ViT-B/32: got %d HF names want %d", got, want)
	}
	rn50, err := layers.Preset("RN50")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ExpectedHFShapes(rn50); err == nil || !strings.Contains(err.Error(), "resnet") {
		t.Errorf("RN50: got %v want an error naming the tower kind", err)
	}
}

func TestFromHFReportsHFNames(t *testing.T) {
	hf, err := ReadSafetensors(filepath.Join(fixture(t, "hf"), "model.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	hf["text_model.embeddings.position_ids"] = &Tensor{Shape: []int{1, 77}, Data: make([]float32, 77)}
	if _, err := FromHF(tinyConfig, hf); err != nil {
		t.Fatalf("position_ids should be ignored: %v", err)
	}
	delete(hf, "text_model.encoder.layers.1.self_attn.k_proj.weight")
	hf["text_model.extra.weight"] = &Tensor{Shape: []int{1}, Data: []float32{1}}
	hf["vision_model.post_layernorm.bias"] = &Tensor{Shape: []int{127}, Data: make([]float32, 127)}
	_, err = FromHF(tinyConfig, hf)
	if err == nil {
		t.Fatal("no error")
	}
	for i, want := range []string{
		"missing 1 keys: text_model.encoder.layers.1.self_attn.k_proj.weight",
		"unexpected 1 keys: text_model.extra.weight",
		"mis-shaped 1 keys: vision_model.post_layernorm.bias: got [127] want [128]",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("test %d: got %v want it to contain %q", i, err, want)
		}
	}
}

func TestNameTableTransforms(t *testing.T) {
	for i, test := range []struct {
		hf, oa string
	}{
		{"text_projection.weight", "text_projection"},
		{"vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"},
		{"text_model.encoder.layers.11.mlp.fc2.bias", "transformer.resblocks.11.mlp.c_proj.bias"},
		{"vision_model.encoder.layers.3.self_attn.v_proj.weight", "visual.transformer.resblocks.3.attn.in_proj_weight"},
		{"text_model.embeddings.position_embedding.weight", "positional_embedding"},
		{"text_model.encoder.layers.x.mlp.fc2.bias", ""},
		{"vision_model.post_layernorm.gamma", ""},
	} {
		_, got := hfRule(test.hf)
		if got != test.oa {
			t.Errorf("test %d: got %q want %q", i, got, test.oa)
		}
	}
	proj := &Tensor{Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, 6}}
	if got := transpose2D(proj); fmt.Sprint(got.Shape, got.Data) != "[2 3] [1 3 5 2 4 6]" {
		t.Errorf("transpose: got %v %v", got.Shape, got.Data)
	}
	// Concatenation order through FromHF on the real fixture.
	ref := loadOpenAI(t)
	st, err := ReadSafetensors(filepath.Join(fixture(t, "hf"), "model.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	oa, err := FromHF(tinyConfig, st)
	if err != nil {
		t.Fatal(err)
	}
	in := oa["visual.transformer.resblocks.1.attn.in_proj_bias"].Data
	for p, name := range []string{"q", "k", "v"} {
		part := st["vision_model.encoder.layers.1.self_attn."+name+"_proj.bias"].Data
		if fmt.Sprint(in[p*128:(p+1)*128]) != fmt.Sprint(part) {
			t.Errorf("in_proj_bias part %d is not %s_proj", p, name)
		}
	}
	if err := sameTensors(oa, ref.Tensors); err != nil {
		t.Error(err)
	}
}

// stTensor is one tensor for writeSafetensors.
type stTensor struct {
	dtype string
	shape []int
	raw   []byte
}

// encodeSafetensors lays tensors out in key order, as the safetensors library does.
func encodeSafetensors(t testing.TB, ts map[string]stTensor) []byte {
	t.Helper()
	keys := make([]string, 0, len(ts))
	for k := range ts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, k := range keys {
		e := ts[k]
		hdr[k] = map[string]any{"dtype": e.dtype, "shape": e.shape, "data_offsets": []int{len(data), len(data) + len(e.raw)}}
		data = append(data, e.raw...)
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), data...)
}

func f32Bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func writeF32Safetensors(t *testing.T, path string, ts map[string]*Tensor) {
	t.Helper()
	m := map[string]stTensor{}
	for k, v := range ts {
		m[k] = stTensor{"F32", v.Shape, f32Bytes(v.Data...)}
	}
	if err := os.WriteFile(path, encodeSafetensors(t, m), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSafetensorsDtypes(t *testing.T) {
	le := binary.LittleEndian
	f64 := le.AppendUint64(nil, math.Float64bits(0.1))
	b := encodeSafetensors(t, map[string]stTensor{
		"f32":  {"F32", []int{2}, f32Bytes(1.5, -2)},
		"f16":  {"F16", []int{3}, le.AppendUint16(le.AppendUint16(le.AppendUint16(nil, 0x3c00), 0xc000), 0x0001)},
		"bf16": {"BF16", []int{2}, le.AppendUint16(le.AppendUint16(nil, 0x3fc0), 0xbf80)},
		"f64":  {"F64", []int{}, f64},
		"i64":  {"I64", []int{1, 2}, le.AppendUint64(le.AppendUint64(nil, 76), ^uint64(0))},
		"zero": {"F32", []int{0, 4}, nil},
	})
	got, err := readSafetensors(bytes.NewReader(b), int64(len(b)), "mem", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, test := range []struct {
		key, want string
	}{
		{"f32", "[2] [1.5 -2]"},
		{"f16", "[3] [1 -2 5.9604645e-08]"},
		{"bf16", "[2] [1.5 -1]"},
		{"f64", "[] [0.1]"},
		{"i64", "[1 2] [76 -1]"},
		{"zero", "[0 4] []"},
	} {
		if s := fmt.Sprint(got[test.key].Shape, got[test.key].Data); s != test.want {
			t.Errorf("test %d (%s): got %s want %s", i, test.key, s, test.want)
		}
	}
	if len(got) != 6 {
		t.Errorf("got %d tensors want 6 (__metadata__ is not a tensor)", len(got))
	}
}

func TestSafetensorsMalformed(t *testing.T) {
	good := func(hdr string, data int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		return append(append(b, hdr...), make([]byte, data)...)
	}
	fix, err := os.ReadFile(filepath.Join(fixture(t, "hf"), "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) []byte {
		if !bytes.Contains(fix, []byte(old)) || len(old) != len(new) {
			t.Fatalf("fixture header has no %q", old)
		}
		return bytes.Replace(fix, []byte(old), []byte(new), 1)
	}
	hugeLen := append(binary.LittleEndian.AppendUint64(nil, 1<<62), fix[8:]...)
	for i, test := range []struct {
		file []byte
		want string
	}{
		{nil, "too short"},
		{[]byte{1, 2, 3}, "too short"},
		{hugeLen, "header length 4611686018427387904 exceeds file size"},
		{good(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 0), `key "a": data_offsets [0, 4] outside the data area of 0 bytes`},
		{good(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 8), `key "a": data_offsets [0, 4] hold 4 bytes, shape [2] of F32 needs 8`},
		{good(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 8), `key "a": data_offsets [4, 0] outside`},
		{good(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, 8), `key "a": data_offsets [-4, 0] outside`},
		{good(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 8), `key "a": data_offsets [0 4 8] must hold two numbers`},
		{good(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 8), `key "a": shape [-1] does not fit`},
		{good(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}`, 8), `key "a": shape`},
		{good(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}`, 8), `key "a": unsupported dtype "Q4"`},
		{good(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, 8), `key "a": malformed entry`},
		{good(`{"a":[]}`, 8), `key "a": malformed entry`},
		{good(`{"a":`, 8), "malformed header"},
		{good(`[]`, 8), "malformed header"},
		// Damaged copies of the fixture.
		{fix[:len(fix)/2], "outside the data area"},
		{edit(`"shape":[77,64]`, `"shape":[76,64]`), `key "text_model.embeddings.position_embedding.weight": data_offsets [4, 19716] hold 19712 bytes, shape [76 64] of F32 needs 19456`},
		{edit(`{"logit_scale":{"dtype":"F32"`, `{"logit_scale":{"dtype":"F64"`), `key "logit_scale": data_offsets [0, 4] hold 4 bytes, shape [] of F64 needs 8`},
		{edit(`{"logit_scale"`, `x"logit_scale"`), "malformed header"},
	} {
		path := filepath.Join(t.TempDir(), "model.safetensors")
		if err := os.WriteFile(path, test.file, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadSafetensors(path, nil)
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.HasPrefix(err.Error(), "loaders: weights: "+path+": ") {
			t.Errorf("test %d: got %v want an error naming %s and containing %q", i, err, path, test.want)
		}
	}
}

// copyFile copies src to dst, keeping only the first n bytes when n >= 0.
func copyFile(t *testing.T, src, dst string, n int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if n >= 0 {
		b = b[:n]
	}
	os.Remove(dst) // may be a symlink into the read-only fixtures
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteZip copies the zip at src to dst, dropping the records named in drop.
func rewriteZip(t *testing.T, src, dst string, drop string) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	os.Remove(dst)
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, r := range zr.File {
		if r.Name == drop {
			continue
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: r.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := r.Open()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadBadDirectories(t *testing.T) {
	oa, hf, bin := fixture(t, "openai"), fixture(t, "hf"), fixture(t, "hf-bin")
	for i, test := range []struct {
		src    string
		skip   []string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{src: oa, break_: func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(oa, "ln_final.bias.npy"), filepath.Join(dir, "ln_final.bias.npy"), 200)
		}, want: []string{"key ln_final.bias", "ln_final.bias.npy", "truncated"}},
		{src: oa, break_: func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(oa, "ln_final.bias.npy"))
			b[1] = 'X' // magic
			os.Remove(filepath.Join(dir, "ln_final.bias.npy"))
			os.WriteFile(filepath.Join(dir, "ln_final.bias.npy"), b, 0o644)
		}, want: []string{"key ln_final.bias", "bad magic"}},
		{src: oa, skip: []string{"transformer.resblocks.1.mlp.c_fc.bias.npy"},
			want: []string{"missing 1 keys: transformer.resblocks.1.mlp.c_fc.bias"}},
		{src: oa, break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "ln_final.bias.npy"))
			if err := npy.WriteFloat32(filepath.Join(dir, "ln_final.bias.npy"), []int{63}, make([]float32, 63)); err != nil {
				t.Fatal(err)
			}
			if err := npy.WriteFloat32(filepath.Join(dir, "extra.npy"), []int{1}, []float32{0}); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"unexpected 1 keys: extra", "mis-shaped 1 keys: ln_final.bias: got [63] want [64]"}},
		{src: oa, skip: []string{"config.json"}, break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "visual.conv1.weight.npy"))
		}, want: []string{"cannot infer the config", "visual.conv1.weight"}},
		{src: hf, break_: func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(hf, "model.safetensors"), filepath.Join(dir, "model.safetensors"), 5_000_000)
		}, want: []string{filepath.Join("model.safetensors") + ": key ", "outside the data area"}},
		{src: hf, skip: []string{"config.json"}, want: []string{"need a Hugging Face config.json"}},
		{src: hf, break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "config.json"))
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"projection_dim": 32, "text_config": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 3, "num_attention_heads": 4},
				"vision_config": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 64, "patch_size": 16}}`), 0o644)
		}, want: []string{"missing 16 keys", "text_model.encoder.layers.2.self_attn.q_proj.weight"}},
		{src: bin, break_: func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(bin, "pytorch_model.bin"), filepath.Join(dir, "pytorch_model.bin"), 1000)
		}, want: []string{"pytorch_model.bin: not a PyTorch zip checkpoint"}},
		{src: bin, break_: func(t *testing.T, dir string) {
			rewriteZip(t, filepath.Join(bin, "pytorch_model.bin"), filepath.Join(dir, "pytorch_model.bin"), "pytorch_model/data/0")
		}, want: []string{"pytorch_model.bin: key \"logit_scale\": storage record pytorch_model/data/0 is missing"}},
		{src: bin, break_: func(t *testing.T, dir string) {
			rewriteZip(t, filepath.Join(bin, "pytorch_model.bin"), filepath.Join(dir, "pytorch_model.bin"), "pytorch_model/data.pkl")
		}, want: []string{"pytorch_model.bin: no data.pkl record"}},
	} {
		dir := linkDir(t, test.src, test.skip...)
		if test.break_ != nil {
			test.break_(t, dir)
		}
		_, err := Load(dir)
		for _, w := range test.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("test %d: got %v want an error containing %q", i, err, w)
			}
		}
	}
}

func TestSaveRoundTrip(t *testing.T) {
	ref := loadOpenAI(t)
	dir := filepath.Join(t.TempDir(), "out")
	if err := Save(ref, dir); err != nil {
		t.Fatal(err)
	}
	ck, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Format != FormatGorgoclip || !reflect.DeepEqual(ck.Config, ref.Config) {
		t.Fatalf("got %s %+v want %s %+v", ck.Format, ck.Config, FormatGorgoclip, ref.Config)
	}
	if err := sameTensors(ck.Tensors, ref.Tensors); err != nil {
		t.Fatal(err)
	}
	if err := Save(ref, dir); err != nil { // same model again: allowed
		t.Fatal(err)
	}
	if err := npy.WriteFloat32(filepath.Join(dir, "other.npy"), []int{1}, []float32{1}); err != nil {
		t.Fatal(err)
	}
	if err := Save(ref, dir); err == nil || !strings.Contains(err.Error(), "other.npy") {
		t.Fatalf("got %v want an error naming other.npy", err)
	}
	bad := &Checkpoint{Config: ref.Config, Tensors: map[string]*Tensor{}}
	if err := Save(bad, t.TempDir()); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("got %v want missing keys", err)
	}
}

func TestLoadSharded(t *testing.T) {
	hf := fixture(t, "hf")
	all, err := ReadSafetensors(filepath.Join(hf, "model.safetensors"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := linkDir(t, hf, "model.safetensors")
	shards := [2]map[string]*Tensor{{}, {}}
	weightMap := map[string]string{}
	for k, v := range all {
		s := 0
		if strings.HasPrefix(k, "vision_model.") {
			s = 1
		}
		shards[s][k] = v
		weightMap[k] = fmt.Sprintf("model-%05d-of-00002.safetensors", s+1)
	}
	for s, m := range shards {
		writeF32Safetensors(t, filepath.Join(dir, fmt.Sprintf("model-%05d-of-00002.safetensors", s+1)), m)
	}
	writeIndex := func(wm map[string]string) {
		b, _ := json.Marshal(map[string]any{"metadata": map[string]int{"total_size": 0}, "weight_map": wm})
		if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeIndex(weightMap)
	ck, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTensors(ck.Tensors, loadOpenAI(t).Tensors); err != nil || ck.Format != FormatHFSafetensors {
		t.Fatalf("%v (format %s)", err, ck.Format)
	}
	for i, test := range []struct {
		key, shard, want string
	}{
		{"logit_scale", "model-00002-of-00002.safetensors", "key logit_scale is in model-00001-of-00002.safetensors but the index maps it to"},
		{"logit_scale", "../model.safetensors", "is not a file name in the same directory"},
		{"extra", "model-00001-of-00002.safetensors", "1 indexed keys are missing from their shards: extra"},
	} {
		wm := map[string]string{}
		for k, v := range weightMap {
			wm[k] = v
		}
		wm[test.key] = test.shard
		writeIndex(wm)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v want %q", i, err, test.want)
		}
	}
}

func TestTorchGather(t *testing.T) {
	st := &torchStorage{key: "0", numel: 6}
	data := []float32{0, 1, 2, 3, 4, 5}
	for i, test := range []struct {
		offset        int
		shape, stride []int
		want          string
	}{
		{0, []int{2, 3}, []int{3, 1}, "[2 3] [0 1 2 3 4 5]"},
		{0, []int{3, 2}, []int{1, 3}, "[3 2] [0 3 1 4 2 5]"}, // a transposed view
		{1, []int{2}, []int{2}, "[2] [1 3]"},
		{0, []int{1, 6}, []int{0, 1}, "[1 6] [0 1 2 3 4 5]"}, // position_ids-style expand
		{5, []int{}, []int{}, "[] [5]"},
		{0, []int{0, 3}, []int{3, 1}, "[0 3] []"},
		{0, []int{2, 3}, []int{4, 1}, "error: runs past"},
		{6, []int{}, []int{}, "error: runs past"},
		{0, []int{2}, []int{-1}, "error: negative"},
		{0, []int{2}, []int{1, 1}, "error: differ in length"},
		{-1, []int{1}, []int{1}, "error: outside storage"},
		{0, []int{1 << 40, 1 << 40}, []int{0, 0}, "error: too large"},
		{0, []int{3, 1 << 62}, []int{1 << 62, 1}, "error: runs past"},
	} {
		got, err := (&torchTensor{storage: st, offset: test.offset, shape: test.shape, stride: test.stride}).gather(data, false)
		var s string
		if err != nil {
			s = "error: " + err.Error()
		} else {
			s = fmt.Sprint(got.Shape, got.Data)
		}
		if !strings.HasPrefix(s, test.want) && !(strings.HasPrefix(test.want, "error: ") && strings.Contains(s, strings.TrimPrefix(test.want, "error: "))) {
			t.Errorf("test %d: got %s want %s", i, s, test.want)
		}
	}
}

func FuzzSafetensors(f *testing.F) {
	// Seeds from the fixture file. The whole 15 MB file makes each mutation slow (about
	// one exec a second), so the seeds are its real header with the first 20 kB of data
	// (two tensors decode, the rest lie outside the data area), and a complete small
	// file re-encoded from its tensors of at most 512 values under their real names.
	path := filepath.Join(fixture(f, "hf"), "model.safetensors")
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	n := 8 + int(binary.LittleEndian.Uint64(b))
	f.Add(b[:n+20_000])
	all, err := ReadSafetensors(path, nil)
	if err != nil {
		f.Fatal(err)
	}
	small := map[string]stTensor{}
	for k, v := range all {
		if len(v.Data) <= 512 {
			small[k] = stTensor{"F32", v.Shape, f32Bytes(v.Data...)}
		}
	}
	f.Add(encodeSafetensors(f, small))
	f.Add(encodeSafetensors(f, map[string]stTensor{
		"a": {"F32", []int{2}, f32Bytes(1, 2)},
		"b": {"BF16", []int{1, 1}, []byte{0x80, 0x3f}},
		"c": {"F16", []int{}, []byte{0, 0x3c}},
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := readSafetensors(bytes.NewReader(b), int64(len(b)), "fuzz", nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "loaders: weights: fuzz: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for k, v := range ts {
			if elems(v.Shape) != len(v.Data) {
				t.Fatalf("%s: shape %v but %d values", k, v.Shape, len(v.Data))
			}
		}
	})
}

// TestHostileConfigs checks that absurd or inconsistent configs are refused by name
// before any key list, tensor or graph is built: a layer count of a billion must not
// make ExpectedShapes list billions of keys, and explicit zero heads must not be
// replaced by width/64.
func TestHostileConfigs(t *testing.T) {
	for i, test := range []struct {
		json, want string
	}{
		{`{"embed_dim": 32, "image_resolution": 64, "vision_layers": 1000000000, "vision_width": 128, "vision_patch_size": 16,
			"context_length": 77, "vocab_size": 49408, "transformer_width": 64, "transformer_heads": 4, "transformer_layers": 2}`,
			"vision layers 1000000000 must be in [1, 256]"},
		{`{"embed_dim": 32, "image_resolution": 64, "vision_layers": 2, "vision_width": 128, "vision_patch_size": 16,
			"context_length": 77, "vocab_size": 49408, "transformer_width": 64, "transformer_heads": 0, "transformer_layers": 2}`,
			"text heads 0 must be in [1, width 64]"},
		{`{"model_type": "clip", "text_config": {"num_hidden_layers": 1000000000}}`, "text layers 1000000000 must be in [1, 256]"},
		{`{"model_type": "clip", "vision_config": {"hidden_size": 1073741824}}`, "vision width 1073741824 must be in [1, 16384]"},
		{`{"embed_dim": 32, "image_resolution": 64, "vision_layers": [1, 1, 1000000000, 1], "vision_width": 16,
			"context_length": 77, "vocab_size": 49408, "transformer_width": 64, "transformer_heads": 4, "transformer_layers": 2}`,
			"vision stage_blocks[2] 1000000000 must be in [1, 256]"},
		{`{"embed_dim": 32, "image_resolution": 64, "vision_layers": 2, "vision_width": 128, "vision_patch_size": 16, "vision_mlp": 3,
			"context_length": 77, "vocab_size": 49408, "transformer_width": 64, "transformer_heads": 4, "transformer_layers": 2}`,
			`unknown field "vision_mlp"`},
		{`{"embed_dim": 32, "vision": {"kind": "vit", "image_resolution": 64, "patch_size": 16, "width": 128, "layers": 2, "heads": 2,
			"stage_blocks": [1, 1, 1, 1]}, "text": {"context_length": 77, "vocab_size": 49408, "width": 64, "layers": 2, "heads": 4},
			"layer_norm_eps": 1e-5}`, `vision stage_blocks is not a field of a "vit" tower`},
		{`{"embed_dim": 32, "vision": {"kind": "swin", "image_resolution": 64, "width": 128}, "text": {"context_length": 77,
			"vocab_size": 49408, "width": 64, "layers": 2, "heads": 4}, "layer_norm_eps": 1e-5}`, `vision kind "swin" is not a registered tower kind`},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(test.json), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(linkDirInto(t, fixture(t, "openai"), dir))
		if err == nil || !strings.Contains(err.Error(), test.want) || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("test %d: got %v want an error naming config.json and containing %q", i, err, test.want)
		}
	}
}

// linkDirInto links the .npy files of src into dir (which holds its own config.json).
func linkDirInto(t *testing.T, src, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(src, "*.npy"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.Symlink(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestOpenCLIPConfigRefusals checks that open_clip options gorgoclip does not
// implement are refused by name, never ignored, and that the ones it does are read.
func TestOpenCLIPConfigRefusals(t *testing.T) {
	base := `"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 2, "width": 128, "patch_size": 16%s},
		"text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2%s}`
	cfg := func(vision, text, top string) string {
		return `{"model_cfg": {` + fmt.Sprintf(base, vision, text) + top + `}, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}`
	}
	for i, test := range []struct {
		json, want string
	}{
		{cfg(`, "attentional_pool": true`, "", ""), "model_cfg.vision_cfg.attentional_pool = true is not supported"},
		{cfg(`, "timm_model_name": "vit_base_patch16_224"`, "", ""), "model_cfg.vision_cfg.timm_model_name"},
		{cfg("", `, "no_causal_mask": true`, ""), "model_cfg.text_cfg.no_causal_mask = true"},
		{cfg("", `, "pool_type": "eos"`, ""), `model_cfg.text_cfg.pool_type = "eos"`},
		{cfg("", `, "proj_bias": true`, ""), "model_cfg.text_cfg.proj_bias = true"},
		{cfg("", `, "hf_model_name": "xlm-roberta-base"`, ""), "model_cfg.text_cfg.hf_model_name"},
		{cfg(`, "pool_type": "avg"`, "", ""), `model_cfg.vision_cfg.pool_type = "avg"`},
		{cfg("", "", `, "multimodal_cfg": {"layers": 12}`), "model_cfg.multimodal_cfg"},
		{cfg(`, "frobnicate": 1`, "", ""), "model_cfg.vision_cfg.frobnicate is not an option"},
		{cfg(`, "head_width": 48`, "", ""), "width 128 is not a multiple of head_width 48"},
	} {
		_, _, err := parseOpenCLIPConfig([]byte(test.json))
		if err == nil || !strings.Contains(err.Error(), test.want) {
			t.Errorf("test %d: got %v want an error containing %q", i, err, test.want)
		}
	}
	c, _, err := parseOpenCLIPConfig([]byte(cfg(`, "head_width": 32, "mlp_ratio": 4.9231, "ls_init_value": 0.1, "pool_type": "tok"`,
		`, "mlp_ratio": 3.0, "pool_type": "argmax"`, `, "quick_gelu": false, "custom_text": true`)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Vision.Heads != 4 || c.Vision.MLPRatio != 4.9231 || c.Vision.LayerScaleInit != 0.1 || c.Text.MLPRatio != 3 ||
		c.QuickGELU || c.Preprocess.Mean != [3]float64{0.5, 0.5, 0.5} {
		t.Errorf("read %+v, preprocess %+v", c, c.Preprocess)
	}
}

// TestConfigNotRegular checks that a config.json that is a FIFO or a link to
// /dev/zero is refused at once, naming it, rather than blocking or filling memory.
func TestConfigNotRegular(t *testing.T) {
	for i, mk := range []func(path string) error{
		func(p string) error { return syscall.Mkfifo(p, 0o644) },
		func(p string) error { return os.Symlink("/dev/zero", p) },
	} {
		dir := linkDirInto(t, fixture(t, "openai"), t.TempDir())
		cfg := filepath.Join(dir, "config.json")
		if err := mk(cfg); err != nil {
			t.Skipf("test %d: %v", i, err)
		}
		done := make(chan error, 1)
		go func() { _, err := Load(dir); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "config.json") || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("test %d: got %v want an error naming config.json as not a regular file", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("test %d: Load blocked on config.json", i)
		}
	}
}

// TestNpyDirReadsInOrder checks that a directory of .npy files is read in one order,
// by key (a map's order made the peak memory of a bf16 load vary by 170 MB from run to
// run with the same weights).
func TestNpyDirReadsInOrder(t *testing.T) {
	var keys []string
	_, err := Load(fixture(t, "openai"), ConvertEach(func(layers.Config) (func(string, *Tensor) error, error) {
		return func(k string, _ *Tensor) error { keys = append(keys, k); return nil }, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 10 || !slices.IsSorted(keys) {
		t.Errorf("read %d tensors in the order %v, want them sorted", len(keys), keys)
	}
}
