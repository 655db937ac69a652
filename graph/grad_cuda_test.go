//go:build gorgoclip_cuda

package graph

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// TestCUDAGradients runs every gradient check of the CPU suite (whose gradients are
// checked against finite differences there) on the device: outputs and gradients
// must match the CPU's.
func TestCUDAGradients(t *testing.T) {
	dev := cudaOrSkip(t)
	check := func(c gradCase, dy []float32) {
		t.Run(c.name, func(t *testing.T) {
			both(t, dev, gradInputs(c, dy), func(b *Builder) error {
				_, err := gradGraph(b, c)
				return err
			})
		})
	}
	for _, c := range append(linearGradCases(), opGradCases()...) {
		check(c, gradSeed(c))
	}
	rng := rand.New(rand.NewPCG(61, 62))
	for _, c := range deviceGradCases() {
		check(c.gradCase, randn(rng, c.out, 1))
	}
}

// deviceGradCase is a gradient case checked on the device against the CPU only (ref
// is nil): sizes past the CPU suite's, where finite differences would be slow, for
// the kernels' paths over several warps and blocks. out is the output's size.
type deviceGradCase struct {
	gradCase
	out int
}

// deviceGradCases: self-attention over 50 tokens and 8 heads (rows longer than a
// warp, several blocks of rows), the attention pool over more tokens than its
// blocks have threads, and the patch embeddings of 3 images of 4x4 patches.
func deviceGradCases() []deviceGradCase {
	rng := rand.New(rand.NewPCG(63, 64))
	in := func(shape ...int) gradIn {
		n := 1
		for _, s := range shape {
			n *= s
		}
		return gradIn{shape: shape, data: randn(rng, n, 1)}
	}
	var cases []deviceGradCase
	for _, causal := range []bool{false, true} {
		const bsz, seq, heads, d = 2, 50, 8, 64
		cases = append(cases, deviceGradCase{gradCase{name: fmt.Sprintf("Attention{T=%d,H=%d,causal=%v}", seq, heads, causal),
			in: []gradIn{in(bsz*seq, 3*d)},
			build: func(b *Builder, x []*G.Node) (*G.Node, error) {
				return Attention("attn", x[0], bsz, seq, heads, causal)
			}}, bsz * seq * d})
	}
	const bsz, seq, heads, d = 2, 150, 4, 256
	cases = append(cases, deviceGradCase{gradCase{name: fmt.Sprintf("QueryAttention{T=%d,H=%d}", seq, heads),
		in: []gradIn{in(bsz, d), in(bsz*seq, 2*d)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) {
			return QueryAttention("qa", x[0], x[1], bsz, seq, heads)
		}}, bsz * d})
	const imgs, r, p, w = 3, 12, 3, 20
	t := (r/p)*(r/p) + 1
	cases = append(cases, deviceGradCase{gradCase{name: "PatchEmbed{B=3,R=12,P=3}",
		in: []gradIn{in(imgs, 3*r*r), in(w, 3*p*p), in(w), in(t, w)},
		build: func(b *Builder, x []*G.Node) (*G.Node, error) {
			return PatchEmbed("embed", x[0], x[1], x[2], x[3], imgs, r, p)
		}}, imgs * t * w})
	return cases
}

// TestCUDAConvGradChunks runs the convolution cases with the GPU's im2col scratch
// bounded to 7*27 floats: chunks of 7 output pixels (10 for the 18-wide receptive
// fields; the 1x1 case runs whole) end inside images of 20, 9 and 12 pixels, so col2im
// adds to what the previous chunk wrote and dW accumulates over chunks.
func TestCUDAConvGradChunks(t *testing.T) {
	dev := cudaOrSkip(t)
	for _, c := range opGradCases() {
		if !strings.HasPrefix(c.name, "Conv2d") {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			withConvChunk(7, 27, func() {
				both(t, dev, gradInputs(c, gradSeed(c)), func(b *Builder) error {
					_, err := gradGraph(b, c)
					return err
				})
			})
		})
	}
}

// TestCUDAAttentionProbs checks the attention maps on the device against the CPU's.
func TestCUDAAttentionProbs(t *testing.T) {
	dev := cudaOrSkip(t)
	rng := rand.New(rand.NewPCG(41, 42))
	const bsz, seq, heads, d = 2, 5, 3, 12
	qkv := randn(rng, bsz*seq*3*d, 1)
	for _, causal := range []bool{false, true} {
		both(t, dev, map[string][]float32{"qkv": qkv}, func(b *Builder) error {
			attn, err := Attention("attn", b.Input("qkv", bsz*seq, 3*d), bsz, seq, heads, causal)
			if err != nil {
				return err
			}
			probs, err := AttentionProbs("probs", attn)
			if err != nil {
				return err
			}
			if err := b.Output("attn", attn); err != nil {
				return err
			}
			return b.Output("probs", probs)
		})
	}
}

// TestCUDAHostSeed seeds a device backward pass from a host function of the forward
// result (L = sum(y^2)/2, so dL/dy = y) in one run, and checks that a failing host
// function fails the run with its error.
func TestCUDAHostSeed(t *testing.T) {
	dev := cudaOrSkip(t)
	rng := rand.New(rand.NewPCG(51, 52))
	const n, nin, nout = 3, 4, 2
	x, w := randn(rng, n*nin, 1), randn(rng, nout*nin, 1)
	both(t, dev, map[string][]float32{"x": x}, func(b *Builder) error {
		xn := b.Input("x", n, nin)
		y, err := Linear("fc", xn, param(b, "w", w, nout, nin), LinearOptions{})
		if err != nil {
			return err
		}
		seed, err := Host("loss", func(out []float32, in [][]float32) error {
			copy(out, in[0])
			return nil
		}, y.Shape(), y)
		if err != nil {
			return err
		}
		g, err := b.Backward([]*G.Node{y}, []*G.Node{seed}, []*G.Node{xn})
		if err != nil {
			return err
		}
		if err := b.Output("y", y); err != nil {
			return err
		}
		return b.Output("dx", g[0])
	})
	b := NewBuilderOn(dev)
	h, err := Host("fails", func([]float32, [][]float32) error { return errHost }, []int{2, 2}, b.Input("x", 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	m := compileOutput(t, b, "h", h)
	if _, err := m.Run(map[string][]float32{"x": make([]float32, 4)}); err == nil || !strings.Contains(err.Error(), errHost.Error()) {
		t.Errorf("a failing host function gave %v", err)
	}
}

var errHost = errors.New("the host function failed")
