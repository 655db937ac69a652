package cli

import (
	"fmt"
	"path/filepath"

	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/plots"
)

func init() {
	register(Command{Name: "report", Summary: "draw the plots and the Markdown report of a compare results file", Run: runReport})
}

// runReport re-draws the figures and report.md of a results.json written by compare.
func runReport(env *Env, args []string) error {
	fs := newFlags(env, "report", "--results DIR/results.json [--out DIR]")
	resultsPath := fs.String("results", "", "results `file` written by gorgoclip compare (required)")
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
	dir := *out
	if dir == "" {
		dir = filepath.Dir(*resultsPath)
	}
	var cmp results.Comparison
	if err := results.Load(*resultsPath, &cmp); err != nil {
		return err
	}
	if len(cmp.ZeroShot) == 0 && len(cmp.Probes) == 0 && len(cmp.Summary) == 0 {
		return fmt.Errorf("%s holds no zero-shot or linear-probe results (is it a gorgoclip compare results.json?)", *resultsPath)
	}
	if err := plots.Report(&cmp, dir); err != nil {
		return err
	}
	_, err := fmt.Fprintf(env.Stdout, "wrote %s\n", filepath.Join(dir, plots.FileReport))
	return err
}
