package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv2dOp is a K x K convolution with stride and zero padding over channels-last
// feature maps, fused with its bias and activation: y = act(conv(x) + bias), as a
// ResNet's convolution followed by its eval-mode BatchNorm (folded into the weight and
// bias at load) and ReLU. Inputs: x, then the weight [Cout, K*K*Cin] with each row in
// (ky, kx, c) order (PyTorch's [Cout, Cin, K, K] permuted once at load), then bias
// [Cout]. x is [B*H*W, Cin] (channels last), or, with ChannelsFirst, images
// [B, Cin*H*W] as the pixels come (the stem's first convolution). Output:
// [B*Ho*Wo, Cout], Ho = (H + 2*Pad - K)/Stride + 1.
//
// Do lays the receptive fields of a chunk of output pixels out as rows (im2col: a
// run of Cin contiguous values per kernel tap, zeros in the padding), then one sgemm
// of the chunk with the weight, then the epilogue (fused into oneDNN's GEMM where the
// build has it: fp32GEMM). Chunks bound the scratch to about
// 16 MB whatever the batch; a 1x1 stride-1 convolution needs no im2col and is a
// LinearOp instead.
type Conv2dOp struct {
	owned
	// Batch, Height and Width are the input's B, H and W; In is Cin.
	Batch, Height, Width, In int
	// Kernel, Stride and Pad are K, the stride and the zero padding on each side.
	Kernel, Stride, Pad int
	// ChannelsFirst says x is [B, Cin*H*W] (NCHW) rather than [B*H*W, Cin].
	ChannelsFirst bool
	// Act is applied after the bias.
	Act Activation

	cols   []float32  // im2col scratch, reused
	cols16 []uint16   // the same for a BF16 graph
	mm     *fusedGEMM // the fused GEMM of a bfloat16 weight (op_conv2d_bf16.go), or of a float32 one on oneDNN
}

// ConvOutput is a convolution's output size along a side of n: (n + 2*pad - kernel)
// / stride + 1.
func ConvOutput(n, kernel, stride, pad int) int { return (n+2*pad-kernel)/stride + 1 }

// OutSize returns Ho and Wo.
func (o *Conv2dOp) OutSize() (int, int) {
	return ConvOutput(o.Height, o.Kernel, o.Stride, o.Pad), ConvOutput(o.Width, o.Kernel, o.Stride, o.Pad)
}

// Arity is 3: x, weight, bias.
func (o *Conv2dOp) Arity() int { return 3 }

// Type is Matrix, Matrix, Vector -> Matrix; the weight may be float32 or BFloat16.
func (o *Conv2dOp) Type() hm.Type { return hm.NewFnType(tt(2), weightType(2), tt(1), tt(2)) }

// InferShape returns [B*Ho*Wo, Cout].
func (o *Conv2dOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, err := shapes(o.String(), 3, in)
	if err != nil {
		return nil, err
	}
	x, w, bias := s[0], s[1], s[2]
	want := tensor.Shape{o.Batch * o.Height * o.Width, o.In}
	if o.ChannelsFirst {
		want = tensor.Shape{o.Batch, o.In * o.Height * o.Width}
	}
	ho, wo := o.OutSize()
	if o.Kernel <= 0 || o.Stride <= 0 || o.Pad < 0 || ho <= 0 || wo <= 0 || !x.Eq(want) ||
		len(w) != 2 || w[1] != o.Kernel*o.Kernel*o.In || bias.TotalSize() != w[0] {
		return nil, fmt.Errorf("graph: %v: x %v (want %v), weight %v, bias %v", o, x, want, w, bias)
	}
	return tensor.Shape{o.Batch * ho * wo, w[0]}, nil
}

// convChunkFloats bounds the im2col scratch (16 MB): large enough that each chunk's
// sgemm has hundreds of rows even for RN50x64's 4608-wide receptive fields.
const convChunkFloats = 4 << 20

