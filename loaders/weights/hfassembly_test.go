package weights

import (
	"slices"
	"testing"
	"unsafe"
)

// TestHFAssemblyStreams feeds hfAssembly.read a block's q, k and v (out of order) and
// an as-is tensor, with a convert that halves what it is given as clip's does, and
// checks that each is converted exactly once under its OpenAI key, the in_proj as
// soon as its last part is read and equal to the concatenation, and that the parts
// then view the converted tensor instead of holding their own float32 values.
func TestHFAssemblyStreams(t *testing.T) {
	const n = 6
	part := func(v float32) *Tensor {
		d := make([]float32, n)
		for i := range d {
			d[i] = v + float32(i)
		}
		return &Tensor{Shape: []int{2, 3}, Data: d}
	}
	var seen []string
	var inProj *Tensor
	for _, half := range []bool{true, false} {
		seen, inProj = nil, nil
		a := newHFAssembly(func(k string, x *Tensor) error {
			seen = append(seen, k)
			if k == "transformer.resblocks.0.attn.in_proj_weight" {
				inProj = x
				want := slices.Concat(part(0).Data, part(10).Data, part(20).Data)
				if !slices.Equal(x.Data, want) || !slices.Equal(x.Shape, []int{6, 3}) {
					t.Fatalf("in_proj %v %v, want %v [6 3]", x.Data, x.Shape, want)
				}
				if half {
					halve(x)
				}
			}
			return nil
		})
		v, q, k := part(20), part(0), part(10)
		const pre = "text_model.encoder.layers.0.self_attn."
		for _, step := range []struct {
			key string
			t   *Tensor
		}{{pre + "v_proj.weight", v}, {"text_model.final_layer_norm.weight", part(5)}, {pre + "q_proj.weight", q}} {
			if err := a.read(step.key, step.t); err != nil {
				t.Fatal(err)
			}
		}
		if inProj != nil || len(a.done) != 0 {
			t.Fatalf("half=%v: in_proj converted before its k was read", half)
		}
		if err := a.read(pre+"k_proj.weight", k); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seen, []string{"ln_final.weight", "transformer.resblocks.0.attn.in_proj_weight"}) {
			t.Fatalf("half=%v: converted %v", half, seen)
		}
		if a.done["transformer.resblocks.0.attn.in_proj_weight"] != inProj || len(a.parts) != 0 {
			t.Fatalf("half=%v: done %v, pending %d", half, a.done, len(a.parts))
		}
		for i, p := range []*Tensor{q, k, v} {
			var at, want unsafe.Pointer
			if half {
				at, want = unsafe.Pointer(&p.Half[0]), unsafe.Pointer(&inProj.Half[i*n])
			} else {
				at, want = unsafe.Pointer(&p.Data[0]), unsafe.Pointer(&inProj.Data[i*n])
			}
			if at != want || p.Len() != n || half && p.Data != nil {
				t.Errorf("half=%v part %d: does not view its third of in_proj (len %d, float32 %v)", half, i, p.Len(), p.Data != nil)
			}
		}
	}
}

// TestHFAssemblyTransposesAsRead feeds hfAssembly.read a projection, which OpenAI's
// layout transposes, and checks that it is transposed and converted at once under its
// OpenAI key, and that the Hugging Face tensor then views the converted values
// instead of holding its own float32 ones.
func TestHFAssemblyTransposesAsRead(t *testing.T) {
	for _, half := range []bool{true, false} {
		var got *Tensor
		calls := 0
		a := newHFAssembly(func(k string, x *Tensor) error {
			calls++
			if k != "text_projection" {
				t.Fatalf("converted %s, want text_projection", k)
			}
			got = x
			if half {
				halve(x)
			}
			return nil
		})
		hf := &Tensor{Shape: []int{2, 3}, Data: []float32{0, 1, 2, 10, 11, 12}} // [out, in]
		if err := a.read("text_projection.weight", hf); err != nil {
			t.Fatal(err)
		}
		if calls != 1 || a.done["text_projection"] != got || got == nil {
			t.Fatalf("half=%v: converted %d times, done %v", half, calls, a.done)
		}
		want := []uint16{0, 10, 1, 11, 2, 12} // [in, out]
		var vals []uint16
		if half {
			vals = got.Half
		} else {
			for _, v := range got.Data {
				vals = append(vals, uint16(v))
			}
		}
		if !slices.Equal(got.Shape, []int{3, 2}) || !slices.Equal(vals, want) {
			t.Fatalf("half=%v: got %v %v, want [3 2] %v", half, got.Shape, vals, want)
		}
		var at, whole unsafe.Pointer
		if half {
			at, whole = unsafe.Pointer(&hf.Half[0]), unsafe.Pointer(&got.Half[0])
		} else {
			at, whole = unsafe.Pointer(&hf.Data[0]), unsafe.Pointer(&got.Data[0])
		}
		if at != whole || hf.Len() != 6 || half && hf.Data != nil {
			t.Errorf("half=%v: the Hugging Face tensor does not view the transposed one (float32 %v)", half, hf.Data != nil)
		}
	}
}

// halve stands in for clip's conversion: it replaces x's float32 values, small
// integers here, by 16-bit ones equal to them.
func halve(x *Tensor) {
	h := make([]uint16, len(x.Data))
	for i, v := range x.Data {
		h[i] = uint16(v)
	}
	x.SetHalf(h, func() {})
}
