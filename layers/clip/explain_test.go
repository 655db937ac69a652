package clip

import (
	"math"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/images"
)

// TestAttentionRolloutByHand checks the rollout of two one-head layers over three
// tokens against the product worked out by hand.
func TestAttentionRolloutByHand(t *testing.T) {
	// Layer weights; with the identity mixed in and rows renormalised they become
	// (A + I) / 2.
	a1 := []float32{0.5, 0.5, 0, 0.2, 0.8, 0, 0.1, 0.1, 0.8}
	a2 := []float32{0, 1, 0, 0, 0, 1, 1, 0, 0}
	got, err := AttentionRollout(append(append([]float32(nil), a1...), a2...), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Row 0 of (A2+I)/2 (A1+I)/2: (A2+I)/2 row 0 = [0.5 0.5 0]; (A1+I)/2 rows 0,1 =
	// [0.75 0.25 0], [0.1 0.9 0] -> [0.425 0.575 0]; patches are columns 1 and 2.
	want := []float32{0.575, 0}
	if d, _ := maxDiff(got, want); d > 1e-6 || len(got) != 2 {
		t.Errorf("rollout %v, want %v", got, want)
	}
	// Two heads are averaged: heads a1 and a1 give the one-layer rollout of a1.
	got, err = AttentionRollout(append(append([]float32(nil), a1...), a1...), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := maxDiff(got, []float32{0.25, 0}); d > 1e-6 {
		t.Errorf("two heads: rollout %v, want [0.25 0]", got)
	}
	for _, bad := range [][]float32{make([]float32, 7), make([]float32, 1)} {
		if _, err := AttentionRollout(bad, 1, 1); err == nil {
			t.Errorf("rollout of %d weights was accepted", len(bad))
		}
	}
}

// TestGradCAMByHand checks Grad-CAM on two channels of a 2x2 map.
func TestGradCAMByHand(t *testing.T) {
	a := []float32{1, 2, 3, 4, 1, 0, 0, 1}
	da := []float32{1, 1, 1, 1, -2, -2, -2, -2} // alpha = 1, -2
	cam, side := gradCAM(a, da, 2)
	want := []float32{0, 2, 3, 2} // relu([1-2, 2, 3, 4-2])
	if d, _ := maxDiff(cam, want); d != 0 || side != 2 {
		t.Errorf("Grad-CAM %v side %d, want %v side 2", cam, side, want)
	}
}

// TestExplain checks, on the fixture ViT, that each class's logit is the zero-shot
// logit and that gradient x input sums to the logit's derivative along the pixels
// scaled (d/dh logit((1+h) x) at 0), by central differences; and that a ResNet tower
// gets a Grad-CAM map of its last stage.
func TestExplain(t *testing.T) {
	m := loadLayout(t, "openai")
	px := golden(t, "pixels")
	img := px.Data[:3*64*64]
	txt := golden(t, "text_features")
	w := append([]float32(nil), txt.Data[:4*32]...)
	L2Normalize(w, 32)
	sal, err := m.Explain(img, w, []int{2, 0})
	if err != nil {
		t.Fatal(err)
	}
	feats, err := m.EncodeImages(img, 1)
	if err != nil {
		t.Fatal(err)
	}
	logitOf := func(x []float32, c int) float64 {
		f, err := m.EncodeImages(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		l, err := m.Logits(f, w)
		if err != nil {
			t.Fatal(err)
		}
		return float64(l[c])
	}
	logits, _ := m.Logits(feats, w)
	for _, s := range sal {
		if math.Abs(s.Logit-float64(logits[s.Class])) > 1e-4 {
			t.Errorf("class %d: logit %g, want %g", s.Class, s.Logit, logits[s.Class])
		}
		var sum float64
		for _, v := range s.GradInput {
			sum += float64(v)
		}
		const h = 3e-2
		scaled := func(f float32) []float32 {
			y := make([]float32, len(img))
			for i, v := range img {
				y[i] = v * f
			}
			return y
		}
		fd := (logitOf(scaled(1+h), s.Class) - logitOf(scaled(1-h), s.Class)) / (2 * h)
		if math.Abs(fd-sum) > 1e-2*math.Max(math.Abs(fd), 1e-2) {
			t.Errorf("class %d: gradient x input sums to %g, finite difference %g", s.Class, sum, fd)
		} else {
			t.Logf("class %d: gradient x input sums to %.5g, finite difference %.5g", s.Class, sum, fd)
		}
		if s.GradCAM != nil {
			t.Errorf("a ViT got a Grad-CAM map")
		}
	}
	if _, err := m.Explain(img, w, []int{4}); err == nil {
		t.Error("explaining class 4 of 4 was accepted")
	}

	rn, err := Load(testfix.Shared(t, "fixtures/clip-tiny-rn/openai"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rn.Explain(goldenOf(t, "clip-tiny-rn", "pixels").Data[:3*64*64], w, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].CAMSide != 2 || len(rs[0].GradCAM) != 4 || len(rs[0].GradInput) != 64*64 {
		t.Errorf("ResNet explanation: Grad-CAM side %d with %d values, gradient x input %d values", rs[0].CAMSide, len(rs[0].GradCAM), len(rs[0].GradInput))
	}
}

// TestPixelImage checks that PixelImage undoes the normalisation byte for byte, CLIP's
// and another model's.
func TestPixelImage(t *testing.T) {
	const r = 4
	want := func(ch, i int) uint8 { return uint8((ch*97 + i*13) % 256) }
	for _, norm := range []images.Normalization{{}, {Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.5, 1}}} {
		n := norm.Values()
		px := make([]float32, 3*r*r)
		for ch := range 3 {
			for i := range r * r {
				px[ch*r*r+i] = (float32(want(ch, i))/255 - n.Mean[ch]) / n.Std[ch]
			}
		}
		img := PixelImage(px, images.Transform{Size: r, Norm: norm})
		for i := range r * r {
			c := img.NRGBAAt(i%r, i/r)
			if got := [3]uint8{c.R, c.G, c.B}; got != [3]uint8{want(0, i), want(1, i), want(2, i)} || c.A != 255 {
				t.Fatalf("%+v: pixel %d: %v, want %v", norm, i, c, [3]uint8{want(0, i), want(1, i), want(2, i)})
			}
		}
	}
}