// Do runs the convolution chunk by chunk.
func (o *Conv2dOp) Do(in ...G.Value) (G.Value, error) {
	if v, ok, err := o.onDevice(o, in); ok { // on a device machine (device.go)
		return v, err
	}
	if bf16Data(in[1]) != nil { // a BF16 graph (op_conv2d_bf16.go)
		return o.doBF16(in)
	}
	v, s, err := f32s(in)
	if err != nil {
		return nil, err
	}
	x, w, bias := v[0], v[1], v[2]
	cout, kkc := s[1][0], s[1][1]
	ho, wo := o.OutSize()
	rows := o.Batch * ho * wo
	out, dst, err := o.result(in, rows, cout)
	if err != nil {
		return nil, err
	}
	chunk := max(1, min(rows, convChunkFloats/kkc))
	if len(o.cols) < chunk*kkc {
		o.cols = make([]float32, chunk*kkc)
	}
	if fp32GEMM {
		o.mm = reuseMatmul(o.mm, mmSpec{N: cout, K: kkc, F32: true, LDD: cout, Bias: true, Act: o.Act})
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		cols := o.cols[:n*kkc]
		parallel(n, grainRows(kkc), func(lo, hi int) { o.im2col(cols[lo*kkc:hi*kkc], x, r0+lo, r0+hi) })
		y := dst[r0*cout : (r0+n)*cout]
		if fp32GEMM {
			done, err := o.mm.runF32(n, cols, w, bias, nil, nil, y)
			if err != nil {
				return nil, err
			}
			if done {
				continue
			}
		}
		gemm.Sgemm(blas.NoTrans, blas.Trans, n, cout, kkc, 1, cols, kkc, w, kkc, 0, y, cout)
		parallel(n, grainRows(cout), func(lo, hi int) {
			linearEpilogue(y[lo*cout:hi*cout], bias, nil, nil, cout, o.Act)
		})
	}
	return out, nil
}

// im2col writes the receptive fields of output pixels [lo,hi) (numbered b*Ho*Wo +
// oy*Wo + ox) as rows of dst, each K*K*Cin values in (ky, kx, c) order.
func (o *Conv2dOp) im2col(dst, x []float32, lo, hi int) { fields(o, dst, x, lo, hi) }

// fields is im2col for float32 or bfloat16 (a BF16 graph's) values.
func fields[T float32 | uint16](o *Conv2dOp, dst, x []T, lo, hi int) {
	ho, wo := o.OutSize()
	k, c, h, w := o.Kernel, o.In, o.Height, o.Width
	i := 0
	for r := lo; r < hi; r++ {
		b, oy, ox := r/(ho*wo), (r/wo)%ho, r%wo
		for ky := range k {
			iy := oy*o.Stride - o.Pad + ky
			for kx := range k {
				ix := ox*o.Stride - o.Pad + kx
				cell := dst[i : i+c]
				i += c
				switch {
				case iy < 0 || iy >= h || ix < 0 || ix >= w:
					clear(cell)
				case o.ChannelsFirst:
					for ci := range cell {
						cell[ci] = x[((b*c+ci)*h+iy)*w+ix]
					}
				default:
					copy(cell, x[((b*h+iy)*w+ix)*c:])
				}
			}
		}
	}
}

// String names the op in graph dumps; the address keeps gorgonia from merging two ops.
func (o *Conv2dOp) String() string {
	layout := "NHWC"
	if o.ChannelsFirst {
		layout = "NCHW"
	}
	return fmt.Sprintf("Conv2d{B=%d,%dx%dx%d %s,K=%d,S=%d,P=%d,%v}@%p", o.Batch, o.Height, o.Width, o.In, layout,
		o.Kernel, o.Stride, o.Pad, o.Act, o)
}

// WriteHash writes the op's identity.
func (o *Conv2dOp) WriteHash(h hash.Hash) { fmt.Fprint(h, o.String()) }

// Hashcode hashes the op's identity.
func (o *Conv2dOp) Hashcode() uint32 { return hashOf(o) }

// ConvOptions describe a Conv2d besides its operands.
type ConvOptions struct {
	// Batch, Height, Width and In are the input's B, H, W and Cin.
	Batch, Height, Width, In int
	// Kernel, Stride and Pad are K, the stride and the zero padding.
	Kernel, Stride, Pad int
	// ChannelsFirst says x is [B, Cin*H*W] rather than [B*H*W, Cin].
	ChannelsFirst bool
	// Act is applied after the bias.
	Act Activation
}

// Conv2d convolves x with weight [Cout, K*K*Cin] (rows in (ky, kx, c) order), adds
// bias [Cout] and applies opt.Act, giving channels-last [B*Ho*Wo, Cout] (Conv2dOp).
func Conv2d(name string, x, weight, bias *G.Node, opt ConvOptions) (*G.Node, error) {
	op := &Conv2dOp{Batch: opt.Batch, Height: opt.Height, Width: opt.Width, In: opt.In, Kernel: opt.Kernel,
		Stride: opt.Stride, Pad: opt.Pad, ChannelsFirst: opt.ChannelsFirst, Act: opt.Act}
	return G.ApplyOpWithName(op, name, x, weight, bias)
}
