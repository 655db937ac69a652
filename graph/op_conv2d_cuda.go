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

// conv2d: chunk by chunk of output pixels, their receptive fields into scratch
// (im2col), one GEMM with the weight straight into the output rows, then the bias and
// activation (LinearOp's epilogue kernel) while the chunk is still in cache.
func (d *cudaDevice) conv2d(o *Conv2dOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
	cout, kkc := s[1][0], s[1][1]
	ho, wo := o.OutSize()
	rows := o.Batch * ho * wo
	if rows > math.MaxInt32 { // im2col numbers the output pixels in 32 bits
		return fmt.Errorf("%d output pixels: at most %d on the GPU", rows, math.MaxInt32)
	}
	chunk := max(1, min(rows, cudaConvChunkFloats/kkc))
	cols, err := d.scratchOf(chunk * kkc)
	if err != nil {
		return err
	}
	layout := 0
	if o.ChannelsFirst {
		layout = 1
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		// A warp per row of the chunk.
		if err := d.launch("im2col", d.grid(32*n), 256, u(cols), u(p[0]), i(r0), i(n), i(o.Height), i(o.Width), i(o.In),
			i(o.Kernel), i(o.Stride), i(o.Pad), i(ho), i(wo), i(layout)); err != nil {
			return err
		}
		y := dst + uintptr(4*r0*cout)
		if err := d.gemmW(o.prec, false, true, n, cout, kkc, cols, kkc, 0, p[1], kkc, 0, 0, y, cout, 0, 1); err != nil {
			return err
		}
		if err := d.launch("epilogue", d.grid(n*cout), 256, u(y), u(p[2]), 0, 0, i(n), i(cout), i(int(o.Act))); err != nil {
			return err
		}
	}
	return nil
}
