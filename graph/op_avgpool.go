package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AvgPoolOp is torch.nn.AvgPool2d(K) (kernel K, stride K, no padding, floor mode)
// over channels-last feature maps x [B*H*W, C], giving [B*(H/K)*(W/K), C]: the
// ResNet towers' stem pooling and anti-aliased strides.
type AvgPoolOp struct {
	owned
	// Batch, Height and Width are the input's B, H and W.
	Batch, Height, Width int
	// Kernel is K, also the stride.
	Kernel int
}

// Arity is 1.
func (o *AvgPoolOp) Arity() int { return 1 }

// Type is Matrix -> Matrix.
func (o *AvgPoolOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2)) }

// InferShape returns [B*(H/K)*(W/K), C].
func (o *AvgPoolOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 1, in)
	if err != nil {
		return nil, err
	}
	x := s[0]
	if o.Kernel <= 0 || len(x) != 2 || x[0] != o.Batch*o.Height*o.Width || o.Height < o.Kernel || o.Width < o.Kernel {
		return nil, fmt.Errorf("graph: %v: x %v", o, x)
	}
	return tensor.Shape{o.Batch * (o.Height / o.Kernel) * (o.Width / o.Kernel), x[1]}, nil
}

// Do averages each K x K window, output rows split over Threads() goroutines.
func (o *AvgPoolOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	x, s, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	c, k := s[1], o.Kernel
	ho, wo := o.Height/k, o.Width/k
	out, dst, err := o.result(in, o.Batch*ho*wo, c)
	if err != nil {
		return nil, err
	}
	inv := 1 / float32(k*k)
	parallel(o.Batch*ho*wo, grainRows(c*k*k), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			b, oy, ox := r/(ho*wo), (r/wo)%ho, r%wo
			y := dst[r*c : (r+1)*c]
			clear(y)
			for dy := range k {
				for dx := range k {
					src := x[((b*o.Height+oy*k+dy)*o.Width+ox*k+dx)*c:]
					for j := range y {
						y[j] += src[j]
					}
				}
			}
			for j := range y {
				y[j] *= inv
			}
		}
	})
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *AvgPoolOp) String() string {
	return fmt.Sprintf("AvgPool{B=%d,%dx%d,K=%d}@%p", o.Batch, o.Height, o.Width, o.Kernel, o)
}

// WriteHash writes the op's identity.
func (o *AvgPoolOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *AvgPoolOp) Hashcode() uint32 { return hashOf(o) }

// AvgPool averages K x K windows of channels-last x [B*H*W, C] (AvgPoolOp).
func AvgPool(name string, x *G.Node, batch, height, width, kernel int) (*G.Node, error) {
	return G.ApplyOpWithName(&AvgPoolOp{Batch: batch, Height: height, Width: width, Kernel: kernel}, name, x)
}
