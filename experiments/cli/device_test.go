package cli

import (
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/graph"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// TestDeviceFlag: every model command takes --device; in a build without CUDA,
// --device cuda fails with the message that says how to get one.
func TestDeviceFlag(t *testing.T) {
	for _, cmd := range []string{"embed", "zeroshot", "compare", "bench"} {
		_, _, errOut := run("", cmd, "--help")
		if !strings.Contains(errOut, "-device") {
			t.Errorf("%s --help does not mention --device:\n%s", cmd, errOut)
		}
	}
	if graph.CUDA {
		t.Skip("this build has CUDA")
	}
	const want = "this gorgoclip was built without CUDA; build it with make cuda"
	code, _, errOut := run("", "bench", "--device", "cuda", "--batch", "1", "--iters", "1")
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("bench --device cuda: exit %d, stderr %q", code, errOut)
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	code, _, errOut = run("", "embed", "--device", "cuda", "--weights", weights, "--pixels", "x.npy", "-o", t.TempDir()+"/o.npy")
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("embed --device cuda: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = run("", "zeroshot", "--device", "cuda", "--weights", weights, "--vocab", testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz"), "--dataset", "imagefolder:"+t.TempDir())
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("zeroshot --device cuda: exit %d, stderr %q", code, errOut)
	}
}
