package clip

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
	"gorgonia.org/tensor"
)

// sixteenBit returns the weights towers keep in 16 bits, in graph order: the GEMM
// weights of a small graph of each tower, then the host tables.
func sixteenBit(t *testing.T, m *Model) []*tensor.Dense {
	t.Helper()
	c := m.cfg
	v := graph.NewBuilder()
	if _, err := m.Visual.Forward(v, v.Input("pixels", 1, 3*c.Vision.ImageResolution*c.Vision.ImageResolution), 1); err != nil {
		t.Fatal(err)
	}
	x := graph.NewBuilder()
	if _, err := m.Text.Forward(x, x.Input("tokens", 1, c.Text.Width), x.Input("eot", 1), 1, 1); err != nil {
		t.Fatal(err)
	}
	var out []*tensor.Dense
	for _, b := range []*graph.Builder{v, x} {
		ws, err := b.GEMMWeights()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ws...)
	}
	return append(out, m.Text.(hostTables).Tables()...)
}

// TestLoad16MatchesConvert loads every fixture layout in bf16 and fp16 converting each
// tensor as it is read, and checks it against loading in float32 and converting the
// model afterwards (the old path): the converter sees each tensor once, the tensors it
// converts keep no float32 data, the 16-bit weights are bit-identical, and in bf16
// the features are identical.
func TestLoad16MatchesConvert(t *testing.T) {
	layouts := []string{"clip-tiny-a/openai", "clip-tiny-a/hf", "clip-tiny-a/hf-bin", "clip-tiny-rn/openai",
		"clip-tiny-rn/open_clip", "openclip-tiny/open_clip"}
	for _, layout := range layouts {
		dir := testfix.Shared(t, filepath.Join("fixtures", layout))
		for _, prec := range []graph.Precision{graph.BF16, graph.FP16} {
			t.Run(layout+"/"+prec.String(), func(t *testing.T) {
				// fp16 runs on CUDA only, so the models are bound without configure's check.
				old, err := weights.Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				want, err := (&Model{prec: prec, batchSize: 2}).bind(old, false)
				if err != nil {
					t.Fatal(err)
				}
				m := &Model{prec: prec, batchSize: 2}
				seen := map[string]int{}
				var keys map[string]graph.Precision
				ck, err := weights.Load(dir, weights.ConvertEach(func(c layers.Config) (func(string, *layers.Tensor) error, error) {
					if keys, err = halfKeys(c, prec); err != nil {
						return nil, err
					}
					convert, err := m.converter(c)
					return func(k string, t *layers.Tensor) error { seen[k]++; return convert(k, t) }, err
				}))
				if err != nil {
					t.Fatal(err)
				}
				if len(keys) == 0 {
					t.Fatal("no weight converted at load")
				}
				for k, tt := range ck.Tensors {
					_, half := keys[k]
					if seen[k] != 1 || half != (tt.Half != nil) || half == (tt.Data != nil) {
						t.Errorf("%s: converter called %d times (want 1), 16-bit %v, holds half %v and float32 %v", k, seen[k], half, tt.Half != nil, tt.Data != nil)
					}
				}
				if len(seen) != len(ck.Tensors) {
					t.Errorf("converter saw %d keys, the checkpoint has %d", len(seen), len(ck.Tensors))
				}
				got, err := m.bind(ck, true)
				if err != nil {
					t.Fatal(err)
				}
				gw, ww := sixteenBit(t, got), sixteenBit(t, want)
				if len(gw) != len(ww) || len(gw) == 0 {
					t.Fatalf("got %d 16-bit weights, want %d", len(gw), len(ww))
				}
				for i := range gw {
					// bf16 on the CPU repacks the Linear weights for oneDNN (graph.BF16Blocked), both the same way.
					if dt := gw[i].Dtype(); dt != graph.BFloat16 && dt != graph.BF16Blocked || dt != ww[i].Dtype() || !reflect.DeepEqual(gw[i].Data(), ww[i].Data()) {
						t.Errorf("weight %d (%v): dtype %v, differs from converting after loading", i, gw[i].Shape(), gw[i].Dtype())
					}
				}
				if prec != graph.BF16 {
					return
				}
				pix := goldenOf(t, layout[:len(layout)-len(filepath.Base(layout))-1], "pixels")
				for _, mm := range []*Model{got, want} {
					mm.cache.Max = 4
				}
				gi, err := got.EncodeImages(pix.Data, pix.Shape[0])
				if err != nil {
					t.Fatal(err)
				}
				wi, err := want.EncodeImages(pix.Data, pix.Shape[0])
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(gi, wi) {
					t.Error("image features differ from converting after loading")
				}
			})
		}
	}
}

// TestRandomMatchesNew checks that Random, which converts each weight as it is drawn,
// gives the features of New over RandomCheckpoint, which converts afterwards.
func TestRandomMatchesNew(t *testing.T) {
	ck, err := weights.Load(testfix.Shared(t, "fixtures/clip-tiny-a/openai"))
	if err != nil {
		t.Fatal(err)
	}
	rck, err := RandomCheckpoint(ck.Config, 7)
	if err != nil {
		t.Fatal(err)
	}
	opts := []Option{WithPrecision(graph.BF16), WithBatchSize(2)}
	want, err := New(rck, opts...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Random(ck.Config, 7, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ids, rows := goldenTokensOf(t, "clip-tiny-a")
	gt, err := got.EncodeTexts(ids, rows)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := want.EncodeTexts(ids, rows)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gt, wt) {
		t.Error("text features of Random differ from New(RandomCheckpoint)")
	}
}

// TestHalfKeys pins the rule on full-size configs (no weights are allocated): GEMM
// weights are 16-bit, in the model's format; the token embedding is bfloat16 even in
// fp16; LayerNorms, embeddings added on the host side of a GEMM and biases stay
// float32; a ResNet's convolutions, folded with their BatchNorm, have no key.
func TestHalfKeys(t *testing.T) {
	for i, test := range []struct {
		model string
		prec  graph.Precision
		want  map[string]graph.Precision
		f32   []string
	}{
		{"ViT-B/32", graph.BF16, map[string]graph.Precision{"visual.conv1.weight": graph.BF16,
			"visual.transformer.resblocks.0.attn.in_proj_weight": graph.BF16, "transformer.resblocks.11.mlp.c_fc.weight": graph.BF16,
			"token_embedding.weight": graph.BF16},
			[]string{"visual.ln_pre.weight", "visual.positional_embedding", "visual.class_embedding", "positional_embedding",
				"transformer.resblocks.0.mlp.c_fc.bias", "logit_scale"}},
		{"ViT-B/32", graph.FP16, map[string]graph.Precision{"visual.transformer.resblocks.3.mlp.c_proj.weight": graph.FP16,
			"token_embedding.weight": graph.BF16}, []string{"ln_final.weight"}},
		{"RN50", graph.BF16, map[string]graph.Precision{"transformer.resblocks.0.attn.out_proj.weight": graph.BF16},
			[]string{"visual.conv1.weight", "visual.layer1.0.conv1.weight", "visual.bn1.weight"}},
	} {
		cfg, err := layers.Preset(test.model)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := halfKeys(cfg, test.prec)
		if err != nil {
			t.Fatal(err)
		}
		for k, p := range test.want {
			if got, ok := keys[k]; !ok || got != p {
				t.Errorf("test %d: %s %s: got %v (16-bit %v) want %v", i, test.model, k, got, ok, p)
			}
		}
		for _, k := range test.f32 {
			if _, ok := keys[k]; ok {
				t.Errorf("test %d: %s %s: got 16-bit want float32", i, test.model, k)
			}
		}
	}
}
