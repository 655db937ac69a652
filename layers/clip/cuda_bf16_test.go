//go:build gorgoclip_cuda

package clip

import (
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// TestCUDAParity16 is TestParityBF16 on the GPU, in bf16 and fp16 (cuBLAS's
// tensor-core GEMMs), and tf32, for every fixture model.
func TestCUDAParity16(t *testing.T) {
	testfix.CUDA(t)
	for _, p := range []graph.Precision{graph.BF16, graph.FP16, graph.TF32} {
		t.Run(p.String(), func(t *testing.T) {
			parity16(t, []string{"clip-tiny-a", "clip-tiny-rn", "openclip-tiny"}, WithDevice("cuda"), WithPrecision(p))
		})
	}
}
