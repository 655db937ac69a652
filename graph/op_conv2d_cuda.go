//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

//go:embed cuda/conv2d.cu
var conv2dCUDA string

func init() {
	registerCUDA("conv2d.cu", conv2dCUDA, func(d *cudaDevice, o *Conv2dOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		return d.conv2d(o, dst, p, s)
	})
}

// cudaConvChunkFloats bounds Conv2dOp's im2col scratch on the GPU (256 MB), as
// convChunkFloats does on the CPU but larger: a chunk of RN50's stem at batch 256 is
// then a GEMM of some 200,000 rows, and no convolution takes more than about twenty
// chunks. A variable so that tests can force many chunks on small inputs.
var cudaConvChunkFloats = 64 << 20

// convPlan is how a convolution runs on the GPU, forward and backward: chunk by chunk
// of its rows output pixels, chunk at a time, with scratch cols for a chunk's
// receptive fields (chunk x kkc floats).
type convPlan struct {
	ho, wo, rows, chunk, kkc, layout int
	cols                             uintptr
}

// convPlan plans o's chunks and takes the scratch.
func (d *cudaDevice) convPlan(o *Conv2dOp) (convPlan, error) {
	c := convPlan{kkc: o.Kernel * o.Kernel * o.In}
	c.ho, c.wo = o.OutSize()
	c.rows = o.Batch * c.ho * c.wo
	if c.rows > math.MaxInt32 { // the kernels number the output pixels in 32 bits
		return c, fmt.Errorf("%d output pixels: at most %d on the GPU", c.rows, math.MaxInt32)
	}
	c.chunk = max(1, min(c.rows, cudaConvChunkFloats/c.kkc))
	if o.ChannelsFirst {
		c.layout = 1
	}
	var err error
	c.cols, err = d.scratchOf(c.chunk * c.kkc)
	return c, err
}

// im2col writes the receptive fields of output pixels r0..r0+n-1 of x into c.cols: a
// warp per row of the chunk.
func (d *cudaDevice) im2col(o *Conv2dOp, c convPlan, x uintptr, r0, n int) error {
	return d.launch("im2col", d.grid(32*n), 256, u(c.cols), u(x), i(r0), i(n), i(o.Height), i(o.Width), i(o.In),
		i(o.Kernel), i(o.Stride), i(o.Pad), i(c.ho), i(c.wo), i(c.layout))
}

// conv2d: chunk by chunk of output pixels, their receptive fields into scratch
// (im2col), one GEMM with the weight straight into the output rows, then the bias and
// activation (LinearOp's epilogue kernel) while the chunk is still in cache.
func (d *cudaDevice) conv2d(o *Conv2dOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
	cout := s[1][0]
	c, err := d.convPlan(o)
	if err != nil {
		return err
	}
	for r0 := 0; r0 < c.rows; r0 += c.chunk {
		n := min(c.chunk, c.rows-r0)
		if err := d.im2col(o, c, p[0], r0, n); err != nil {
			return err
		}
		y := dst + uintptr(4*r0*cout)
		if err := d.gemmW(o.prec, false, true, n, cout, c.kkc, c.cols, c.kkc, 0, p[1], c.kkc, 0, 0, y, cout, 0, 1); err != nil {
			return err
		}
		if err := d.launch("epilogue", d.grid(n*cout), 256, u(y), u(p[2]), 0, 0, i(n), i(cout), i(int(o.Act))); err != nil {
			return err
		}
	}
	return nil
}
