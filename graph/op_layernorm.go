package graph

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LayerNormOp normalises each row of x [N,D] and applies gain [D] and bias [D]
// (torch.nn.LayerNorm over the last axis). Inputs: x, gain, bias. Output: [N,D].
type LayerNormOp struct {
	owned
	// Eps is added to the variance (1e-5 in CLIP).
	Eps float32
}

// Arity is 3: x, gain, bias.
func (o *LayerNormOp) Arity() int { return 3 }

// Type is Matrix, Vector, Vector -> Matrix.
func (o *LayerNormOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(1), tt(1), tt(2)) }

// InferShape returns x's shape after checking that gain and bias match its width.
func (o *LayerNormOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes("LayerNorm", 3, in)
	if err != nil {
		return nil, err
	}
	if len(s[0]) != 2 || s[1].TotalSize() != s[0][1] || s[2].TotalSize() != s[0][1] {
		return nil, fmt.Errorf("graph: LayerNorm: x %v, gain %v, bias %v", s[0], s[1], s[2])
	}
	return s[0].Clone(), nil
}

// Do normalises the rows, split over Threads() goroutines.
func (o *LayerNormOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	n, d := s[0][0], s[0][1]
	out, dst, err := o.result(in, n, d)
	if err != nil {
		return nil, err
	}
	parallel(n, grainRows(d), func(lo, hi int) {
		if !cLayerNorm(dst[lo*d:hi*d], v[0][lo*d:hi*d], v[1], v[2], d, o.Eps) {
			layerNorm(dst[lo*d:hi*d], v[0][lo*d:hi*d], v[1], v[2], d, o.Eps)
		}
	})
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *LayerNormOp) String() string { return fmt.Sprintf("LayerNorm{eps=%g}@%p", o.Eps, o) }

// WriteHash writes the op's identity.
func (o *LayerNormOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *LayerNormOp) Hashcode() uint32 { return hashOf(o) }

// LayerNorm normalises x [N,D] with gain and bias [D] (LayerNormOp).
func LayerNorm(name string, x, gain, bias *G.Node, eps float32) (*G.Node, error) {
	return G.ApplyOpWithName(&LayerNormOp{Eps: eps}, name, x, gain, bias)
}

// layerNorm normalises each row of x [N,D] over D and applies gain and bias [D]:
// dst = (x - mean) / sqrt(var + eps) * gain + bias, with the biased variance as in
// torch.nn.LayerNorm. Statistics accumulate in float64. dst may not alias x.
func layerNorm(dst, x, gain, bias []float32, d int, eps float32) {
	for r := 0; r+d <= len(x); r += d {
		row, out := x[r:r+d], dst[r:r+d]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := sum / float64(d)
		var ss float64
		for _, v := range row {
			c := float64(v) - mean
			ss += c * c
		}
		inv := float32(1 / math.Sqrt(ss/float64(d)+float64(eps)))
		m := float32(mean)
		for j, v := range row {
			out[j] = (v-m)*inv*gain[j] + bias[j]
		}
	}
}
