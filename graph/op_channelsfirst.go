package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ChannelsFirstOp reorders channels-last feature maps x [B*S, C] (S = H*W) into
// PyTorch's NCHW layout, [B, C*S]: how ResNet stages are read out and compared with
// the reference.
type ChannelsFirstOp struct {
	owned
	// Spatial is S.
	Spatial int
}

// Arity is 1.
func (o *ChannelsFirstOp) Arity() int { return 1 }

// Type is Matrix -> Matrix.
func (o *ChannelsFirstOp) Type() hm.Type { return hm.NewFnType(tt(2), tt(2)) }

// InferShape returns [B, C*S].
func (o *ChannelsFirstOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 1, in)
	if err != nil {
		return nil, err
	}
	x := s[0]
	if len(x) != 2 || o.Spatial <= 0 || x[0]%o.Spatial != 0 {
		return nil, fmt.Errorf("graph: %v: x %v", o, x)
	}
	return tensor.Shape{x[0] / o.Spatial, x[1] * o.Spatial}, nil
}

// Do transposes each image's [S, C] block.
func (o *ChannelsFirstOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	x, s, err := f32(in[0])
	if err != nil {
		return nil, err
	}
	sp, c := o.Spatial, s[1]
	b := s[0] / sp
	out, dst, err := o.result(in, b, c*sp)
	if err != nil {
		return nil, err
	}
	for i := range b {
		img, y := x[i*sp*c:], dst[i*sp*c:]
		for r := range sp {
			for j := range c {
				y[j*sp+r] = img[r*c+j]
			}
		}
	}
	return out, nil
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *ChannelsFirstOp) String() string { return fmt.Sprintf("ChannelsFirst{S=%d}@%p", o.Spatial, o) }

// WriteHash writes the op's identity.
func (o *ChannelsFirstOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *ChannelsFirstOp) Hashcode() uint32 { return hashOf(o) }

// ChannelsFirst turns channels-last x [B*H*W, C] into [B, C*H*W]; item is one image's
// stored shape [H, W, C] (ChannelsFirstOp).
func ChannelsFirst(name string, x *G.Node, item []int) (*G.Node, error) {
	if len(item) != 3 {
		return nil, fmt.Errorf("graph: %s: item shape %v is not [H W C]", name, item)
	}
	return G.ApplyOpWithName(&ChannelsFirstOp{Spatial: item[0] * item[1]}, name, x)
}
