package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
)

// Export names: the folder of one-result files and the JSON-lines file.
const (
	// CLIPBenchmarkDir holds one JSON object per result, named as CLIP_benchmark
	// names its outputs, so that `clip_benchmark build DIR/*.json` reads them.
	CLIPBenchmarkDir = "clip_benchmark"
	// JSONLinesFile holds the same objects one a line (pandas.read_json(lines=True)).
	JSONLinesFile = "results.jsonl"
)

// Flat returns each result of cmp as CLIP_benchmark writes one: dataset, model,
// pretrained, task, metrics, language and the scalars beside them (prompts,
// fewshot_k, seed, C, n_train, n_test) with cmp's provenance, but without the
// per-class arrays, which CLIP_benchmark's build step would flatten into CSV cells.
func Flat(cmp *Comparison) []Result {
	var out []Result
	for _, r := range append(append([]Result{}, cmp.ZeroShot...), cmp.Probes...) {
		r.ClassNames, r.PerClassAccuracy, r.Confusion, r.PerTemplate, r.Skipped = nil, nil, nil, nil, nil
		if r.Language == "" {
			r.Language = cmp.Language
		}
		r.Provenance = cmp.Provenance
		out = append(out, r)
	}
	return out
}

// WriteCLIPBenchmark writes Flat(cmp) into dir: one file per result in
// dir/CLIPBenchmarkDir, named {dataset}_{pretrained}_{model}_{language}_{task}
// plus the prompt set, or the method (unless logreg), k and seed, and all of them to dir/JSONLinesFile. It
// returns the paths written. cmp's Provenance should be stamped already.
func WriteCLIPBenchmark(dir string, cmp *Comparison) ([]string, error) {
	var lines bytes.Buffer
	var paths []string
	seen := map[string]int{}
	for _, r := range Flat(cmp) {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("results: encoding a %s result: %w", r.Task, err)
		}
		lines.Write(b)
		lines.WriteByte('\n')
		name := strings.Join([]string{fileSlug(r.Dataset), fileSlug(r.Pretrained), fileSlug(r.Model), fileSlug(r.Language), r.Task}, "_")
		if r.Task == TaskLinearProbe {
			// The paper's probe keeps CLIP_benchmark's name; other methods add theirs.
			if m := r.MethodName(); m != MethodLogReg {
				name += "_" + fileSlug(strings.ReplaceAll(m, "+", "plus")) // lp++: lpplusplus
			}
			name += fmt.Sprintf("_k%d_seed%d", fewshotK(r.Shots), r.Seed)
		} else {
			name += "_" + fileSlug(r.Prompts)
		}
		if n := seen[name]; n > 0 {
			name += fmt.Sprintf("_%d", n+1)
		}
		seen[name]++
		path := filepath.Join(dir, CLIPBenchmarkDir, name+".json")
		if err := atomicfile.WriteBytes(path, append(b, '\n')); err != nil {
			return nil, fmt.Errorf("results: %w", err)
		}
		paths = append(paths, path)
	}
	path := filepath.Join(dir, JSONLinesFile)
	if err := atomicfile.WriteBytes(path, lines.Bytes()); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return append(paths, path), nil
}

// fileSlug keeps letters, digits, '.', '-' and '_' and turns runs of anything else
// into one '-': "ViT-B/32" becomes "ViT-B-32", "a photo of a {}." "a-photo-of-a".
func fileSlug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 48 {
			break
		}
	}
	out := strings.Trim(b.String(), "-.")
	if out == "" {
		return "none"
	}
	return out
}
