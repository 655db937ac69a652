package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/layers/clip"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

func init() {
	register(Command{
		Name:    "grad",
		Summary: "gradients of CLIP's cross-entropy loss with respect to pixels and token embeddings",
		Run:     runGrad,
	})
}

// runGrad implements `gorgoclip grad --weights DIR --pixels X.npy --tokens T.npy
// --targets Y.npy -o OUTDIR [--device cuda]`: L = sum_i cross_entropy(logits_per_image[i,:], y_i)
// over all M prompts, logits_per_image = exp(logit_scale) * norm(img) @ norm(txt)^T;
// OUTDIR/pixels_grad.npy [N,3,R,R] is dL/dpixels and OUTDIR/token_embeddings_grad.npy
// [M,L,W] dL/d the token embeddings before the positional embedding is added.
func runGrad(env *Env, args []string) error {
	fs := newFlags(env, "grad", "--weights DIR --pixels X.npy --tokens T.npy --targets Y.npy -o OUTDIR")
	weightsDir := fs.String("weights", "", "checkpoint directory (any layout embed accepts)")
	pixels := fs.String("pixels", "", "float32 .npy of CLIP-normalised images [N,3,R,R]")
	tokens := fs.String("tokens", "", "integer .npy of token ids [M,L], zero padded, L <= the context length")
	targets := fs.String("targets", "", "integer .npy [N]: the prompt (row of --tokens) each image should match")
	out := fs.String("o", "", "output directory for pixels_grad.npy and token_embeddings_grad.npy")
	batch := fs.Int("batch", clip.DefaultBatchSize, "images or prompts per graph run")
	device := fs.String("device", "cpu", deviceHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, f := range []struct{ name, val string }{{"--weights", *weightsDir}, {"--pixels", *pixels},
		{"--tokens", *tokens}, {"--targets", *targets}, {"-o", *out}} {
		if f.val == "" {
			return Usagef("%s is required", f.name)
		}
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected arguments %q", fs.Args())
	}
	if *batch < 1 {
		return Usagef("--batch %d must be at least 1", *batch)
	}
	start := time.Now()
	m, err := clip.Load(*weightsDir, clip.WithBatchSize(*batch), clip.WithDevice(*device))
	if err != nil {
		return err
	}
	defer m.Close()
	cfg := m.Config()
	px, n, err := readPixels(*pixels, cfg.Vision.ImageResolution)
	if err != nil {
		return err
	}
	ids, l, err := readTokens(*tokens, cfg.Text)
	if err != nil {
		return err
	}
	rows := len(ids) / l
	y, err := npy.ReadInt64(*targets)
	if err != nil {
		return err
	}
	if len(y.Shape) != 1 || y.Shape[0] != n {
		return fmt.Errorf("%s: targets have shape %v, want [%d] (one per image of %s)", *targets, y.Shape, n, *pixels)
	}
	tgt := make([]int, n)
	for i, v := range y.Data {
		if v < 0 || v >= int64(rows) {
			return fmt.Errorf("%s: target %d of image %d is not a row of %s (it has %d prompts)", *targets, v, i, *tokens, rows)
		}
		tgt[i] = int(v)
	}
	fmt.Fprintf(env.Stderr, "grad: %d images against %d prompts\n", n, rows)
	g, err := m.Gradients(px, n, ids, rows, tgt)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	r := cfg.Vision.ImageResolution
	for _, f := range []struct {
		name  string
		shape []int
		data  []float32
	}{{"pixels_grad.npy", []int{n, 3, r, r}, g.Pixels}, {"token_embeddings_grad.npy", []int{rows, l, cfg.Text.Width}, g.TokenEmbeddings}} {
		if err := npy.WriteFloat32(filepath.Join(*out, f.name), f.shape, f.data); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stderr, "grad: loss %.6g; wrote pixels_grad.npy and token_embeddings_grad.npy to %s in %.1fs\n",
		g.Value, *out, time.Since(start).Seconds())
	return nil
}

// readPixels reads CLIP-normalised images [N,3,R,R] (or one image [3,R,R]) for a
// tower of resolution r, returning the data and N.
func readPixels(path string, r int) ([]float32, int, error) {
	p, err := npy.ReadFloat32(path)
	if err != nil {
		return nil, 0, err
	}
	shape := p.Shape
	if len(shape) == 3 {
		shape = append([]int{1}, shape...)
	}
	if len(shape) != 4 || shape[0] == 0 || shape[1] != 3 || shape[2] != r || shape[3] != r {
		return nil, 0, fmt.Errorf("%s: pixels have shape %v, the model wants [N,3,%d,%d] (gorgoclip preprocess --size %d)", path, p.Shape, r, r, r)
	}
	return p.Data, shape[0], nil
}

// readTokens reads token ids [M,L] for text tower tc, checking the shape and the
// vocabulary, and returns them with L.
func readTokens(path string, tc layers.TextConfig) ([]int32, int, error) {
	t, err := npy.ReadInt64(path)
	if err != nil {
		return nil, 0, err
	}
	if len(t.Shape) != 2 || t.Shape[0] == 0 || t.Shape[1] == 0 || t.Shape[1] > tc.ContextLength {
		return nil, 0, fmt.Errorf("%s: tokens have shape %v, want [M,L] with 1 <= L <= %d", path, t.Shape, tc.ContextLength)
	}
	ids := make([]int32, len(t.Data))
	for i, v := range t.Data {
		if v < 0 || v >= int64(tc.VocabSize) {
			return nil, 0, fmt.Errorf("%s: token %d at row %d is outside the vocabulary [0,%d)", path, v, i/t.Shape[1], tc.VocabSize)
		}
		ids[i] = int32(v)
	}
	return ids, t.Shape[1], nil
}
