package clip

import (
	"fmt"
	"math"
)

// ZeroShotWeights builds the zero-shot classifier [C,dim] from text features: classes[c]
// holds the features [templates,dim] of class c's prompts (one per template). Each row
// is the mean of the class's L2-normalised template embeddings, re-normalised, as in
// OpenAI's prompt-engineering notebook. The inputs are not modified.
func ZeroShotWeights(classes [][]float32, dim int) ([]float32, error) {
	if dim <= 0 || len(classes) == 0 {
		return nil, fmt.Errorf("clip: zero-shot weights need classes and a positive width (got %d classes, width %d)", len(classes), dim)
	}
	w := make([]float32, len(classes)*dim)
	for c, feats := range classes {
		if len(feats) == 0 || len(feats)%dim != 0 {
			return nil, fmt.Errorf("clip: class %d: %d values are not whole [templates,%d] rows", c, len(feats), dim)
		}
		mean := make([]float64, dim)
		for r := 0; r < len(feats); r += dim {
			row := feats[r : r+dim]
			var ss float64
			for _, v := range row {
				ss += float64(v) * float64(v)
			}
			inv := 1 / math.Sqrt(ss)
			if ss == 0 {
				inv = 0
			}
			for j, v := range row {
				mean[j] += float64(v) * inv
			}
		}
		for j, v := range mean {
			w[c*dim+j] = float32(v / float64(len(feats)/dim))
		}
	}
	L2Normalize(w, dim)
	return w, nil
}

// Logits returns exp(LogitScale()) times the cosine similarity of each image feature
// row [N,E] with each class row [C,E], as [N,C]; with text features as classes this is
// OpenAI's logits_per_image. Neither input needs to be normalised or is modified.
func (m *Model) Logits(images, classes []float32) ([]float32, error) {
	return Logits(images, classes, m.cfg.EmbedDim, float32(math.Exp(float64(m.logitScale))))
}

// Logits is Model.Logits with an explicit width and multiplier (not a log).
func Logits(images, classes []float32, dim int, scale float32) ([]float32, error) {
	if dim <= 0 || len(images)%dim != 0 || len(classes)%dim != 0 || len(images) == 0 || len(classes) == 0 {
		return nil, fmt.Errorf("clip: logits: %d image and %d class values are not whole rows of %d", len(images), len(classes), dim)
	}
	img := append([]float32(nil), images...)
	cls := append([]float32(nil), classes...)
	L2Normalize(img, dim)
	L2Normalize(cls, dim)
	n, c := len(img)/dim, len(cls)/dim
	out := make([]float32, n*c)
	for i := 0; i < n; i++ {
		for k := 0; k < c; k++ {
			var s float32
			for j := 0; j < dim; j++ {
				s += img[i*dim+j] * cls[k*dim+j]
			}
			out[i*c+k] = scale * s
		}
	}
	return out, nil
}
