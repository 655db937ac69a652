package clip

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/gorgoclip/gorgoclip/loaders/images"
)

// Saliency explains why one image scores one class: where in the image the class's
// zero-shot logit, scale * cos(image features, class row), comes from.
type Saliency struct {
	// Class is the row of the classifier explained.
	Class int
	// Logit is the class's logit for the image.
	Logit float64
	// GradInput is gradient x input, dlogit/dpixels * pixels summed over the colour
	// channels [R,R] (signed; its magnitude is the usual display).
	GradInput []float32
	// GradCAM is Grad-CAM (Selvaraju et al. 2017) on a ResNet's last stage [H,W]:
	// ReLU(sum_k alpha_k A_k), alpha_k the mean over H,W of dlogit/dA_k. Nil for
	// other towers.
	GradCAM []float32
	// CAMSide is H (= W) of GradCAM.
	CAMSide int
}

// Explain computes the saliency of image pixels [3,R,R] for each of classes (rows of
// a zero-shot classifier weights [C,E], e.g. ZeroShotWeights): the tower runs forward
// and backward once per class, in one batch.
func (m *Model) Explain(pixels []float32, weights []float32, classes []int) ([]Saliency, error) {
	v, e := m.cfg.Vision, m.cfg.EmbedDim
	r := v.ImageResolution
	if len(pixels) != 3*r*r {
		return nil, fmt.Errorf("clip: explain: %d pixel values, want one image [3,%d,%d]", len(pixels), r, r)
	}
	if len(weights) == 0 || len(weights)%e != 0 {
		return nil, fmt.Errorf("clip: explain: %d classifier values are not rows of %d", len(weights), e)
	}
	if len(classes) == 0 {
		return nil, errors.New("clip: explain: no class to explain")
	}
	stages := []Stage{StageFeatures}
	resnet := v.Kind == "resnet"
	if resnet {
		stages = append(stages, ResNetStage(4))
	}
	fwd, err := m.ImageStages(pixels, 1, stages...)
	if err != nil {
		return nil, err
	}
	f := fwd[StageFeatures]
	u, norms, err := unit(f, e, "image")
	if err != nil {
		return nil, err
	}
	scale := math.Exp(float64(m.logitScale))
	k := len(classes)
	rep, seeds := make([]float32, 0, k*len(pixels)), make([]float32, k*e)
	out := make([]Saliency, k)
	for i, c := range classes {
		if c < 0 || c >= len(weights)/e {
			return nil, fmt.Errorf("clip: explain: class %d is not a row of the %d-class classifier", c, len(weights)/e)
		}
		w := weights[c*e : (c+1)*e]
		var dot float64
		for j, x := range w {
			dot += u[j] * float64(x)
		}
		// dlogit/df = scale * (w - u (u.w)) / |f|
		for j, x := range w {
			seeds[i*e+j] = float32(scale * (float64(x) - u[j]*dot) / norms[0])
		}
		out[i] = Saliency{Class: c, Logit: scale * dot}
		rep = append(rep, pixels...)
	}
	wrt := []string{WRTPixels}
	if resnet {
		wrt = append(wrt, string(ResNetStage(4)))
	}
	g, err := m.ImageGradients(rep, k, seeds, wrt...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		gx := make([]float32, r*r)
		for ch := range 3 {
			for p := range gx {
				j := ch*r*r + p
				gx[p] += g[WRTPixels][i*3*r*r+j] * pixels[j]
			}
		}
		out[i].GradInput = gx
		if resnet {
			a := fwd[ResNetStage(4)] // [C,H,W]
			per := len(a)
			out[i].GradCAM, out[i].CAMSide = gradCAM(a, g[string(ResNetStage(4))][i*per:(i+1)*per], r/32)
		}
	}
	return out, nil
}

// gradCAM is ReLU(sum_k alpha_k A_k) for activations a and gradients da [C,H,W] with
// H = W = side, alpha_k the mean of da_k.
func gradCAM(a, da []float32, side int) ([]float32, int) {
	hw := side * side
	cam := make([]float64, hw)
	for k := range len(a) / hw {
		var alpha float64
		for _, g := range da[k*hw : (k+1)*hw] {
			alpha += float64(g)
		}
		alpha /= float64(hw)
		for p, x := range a[k*hw : (k+1)*hw] {
			cam[p] += alpha * float64(x)
		}
	}
	out := make([]float32, hw)
	for p, c := range cam {
		out[p] = float32(max(c, 0))
	}
	return out, side
}

// AttentionRollout is Abnar and Zuidema's (2020) attention rollout for one image of a
// ViT: att is its attention weights [layers, heads, T, T] (one item of
// StageAttention). Each layer's weights are averaged over the heads, mixed half and
// half with the identity for the residual connection and renormalised; their product
// from the first layer to the last gives how much each input token flows into each
// output token. It returns the class token's row over the patches, [G*G] in raster
// order (T = G*G+1).
func AttentionRollout(att []float32, layers, heads int) ([]float32, error) {
	if layers <= 0 || heads <= 0 || len(att)%(layers*heads) != 0 {
		return nil, fmt.Errorf("clip: rollout: %d weights are not %d layers of %d heads", len(att), layers, heads)
	}
	t := int(math.Round(math.Sqrt(float64(len(att) / (layers * heads)))))
	if t*t*layers*heads != len(att) || t < 2 {
		return nil, fmt.Errorf("clip: rollout: %d weights are not square maps of %d layers of %d heads", len(att), layers, heads)
	}
	roll := identity(t)
	a := make([]float64, t*t)
	for l := range layers {
		clear(a)
		for h := range heads {
			for i, w := range att[(l*heads+h)*t*t : (l*heads+h+1)*t*t] {
				a[i] += float64(w) / float64(heads)
			}
		}
		for i := range t {
			row := a[i*t : (i+1)*t]
			row[i]++
			var s float64
			for _, w := range row {
				s += w
			}
			for j := range row {
				row[j] /= s
			}
		}
		roll = matMul(a, roll, t) // this layer after the ones below
	}
	out := make([]float32, t-1)
	for j := range out {
		out[j] = float32(roll[j+1])
	}
	return out, nil
}

func identity(t int) []float64 {
	m := make([]float64, t*t)
	for i := range t {
		m[i*t+i] = 1
	}
	return m
}

// matMul returns a b for square [t,t] matrices.
func matMul(a, b []float64, t int) []float64 {
	c := make([]float64, t*t)
	for i := range t {
		for k := range t {
			if x := a[i*t+k]; x != 0 {
				for j := range t {
					c[i*t+j] += x * b[k*t+j]
				}
			}
		}
	}
	return c
}

// PixelImage turns pixels [3,R,R] as t writes them (Model.Transform) back into the
// RGB image the model saw (the preprocessed crop), undoing t's normalisation.
func PixelImage(pixels []float32, t images.Transform) *image.NRGBA {
	r, n := t.Size, t.Norm.Values()
	img := image.NewNRGBA(image.Rect(0, 0, r, r))
	for y := range r {
		for x := range r {
			var c [3]uint8
			for ch := range 3 {
				v := float64(pixels[(ch*r+y)*r+x])*float64(n.Std[ch]) + float64(n.Mean[ch])
				c[ch] = uint8(math.Round(255 * min(max(v, 0), 1)))
			}
			img.SetNRGBA(x, y, color.NRGBA{c[0], c[1], c[2], 255})
		}
	}
	return img
}
