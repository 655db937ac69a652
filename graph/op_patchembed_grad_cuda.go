//go:build gorgoclip_cuda

package graph

import (
	_ "embed"

	"gorgonia.org/tensor"
)

//go:embed cuda/patch_embed_grad.cu
var patchEmbedGradCUDA string

func init() {
	registerCUDA("patch_embed_grad.cu", patchEmbedGradCUDA, func(d *cudaDevice, o *patchEmbedGradOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		if o.weight {
			return d.patchEmbedWeightGrad(o, dst, p[0], p[1], s[0])
		}
		return d.patchEmbedPixelsGrad(o, dst, p[0], p[1], s[0])
	})
}

// patchEmbedPixelsGrad writes dpixels [B, 3*R*R] from dtok [B*T, D] and conv1 W
// [D, 3*P*P]: each image's patch rows of dtok times W by one batched GEMM (in the
// graph's precision, as the forward GEMM reads W), laid back into the images.
func (d *cudaDevice) patchEmbedPixelsGrad(o *patchEmbedGradOp, dst, dtok, w uintptr, s tensor.Shape) error {
	f := o.fwd
	r, ps := f.Resolution, f.Patch
	g2, pp := (r/ps)*(r/ps), 3*ps*ps
	t, dd := g2+1, s[1]
	rows, err := d.scratchOf(f.Batch * g2 * pp)
	if err != nil {
		return err
	}
	if err := d.gemmW(o.prec, false, false, g2, pp, dd, dtok+uintptr(4*dd), dd, t*dd, w, pp, 0, 0, rows, pp, g2*pp, f.Batch); err != nil {
		return err
	}
	return d.launch("unpatchify", d.grid(f.Batch*3*r*r), 256, u(dst), u(rows), i(f.Batch), i(r), i(ps))
}

// patchEmbedWeightGrad writes dW [D, 3*P*P] = sum over images of dtok's patch rows
// transposed times the image's patches: both gathered over the whole batch
// (patch_rows, patchify), so that one float32 GEMM sums over images and patches.
func (d *cudaDevice) patchEmbedWeightGrad(o *patchEmbedGradOp, dst, dtok, px uintptr, s tensor.Shape) error {
	f := o.fwd
	r, ps := f.Resolution, f.Patch
	g2, pp := (r/ps)*(r/ps), 3*ps*ps
	n, dd := f.Batch*g2, s[1] // patch rows in the batch
	patches, err := d.scratchOf(n * (pp + dd))
	if err != nil {
		return err
	}
	rows := patches + uintptr(4*n*pp)
	if err := d.launch("patchify", d.grid(n*pp), 256, u(patches), u(px), i(f.Batch), i(r), i(ps)); err != nil {
		return err
	}
	if err := d.launch("patch_rows", d.grid(n*dd), 256, u(rows), u(dtok), i(f.Batch), i(g2+1), i(dd)); err != nil {
		return err
	}
	return gemmRM(d.blas, true, false, dd, pp, n, 1, rows, dd, 0, patches, pp, 0, 0, dst, pp, 0, 1)
}
