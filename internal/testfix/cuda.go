package testfix

import (
	"errors"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
)

// CUDA skips tb when the driver reports no GPU (graph.ErrNoGPU); a GPU that is there
// but does not open (kernels that do not compile, a missing cuBLAS) fails it instead,
// so that a broken GPU build never passes as a skip.
func CUDA(tb testing.TB) {
	tb.Helper()
	_, err := graph.OpenDevice("cuda")
	if errors.Is(err, graph.ErrNoGPU) {
		tb.Skipf("no CUDA device: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
}
