//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"gorgonia.org/tensor"
)

//go:embed cuda/patch_embed.cu
var patchEmbedCUDA string

func init() {
	registerCUDA("patch_embed.cu", patchEmbedCUDA, func(d *cudaDevice, o *PatchEmbedOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		return d.patchEmbed(o, dst, p, s)
	})
}

// patchEmbed: patches into scratch, class and positional rows into the output, then
// one batched GEMM per image accumulating patches x conv1ᵀ into token rows 1..G*G.
func (d *cudaDevice) patchEmbed(o *PatchEmbedOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
	r, ps, w := o.Resolution, o.Patch, s[1][0]
	g2, pp := (r/ps)*(r/ps), 3*ps*ps
	t := g2 + 1
	patches, err := d.scratchOf(o.Batch * g2 * pp)
	if err != nil {
		return err
	}
	if err := d.launch("patchify", d.grid(o.Batch*g2*pp), 256, u(patches), u(p[0]), i(o.Batch), i(r), i(ps)); err != nil {
		return err
	}
	if err := d.launch("class_pos", d.grid(o.Batch*t*w), 256, u(dst), u(p[2]), u(p[3]), i(o.Batch), i(t), i(w)); err != nil {
		return err
	}
	return gemmRM(d.blas, false, true, g2, w, pp, 1, patches, pp, g2*pp, p[1], pp, 0, 1, dst+uintptr(4*w), w, t*w, o.Batch)
}
