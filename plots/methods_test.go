package plots

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// fewShotMethods are the methods of the synthetic comparisons, logreg first as
// gorgoclip compare writes them; zs-lp and clap choose nothing on a validation set.
var fewShotMethods = []string{"logreg", "zs-lp", "clap", "lp++", "tip-adapter", "tip-adapter-f"}

// syntheticMethods is syntheticComparisonN with the first n of fewShotMethods: every
// method at k = 1..16 over 3 seeds, curves that cross, logreg also on the full set.
// The zero-shot lines and logreg's results are syntheticComparisonN's.
func syntheticMethods(names []string, n int) *results.Comparison {
	cmp := syntheticComparisonN(names)
	rng := rand.New(rand.NewPCG(5, 6))
	for j, m := range fewShotMethods[1:n] {
		for _, k := range []int{1, 2, 4, 8, 16} {
			// The few-shot methods start near zero-shot (84%) and rise slowly.
			acc := 0.78 + 0.01*float64(j) + (0.025-0.003*float64(j))*math.Log2(float64(k))
			for seed := int64(0); seed < 3; seed++ {
				a := acc + 0.02*(rng.Float64()-0.5)
				r := results.Result{Task: results.TaskLinearProbe, Method: m, Shots: k, Seed: seed,
					Train: len(names) * k, Test: 50 * len(names), Prompts: "a photo of a {}.",
					Metrics: map[string]results.Float{"lp_acc1": results.Float(a), "lp_acc5": results.Float(math.Min(1, a+0.05)),
						"lp_mean_per_class_recall": results.Float(a)}}
				if m != "zs-lp" && m != "clap" {
					r.Val = len(names) * min(k, 4)
				}
				cmp.Probes = append(cmp.Probes, r)
			}
		}
	}
	for i := range cmp.Probes {
		if cmp.Probes[i].Method == "" {
			cmp.Probes[i].Method = "logreg"
			cmp.Probes[i].Val = len(names) * min(cmp.Probes[i].Shots, 4)
			if cmp.Probes[i].Shots == 0 {
				cmp.Probes[i].Val = len(names) * 190 // the sweep's 20% of the full set
			}
		}
	}
	return cmp
}

// TestShotsFigureMethods draws the accuracy-against-shots figure with one and with six
// methods, at 10 and 100 classes, and checks that every method's colour is on it
// (PLOTS_REVIEW_DIR keeps the PNGs for looking at).
func TestShotsFigureMethods(t *testing.T) {
	for _, classes := range []int{10, 100} {
		for _, n := range []int{1, 6} {
			name := fmt.Sprintf("shots_%dmethods_%dclasses", n, classes)
			cmp := syntheticMethods(classNamesN(classes), n)
			f, err := ShotsFigure(cmp)
			saveAndCheck(t, f, err, name)
			base := filepath.Join(t.TempDir(), name)
			if err := f.Save(base); err != nil {
				t.Fatal(err)
			}
			img := decodePNG(t, base+".png")
			for j, m := range fewShotMethods[:n] {
				want := styleOf(j, m, true).colour
				if got := countColour(img, want); got < 200 {
					t.Errorf("%s: %s's colour %v on %d pixels, want its line and markers", name, m, want, got)
				}
			}
		}
	}
}

// TestShotsFigureOneMethod draws a comparison of one method that is not logreg: its
// curve in its own colour, with no full-set point.
func TestShotsFigureOneMethod(t *testing.T) {
	cmp := syntheticMethods(imagenette, 6)
	var clap []results.Result
	for _, r := range cmp.Probes {
		if r.Method == "clap" {
			clap = append(clap, r)
		}
	}
	cmp.Probes = clap
	f, err := ShotsFigure(cmp)
	saveAndCheck(t, f, err, "shots_clap_only")
	base := filepath.Join(t.TempDir(), "clap")
	if err := f.Save(base); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, base+".png")
	if n := countColour(img, styleOf(0, "clap", false).colour); n < 200 {
		t.Errorf("clap's colour on %d pixels", n)
	}
	if n := countColour(img, ProbeColour); n > 0 {
		t.Errorf("logreg's colour on %d pixels, with no logreg result", n)
	}
}

// countColour counts the pixels of img within a small distance of col.
func countColour(img image.Image, col color.Color) int {
	r0, g0, b0, _ := col.RGBA()
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if absDiff(r, r0)+absDiff(g, g0)+absDiff(bl, b0) < 3*0x0800 {
				n++
			}
		}
	}
	return n
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestStyleOf checks that the methods of a figure get distinct colours and markers,
// none of them the two first prompt sets' colours or chance's.
func TestStyleOf(t *testing.T) {
	seen := map[color.Color]string{PromptColour(0): "prompt set 1", PromptColour(1): "prompt set 2", chanceColour: "chance"}
	glyphs := map[any]string{}
	for j, m := range fewShotMethods {
		s := styleOf(j, m, true)
		if other, ok := seen[s.colour]; ok {
			t.Errorf("%s has the colour of %s", m, other)
		}
		if other, ok := glyphs[s.glyph]; ok {
			t.Errorf("%s has the marker of %s", m, other)
		}
		seen[s.colour], glyphs[s.glyph] = m, m
	}
	if s := styleOf(3, "logreg", false); s.colour != ProbeColour {
		t.Errorf("logreg in fourth place: colour %v, want ProbeColour", s.colour)
	}
}

