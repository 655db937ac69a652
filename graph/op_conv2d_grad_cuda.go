//go:build gorgoclip_cuda

package graph

import (
	_ "embed"

	"gorgonia.org/tensor"
)

//go:embed cuda/conv2d_grad.cu
var conv2dGradCUDA string

// The backward ops of op_conv2d_grad.go on the GPU: one thread per output value, but
// for the convolution's, which run chunk by chunk of output pixels as the forward op
// does.
func init() {
	registerCUDASource("conv2d_grad.cu", conv2dGradCUDA)
	registerCUDA("conv2d_grad.cu", "", func(d *cudaDevice, o *conv2dGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		return d.conv2dGrad(o, dst, p, s)
	})
	registerCUDA("conv2d_grad.cu", "", func(d *cudaDevice, o *avgPoolGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		f, c := o.fwd, o.shape[1]
		n := f.Batch * f.Height * f.Width * c
		return d.launch("avg_pool_grad", d.grid(n), 256, u(dst), u(p[0]), i(f.Batch), i(f.Height), i(f.Width), i(c), i(f.Kernel))
	})
	registerCUDA("conv2d_grad.cu", "", func(d *cudaDevice, o *poolTokensGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		f, c := o.fwd, o.shape[1]
		return d.launch("pool_tokens_grad", d.grid(f.Batch*f.Spatial*c), 256, u(dst), u(p[0]), i(f.Batch), i(f.Spatial), i(c))
	})
	registerCUDA("conv2d_grad.cu", "", func(d *cudaDevice, o *channelsLastOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		n, c := o.shape[0], o.shape[1]
		return d.launch("channels_last", d.grid(n*c), 256, u(dst), u(p[0]), i(n/o.spatial), i(o.spatial), i(c))
	})
}

// conv2dGrad is conv2dGradOp on the GPU, chunk by chunk of output pixels with the
// forward op's scratch bound (cudaConvChunkFloats). The input gradient: the chunk's
// receptive-field gradients dz @ W into scratch (one GEMM, W read as the forward op
// reads it), then col2im gathers them into dx. The weight gradient: the chunk's
// receptive fields (the forward op's im2col), then dW += dz^T cols (one GEMM, the
// first chunk's overwriting dW).
func (d *cudaDevice) conv2dGrad(o *conv2dGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
	f := o.fwd
	cout := s[0][1]
	c, err := d.convPlan(f)
	if err != nil {
		return err
	}
	// dW's GEMM multiplies two float32 activations: in a 16-bit graph it stays float32.
	prec := f.prec
	if prec != TF32 {
		prec = FP32
	}
	per := c.ho * c.wo
	for r0 := 0; r0 < c.rows; r0 += c.chunk {
		n := min(c.chunk, c.rows-r0)
		dz := p[0] + uintptr(4*r0*cout)
		if o.weight {
			if err := d.im2col(f, c, p[1], r0, n); err != nil {
				return err
			}
			beta := float32(1)
			if r0 == 0 {
				beta = 0
			}
			if err := d.gemmW(prec, true, false, cout, c.kkc, n, dz, cout, 0, c.cols, c.kkc, 0, beta, dst, c.kkc, 0, 1); err != nil {
				return err
			}
			continue
		}
		if err := d.gemmW(f.prec, false, false, n, c.kkc, cout, dz, cout, 0, p[1], c.kkc, 0, 0, c.cols, c.kkc, 0, 1); err != nil {
			return err
		}
		b0, b1 := r0/per, (r0+n-1)/per+1
		if err := d.launch("col2im", d.grid((b1-b0)*f.In*f.Height*f.Width), 256, u(dst), u(c.cols), i(r0), i(n),
			i(f.Height), i(f.Width), i(f.In), i(f.Kernel), i(f.Stride), i(f.Pad), i(c.ho), i(c.wo), i(c.layout), i(b0), i(b1-b0)); err != nil {
			return err
		}
	}
	return nil
}
