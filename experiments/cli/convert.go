package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
	"github.com/gorgoclip/gorgoclip/internal/scratch"
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
// layers.Config config.json (weights.Save) and the tokenizer files into a scratch
// directory beside --to, which then replaces --to whole: an interrupted or failed
// conversion leaves --to as it was, never a mix of two models.
func runConvert(env *Env, args []string) error {
	fs := newFlags(env, "convert", "--from DIR --to DIR")
	from := fs.String("from", "", "checkpoint directory: Hugging Face (config.json + model.safetensors or pytorch_model.bin) or OpenAI-named .npy files")
	to := fs.String("to", "", "output directory: new, empty, or an earlier conversion, which is replaced")
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
	if err := replaceable(*to); err != nil {
		return err
	}
	ck, err := weights.Load(*from)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(env.Stderr, "read %d tensors (%s) from %s\n", len(ck.Tensors), ck.Format, *from); err != nil {
		return err
	}
	parent, prefix := filepath.Dir(*to), "."+filepath.Base(*to)+".convert"
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	if _, err := scratch.CleanStale(parent, prefix); err != nil {
		return fmt.Errorf("removing what killed conversions left: %w", err)
	}
	tmp, err := scratch.Dir(parent, prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed; on failure, with the partial output
	if err := weights.Save(ck, tmp); err != nil {
		return err
	}
	var copied []string
	for _, name := range tokenizerFiles {
		src := filepath.Join(*from, name)
		if _, err := os.Stat(src); os.IsNotExist(err) {
			continue
		}
		if err := copyFileAtomic(src, filepath.Join(tmp, name)); err != nil {
			return err
		}
		copied = append(copied, name)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it private
		return err
	}
	if err := replaceDir(tmp, *to, parent, prefix); err != nil {
		return err
	}
	c := ck.Config
	_, err = fmt.Fprintf(env.Stderr, "wrote %s (tokenizer files copied: %s): embed %d; vision %v; text width %d x %d layers, %d heads\n",
		*to, cmp.Or(strings.Join(copied, ", "), "none"), c.EmbedDim, c.Vision, c.Text.Width, c.Text.Layers, c.Text.Heads)
	return err
}

// replaceable refuses an existing --to that holds anything but what convert writes
// (an earlier conversion), since the whole directory is replaced.
func replaceable(to string) error {
	ents, err := os.ReadDir(to)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	var foreign []string
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(name, ".npy") || name == "config.json" || slices.Contains(tokenizerFiles, name)) {
			foreign = append(foreign, name)
		}
	}
	if len(foreign) > 0 {
		return Usagef("--to %s holds %s, which convert did not write; it replaces the whole directory, so give a new or empty one", to, strings.Join(foreign, ", "))
	}
	return nil
}

// replaceDir puts the finished directory tmp at to: a rename when to does not
// exist, else a rename of the old directory out of the way (to a scratch name, so
// that a run killed in between leaves it for the next run to remove), a rename of
// tmp into place, and the removal of the old one. to never holds a mix.
func replaceDir(tmp, to, parent, prefix string) error {
	err := os.Rename(tmp, to)
	if err == nil || !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOTEMPTY) {
		return err
	}
	old, err := scratch.Dir(parent, prefix)
	if err != nil {
		return err
	}
	if err := os.Rename(to, filepath.Join(old, "previous")); err != nil {
		os.RemoveAll(old)
		return err
	}
	if err := os.Rename(tmp, to); err != nil {
		os.Rename(filepath.Join(old, "previous"), to) // put it back
		os.RemoveAll(old)
		return err
	}
	return os.RemoveAll(old)
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