// TestReportMethods checks the report's method table (mean ± std per method and k,
// validation sizes), the best method per k and the skipped fits.
func TestReportMethods(t *testing.T) {
	cmp := syntheticMethods(imagenette, 6)
	cmp.SkippedShots = results.SkippedShots{"logreg": {32}, "lp++": {32}, "zs-lp": {64}}
	_, report := writeReport(t, cmp, "report_methods")
	all := SummarizeMethods(cmp.Probes)
	if len(all) != 6+5*5 {
		t.Fatalf("%d method-k groups, want 31", len(all))
	}
	want := []string{"### Methods", "| Method | k = 1 | k = 2 | k = 4 | k = 8 | k = 16 | k = full | n_val |",
		`start from the zero-shot classifier of "a photo of a {}."`,
		"- No logreg, lp++ at k = 32:", "- No zs-lp at k = 64:", "- Best mean top-1 per k: k = 1: "}
	for _, m := range fewShotMethods {
		row := "| " + mdEscape(m) + " |"
		for _, s := range all {
			if s.Method == m {
				row += " " + pctStd(s.Acc1) + " |"
			}
		}
		switch m {
		case "logreg":
			row += " 10 / 20 / 40 / 40 / 40 / 1900 |"
		case "zs-lp", "clap":
			row += " – | none |"
		default:
			row += " – | 10 / 20 / 40 / 40 / 40 / – |"
		}
		want = append(want, row)
	}
	for _, w := range want {
		if !strings.Contains(report, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	// The best method per k is the one with the highest mean.
	for _, k := range []int{1, 16} {
		var best ShotStats
		for _, s := range all {
			if s.Shots == k && s.Acc1.Mean > best.Acc1.Mean {
				best = s
			}
		}
		if w := fmt.Sprintf("k = %d: %s (%.1f%%)", k, mdEscape(best.Method), 100*best.Acc1.Mean); !strings.Contains(report, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	// The paper's statistics stay logreg's: its table and the match with zero-shot.
	if !strings.Contains(report, "### Linear probes (logreg)") || !strings.Contains(report, "matches a **") {
		t.Errorf("report lost the linear probe's table or match line")
	}
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}

// TestSummarizeMethods checks grouping by method in order of appearance, with results
// that name no method counted as logreg's, and summaries read back per method.
func TestSummarizeMethods(t *testing.T) {
	mk := func(m string, k int, a float64, val int) results.Result {
		return results.Result{Method: m, Shots: k, Val: val, Metrics: map[string]results.Float{"lp_acc1": results.Float(a)}}
	}
	rs := []results.Result{mk("clap", 4, 0.6, 0), mk("", 4, 0.5, 40), mk("logreg", 4, 0.7, 40), mk("clap", 1, 0.4, 0), mk("logreg", 0, 0.9, 200)}
	got := SummarizeMethods(rs)
	want := []struct {
		method   string
		k, seeds int
		mean     float64
		val      int
	}{{"clap", 1, 1, 0.4, 0}, {"clap", 4, 1, 0.6, 0}, {"logreg", 4, 2, 0.6, 40}, {"logreg", 0, 1, 0.9, 200}}
	if len(got) != len(want) {
		t.Fatalf("got %d groups want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Method != w.method || g.Shots != w.k || g.Seeds != w.seeds || math.Abs(g.Acc1.Mean-w.mean) > 1e-12 || g.Val != w.val {
			t.Errorf("test %d: got %+v want %+v", i, g, w)
		}
	}
	if p := SummarizeProbes(rs); len(p) != 2 || p[0].Method != "logreg" || p[0].Seeds != 2 {
		t.Errorf("SummarizeProbes: got %+v, want logreg's two k", p)
	}
	cmp := &results.Comparison{Summary: []results.ShotSummary{{Shots: 4, Seeds: 3, Mean: 0.5}, {Method: "clap", Shots: 2, Seeds: 3, Mean: 0.6, Val: 0},
		{Method: "clap", Shots: 1, Seeds: 3, Mean: 0.55}}}
	ms := methodStats(cmp)
	if len(ms) != 3 || ms[0].Method != "logreg" || ms[1].Method != "clap" || ms[1].Shots != 1 || ms[2].Shots != 2 {
		t.Errorf("from a summary: got %+v", ms)
	}
}
