package cli

import (
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/gorgoclip/gorgoclip/loaders/images"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

func init() {
	register(Command{
		Name:    "preprocess",
		Summary: "decode images and apply CLIP preprocessing, writing float32 pixels to .npy",
		Run:     runPreprocess,
	})
}

// runPreprocess implements `gorgoclip preprocess --size N -o OUT.npy IMAGE...`: one
// image gives [3,N,N], several give [K,3,N,N], CLIP-normalised as OpenAI's _transform(N).
func runPreprocess(env *Env, args []string) error {
	fs := newFlags(env, "preprocess", "[--size N] [--workers W] -o OUT.npy IMAGE...")
	size := fs.Int("size", 224, "output side N (224 for ViT-B/32 and B/16, 336 for L/14@336)")
	out := fs.String("o", "", "output .npy: float32 [3,N,N] for one image, [K,3,N,N] for K > 1")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "images decoded in parallel")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *out == "":
		return Usagef("-o OUT.npy is required")
	case len(paths) == 0:
		return Usagef("no IMAGE given")
	case *size < 1 || *size > images.MaxSize:
		return Usagef("--size %d out of range 1..%d", *size, images.MaxSize)
	case *workers < 1:
		return Usagef("--workers %d must be at least 1", *workers)
	}
	start := time.Now()
	pixels, err := images.PreprocessFiles(paths, *size, *workers)
	if err != nil {
		return err
	}
	shape := []int{len(paths), 3, *size, *size}
	if len(paths) == 1 {
		shape = shape[1:]
	}
	if err := npy.WriteFloat32(*out, shape, pixels); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "preprocess: %d image(s) at %dx%d -> %s %v (%.1fs)\n",
		len(paths), *size, *size, *out, shape, time.Since(start).Seconds())
	return nil
}

// parseInterspersed parses fs from args allowing flags after positional arguments
// (`preprocess a.jpg -o x.npy`), and returns the positional ones; everything after
// "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		before := len(args)
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := args[:before-len(rest)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
