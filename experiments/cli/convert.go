package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
	"github.com/gorgoclip/gorgoclip/loaders/weights"
)

func init() {
	register(Command{
		Name:    "convert",
		Summary: "convert a Hugging Face or OpenAI checkpoint directory to gorgoclip's own layout",
		Run:     runConvert,
	})
}

// tokenizerFiles are the BPE files a checkpoint directory may carry beside its
// weights: OpenAI's merges list, and Hugging Face's merges and vocabulary. convert
// copies them so that the converted directory still tokenizes on its own.
var tokenizerFiles = []string{"bpe_simple_vocab_16e6.txt.gz", "merges.txt", "vocab.json"}

// runConvert implements `gorgoclip convert --from DIR --to DIR`: load any layout
// weights.Load reads, check it, and write OpenAI-named float32 .npy files plus a
// layers.Config config.json (weights.Save), then copy the tokenizer files.
func runConvert(env *Env, args []string) error {
	fs := newFlags(env, "convert", "--from DIR --to DIR")
	from := fs.String("from", "", "checkpoint directory: Hugging Face (config.json + model.safetensors or pytorch_model.bin) or OpenAI-named .npy files")
	to := fs.String("to", "", "output directory (created; must not hold another model's .npy files)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *from == "":
		return Usagef("--from DIR is required")
	case *to == "":
		return Usagef("--to DIR is required")
	case fs.NArg() > 0:
		return Usagef("unexpected arguments %q", fs.Args())
	}
	if same, err := sameDir(*from, *to); err != nil {
		return err
	} else if same {
		return Usagef("--from and --to are the same directory %s", *from)
	}
	ck, err := weights.Load(*from)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "read %d tensors (%s) from %s\n", len(ck.Tensors), ck.Format, *from)
	if err := weights.Save(ck, *to); err != nil {
		return err
	}
	for _, name := range tokenizerFiles {
		src := filepath.Join(*from, name)
		if _, err := os.Stat(src); os.IsNotExist(err) {
			continue
		}
		if err := copyFileAtomic(src, filepath.Join(*to, name)); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "copied %s\n", name)
	}
	c := ck.Config
	fmt.Fprintf(env.Stderr, "wrote %s: embed %d; vision %v; text width %d x %d layers, %d heads\n",
		*to, c.EmbedDim, c.Vision, c.Text.Width, c.Text.Layers, c.Text.Heads)
	return nil
}

// sameDir reports whether a and b name the same existing directory; converting in
// place would mix the source's files with the output's.
func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, fmt.Errorf("--from: %w", err)
	}
	sb, err := os.Stat(b)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("--to: %w", err)
	}
	return os.SameFile(sa, sb), nil
}

// copyFileAtomic copies src to dst so that dst is never seen half-written.
func copyFileAtomic(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return atomicfile.Write(dst, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}
