package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/plots"
)

const reportHelp = `--results FILE [--out DIR]

Draws the figures (PNG and SVG) and report.md of a results file: the results.json of
gorgoclip compare, the zeroshot.json of gorgoclip zeroshot, a probe result, or a
results.jsonl export. The image-text similarity figure is drawn by compare from the
images themselves; report copies it from beside the results file when --out is
elsewhere, and says so when there is none.`

func init() {
	register(Command{Name: "report", Summary: "draw the plots and the Markdown report of a results file", Run: runReport})
}

// runReport re-draws the figures and report.md of a results file.
func runReport(env *Env, args []string) error {
	fs := newFlags(env, "report", reportHelp)
	resultsPath := fs.String("results", "", "results `file` written by gorgoclip compare, zeroshot or probe (required)")
	out := fs.String("out", "", "output `directory` for the figures (PNG and SVG) and report.md (default: the results file's directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected arguments %q", fs.Args())
	}
	if *resultsPath == "" {
		return Usagef("--results is required")
	}
	from := filepath.Dir(*resultsPath)
	dir := *out
	if dir == "" {
		dir = from
	}
	cmp, err := results.LoadComparison(*resultsPath)
	if err != nil {
		return err
	}
	copied, err := copySimilarity(from, dir)
	if err != nil {
		return err
	}
	if !copied {
		fmt.Fprintf(env.Stderr, "report: no %s.png in %s: the image-text similarity figure is drawn by gorgoclip compare from the images, which results files do not hold\n", plots.FileSimilarity, from)
	}
	if err := plots.Report(cmp, dir); err != nil {
		return err
	}
	_, err = fmt.Fprintf(env.Stdout, "wrote %s\n", filepath.Join(dir, plots.FileReport))
	return err
}

// copySimilarity makes sure dir has the similarity figure that compare drew in from,
// copying its PNG and SVG when dir is another folder. It reports whether dir has it.
func copySimilarity(from, dir string) (bool, error) {
	for _, ext := range []string{".png", ".svg"} {
		src := filepath.Join(from, plots.FileSimilarity+ext)
		b, err := os.ReadFile(src)
		if errors.Is(err, fs.ErrNotExist) {
			if ext == ".png" {
				return false, nil
			}
			continue
		}
		if err != nil {
			return false, err
		}
		dst := filepath.Join(dir, plots.FileSimilarity+ext)
		if same, _ := sameFile(src, dst); same {
			continue
		}
		if err := atomicfile.WriteBytes(dst, b); err != nil {
			return false, err
		}
	}
	return true, nil
}

// sameFile reports whether a and b are the same file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
