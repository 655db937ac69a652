package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// PatchEmbedOp is the vision tower's input stage: CLIP-normalised images
// pixels [B, 3*R*R] (each [3,R,R] row-major) -> tokens [B*T, D], T = G*G+1. For each
// image it lays the G*G patches out as rows (patchify), multiplies them with conv1's
// weight [D, 3*P*P] (conv1 is a stride-P, P-by-P convolution without bias) straight
// into the image's token rows 1..G*G, puts the class embedding [D] in row 0 and adds
// the positional embedding [T, D]. Inputs: pixels, conv1 weight, class, positional.
type PatchEmbedOp struct {
	owned
	// Batch is B; Resolution and Patch are R and P.
	Batch, Resolution, Patch int
	patches                  []float32  // scratch [G*G, 3*P*P], reused
	patches16                []uint16   // the same in bfloat16, for a BF16 graph
	mm                       *fusedGEMM // the GEMM of a bfloat16 conv1 (op_patchembed_bf16.go)
}

// Arity is 4.
func (o *PatchEmbedOp) Arity() int { return 4 }

// Type is Matrix, Matrix, Vector, Matrix -> Matrix; conv1's weight may be float32 or
// BFloat16.
func (o *PatchEmbedOp) Type() hm.Type {
	return hm.NewFnType(tt(2), weightType(2), tt(1), tt(2), tt(2))
}

// InferShape returns [B*T, D].
func (o *PatchEmbedOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 4, in)
	if err != nil {
		return nil, err
	}
	px, w, cls, pos := s[0], s[1], s[2], s[3]
	r, p := o.Resolution, o.Patch
	if p <= 0 || r%p != 0 {
		return nil, fmt.Errorf("graph: %v: resolution %d is not a multiple of the patch size %d", o, r, p)
	}
	g := r / p
	if !px.Eq(tensor.Shape{o.Batch, 3 * r * r}) || len(w) != 2 || w[1] != 3*p*p ||
		cls.TotalSize() != w[0] || !pos.Eq(tensor.Shape{g*g + 1, w[0]}) {
		return nil, fmt.Errorf("graph: %v: pixels %v, conv1 %v, class %v, positional %v", o, px, w, cls, pos)
	}
	return tensor.Shape{o.Batch * (g*g + 1), w[0]}, nil
}

// Do embeds the images one at a time (each a [G*G, 3PP] x [3PP, D] sgemm).
func (o *PatchEmbedOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	if bf16Data(in[1]) != nil { // a BF16 graph (op_patchembed_bf16.go)
		return o.doBF16(in)
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	px, w, cls, pos := v[0], v[1], v[2], v[3]
	r, p, d := o.Resolution, o.Patch, s[1][0]
	g2, pp := (r/p)*(r/p), 3*p*p
	t := g2 + 1
	out, dst, err := o.result(in, o.Batch*t, d)
	if err != nil {
		return nil, err
	}
	if len(o.patches) != g2*pp {
		o.patches = make([]float32, g2*pp)
	}
	for b := 0; b < o.Batch; b++ {
		tok := dst[b*t*d : (b+1)*t*d]
		o.start(tok, px, cls, pos, b)
		gemm.Sgemm(blas.NoTrans, blas.Trans, g2, d, pp, 1, o.patches, pp, w, pp, 1, tok[d:], d)
	}
	return out, nil
}

// start begins image b's tokens tok [T, D]: the class embedding plus the positional
// one in every row (the patch rows get their products added next), and the image's
// patches laid out in o.patches.
func (o *PatchEmbedOp) start(tok, px, cls, pos []float32, b int) {
	r := o.Resolution
	copy(tok, pos)
	for j, c := range cls {
		tok[j] += c
	}
	patchify(o.patches, px[b*3*r*r:(b+1)*3*r*r], r, o.Patch)
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *PatchEmbedOp) String() string {
	return fmt.Sprintf("PatchEmbed{B=%d,R=%d,P=%d}@%p", o.Batch, o.Resolution, o.Patch, o)
}

// WriteHash writes the op's identity.
func (o *PatchEmbedOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *PatchEmbedOp) Hashcode() uint32 { return hashOf(o) }

// PatchEmbed turns images pixels [B, 3*R*R] into tokens [B*T, D] with conv1's weight
// [D, 3*P*P], the class embedding [D] and the positional embedding [T, D] (PatchEmbedOp).
func PatchEmbed(name string, pixels, conv, cls, pos *G.Node, batch, resolution, patch int) (*G.Node, error) {
	return G.ApplyOpWithName(&PatchEmbedOp{Batch: batch, Resolution: resolution, Patch: patch}, name, pixels, conv, cls, pos)
}

// patchify copies the G*G patches of image px [3,R,R] into rows dst [G*G, 3*P*P] in
// conv1's weight order (channel, row, column), patches in raster order: a stride-P,
// P-by-P convolution is then one matrix product with the [D, 3*P*P] weight.
func patchify(dst, px []float32, r, p int) {
	g := r / p
	i := 0
	for gy := 0; gy < g; gy++ {
		for gx := 0; gx < g; gx++ {
			for c := 0; c < 3; c++ {
				for py := 0; py < p; py++ {
					off := (c*r+gy*p+py)*r + gx*p
					copy(dst[i:i+p], px[off:off+p])
					i += p
				}
			}
		}
	}
}
