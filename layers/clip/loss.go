package clip

import (
	"fmt"
	"math"
)

// Loss is CLIP's classification head on features and its gradients, computed on the
// host in float64.
type Loss struct {
	// Value is sum_i cross_entropy(logits_per_image[i,:], y_i).
	Value float64
	// LogitsPerImage is exp(logit_scale) * norm(img) @ norm(txt)^T [N,M].
	LogitsPerImage []float32
	// Images and Texts are dValue/dimage features [N,E] and dValue/dtext features
	// [M,E] (of the features as given, before normalisation).
	Images, Texts []float32
}

// CrossEntropy is the loss the CLIP paper's zero-shot classifier (and CoOp) trains
// with: image i scored against every text by logits_per_image = scale * cosine, and
// cross-entropy against text targets[i], summed over the images. images [N,dim] and
// texts [M,dim] are features as the towers give them (not normalised); scale is the
// multiplier exp(logit_scale), not its log. A zero feature row has no direction and
// is an error.
func CrossEntropy(images, texts []float32, dim int, scale float64, targets []int) (*Loss, error) {
	if dim <= 0 || len(images) == 0 || len(texts) == 0 || len(images)%dim != 0 || len(texts)%dim != 0 {
		return nil, fmt.Errorf("clip: loss: %d image and %d text values are not whole rows of %d", len(images), len(texts), dim)
	}
	n, m := len(images)/dim, len(texts)/dim
	if len(targets) != n {
		return nil, fmt.Errorf("clip: loss: %d targets for %d images", len(targets), n)
	}
	for i, y := range targets {
		if y < 0 || y >= m {
			return nil, fmt.Errorf("clip: loss: target %d of image %d is not one of the %d texts", y, i, m)
		}
	}
	a, na, err := unit(images, dim, "image")
	if err != nil {
		return nil, err
	}
	b, nb, err := unit(texts, dim, "text")
	if err != nil {
		return nil, err
	}
	l := &Loss{LogitsPerImage: make([]float32, n*m)}
	da, db := make([]float64, n*dim), make([]float64, m*dim)
	p := make([]float64, m)
	for i := range n {
		ai := a[i*dim : (i+1)*dim]
		mx := math.Inf(-1)
		for j := range m {
			p[j] = scale * dot64(ai, b[j*dim:(j+1)*dim])
			l.LogitsPerImage[i*m+j] = float32(p[j])
			mx = math.Max(mx, p[j])
		}
		var sum float64
		for j := range p {
			p[j] = math.Exp(p[j] - mx)
			sum += p[j]
		}
		l.Value += math.Log(sum) + mx - float64(l.LogitsPerImage[i*m+targets[i]])
		for j := range p {
			g := p[j] / sum // dL/dlogit_ij = softmax - onehot
			if j == targets[i] {
				g--
			}
			g *= scale
			for k := range dim {
				da[i*dim+k] += g * b[j*dim+k]
				db[j*dim+k] += g * ai[k]
			}
		}
	}
	l.Images = unitGrad(a, da, na, dim)
	l.Texts = unitGrad(b, db, nb, dim)
	return l, nil
}

// unit returns the rows of x [.,dim] normalised, in float64, and their norms.
func unit(x []float32, dim int, what string) ([]float64, []float64, error) {
	u, norms := make([]float64, len(x)), make([]float64, len(x)/dim)
	for r := range norms {
		row := x[r*dim : (r+1)*dim]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		if ss == 0 || math.IsNaN(ss) || math.IsInf(ss, 0) {
			return nil, nil, fmt.Errorf("clip: loss: %s feature %d has norm %g", what, r, math.Sqrt(ss))
		}
		norms[r] = math.Sqrt(ss)
		for k, v := range row {
			u[r*dim+k] = float64(v) / norms[r]
		}
	}
	return u, norms, nil
}

// unitGrad maps gradients g with respect to unit rows u back through the
// normalisation x/|x|: (g - u (u.g)) / |x|.
func unitGrad(u, g, norms []float64, dim int) []float32 {
	out := make([]float32, len(u))
	for r, nr := range norms {
		ur, gr := u[r*dim:(r+1)*dim], g[r*dim:(r+1)*dim]
		ug := dot64(ur, gr)
		for k := range dim {
			out[r*dim+k] = float32((gr[k] - ur[k]*ug) / nr)
		}
	}
	return out
}

func dot64(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
