//go:build gorgoclip_cuda

package graph

import (
	_ "embed"
	"gorgonia.org/tensor"
)

//go:embed cuda/channels_first.cu
var channelsFirstCUDA string

// ChannelsFirstOp on the GPU: one thread per output value.
func init() {
	registerCUDA("channels_first.cu", channelsFirstCUDA, func(d *cudaDevice, o *ChannelsFirstOp, dst uintptr, p []uintptr, s []tensor.Shape) error {
		sp, c := o.Spatial, s[0][1]
		b := s[0][0] / sp
		return d.launch("channels_first", d.grid(b*c*sp), 256, u(dst), u(p[0]), i(b), i(sp), i(c))
	})
}
