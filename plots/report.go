package plots

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// MaxSimilarityClasses is how many classes the similarity figure shows at most: one
// test image each, against those classes' prompts.
const MaxSimilarityClasses = 8

// File names (without extension) of the figures Report writes. Confusion matrices
// are named ConfusionZeroShotPrefix + "<i>_<prompt-slug>" and ConfusionProbePrefix +
// "full" or "<k>shot".
const (
	FileShots               = "accuracy_vs_shots"
	FileTemplates           = "zeroshot_templates"
	FilePerClass            = "per_class_accuracy"
	ConfusionZeroShotPrefix = "confusion_zeroshot_"
	ConfusionProbePrefix    = "confusion_probe_"
	// FileSimilarity is the image-text similarity heatmap that the experiment writes
	// itself (Report cannot: results files hold no images); Report embeds it when
	// present and says so when not.
	FileSimilarity = "similarity"
	// FileReport is the Markdown report.
	FileReport = "report.md"
)

// Report writes every figure that cmp has data for into dir (PNG and SVG, see the
// File constants) and a Markdown report dir/report.md that embeds them by relative
// path, with the numbers behind them: zero-shot top-1, top-5 and mean per-class
// recall per prompt set, the linear probe's (logreg's) metrics per k as mean ± std
// over seeds, and for each prompt set the k at which that probe matches zero-shot
// (interpolated on log2 k). With several methods it adds a table of method against
// k (top-1 mean ± std over seeds, and each method's validation sizes), the best
// method at each k, and which methods were skipped at which k.
func Report(cmp *results.Comparison, dir string) error {
	if cmp == nil {
		return errors.New("plots: report: nil comparison")
	}
	stats, all := comparisonStats(cmp), methodStats(cmp)
	hasProbe := false
	for _, s := range all {
		hasProbe = hasProbe || !math.IsNaN(s.Acc1.Mean)
	}
	if !hasProbe && len(cmp.ZeroShot) == 0 {
		return fmt.Errorf("plots: report for %s: the comparison has no zero-shot or probe results", dir)
	}
	names := classNames(cmp)
	var md strings.Builder
	save := func(f Figure, err error, name string) error {
		if err != nil {
			return err
		}
		return f.Save(filepath.Join(dir, name))
	}

	title := DatasetLabel(cmp.Dataset)
	if title == "" {
		title = "CLIP"
	}
	fmt.Fprintf(&md, "# %s: zero-shot CLIP against linear probes\n\n", mdEscape(title))
	writeInfo(&md, cmp, all, names)

	md.WriteString("## Summary\n\n")
	writeMatches(&md, cmp, stats)
	writeBest(&md, all)
	writeSkipped(&md, cmp, all)
	md.WriteString("\n")

	if hasProbe {
		f, err := ShotsFigure(cmp)
		if err := save(f, err, FileShots); err != nil {
			return err
		}
		md.WriteString("## Accuracy against shots\n\n")
		what := "Linear-probe top-1 accuracy"
		if len(curves(all)) > 1 {
			what = "Top-1 accuracy of each method (its own colour and marker)"
		}
		md.WriteString(what + " against the number of training images per class " +
			"(log2 axis; \"full\" is the whole training set, after the break, with its images per class), " +
			"the mean over seeds with a band of one standard deviation, each zero-shot prompt set as a " +
			"horizontal line labelled at its right end (shaded: its 95% interval), and chance as a dotted " +
			"line (the CLIP paper's Figure 6).\n\n")
		embed(&md, "Accuracy against shots", FileShots)
	}
	writeTables(&md, cmp, stats, all)

	if len(cmp.ZeroShot) > 0 {
		f, err := TemplatesFigure(cmp)
		if err := save(f, err, FileTemplates); err != nil {
			return err
		}
		md.WriteString("## Prompt templates\n\nZero-shot top-1 accuracy of each prompt set")
		if ref, ok := referenceProbe(stats); ok {
			fmt.Fprintf(&md, ", against the %s (dashed)", probeName(ref.Shots))
		}
		md.WriteString(".\n\n")
		embed(&md, "Zero-shot top-1 by prompt set", FileTemplates)
	}

	md.WriteString("## Image-text similarity\n\n")
	if _, err := os.Stat(filepath.Join(dir, FileSimilarity+".png")); err == nil {
		md.WriteString("Cosine similarity between test images (the first test image of each of up to " +
			fmt.Sprint(MaxSimilarityClasses) + " classes, captioned with its true label) and those classes' " +
			"zero-shot text embeddings with the best prompt set, as in OpenAI's CLIP notebook: the diagonal " +
			"is the right class.\n\n")
		embed(&md, "Image-text cosine similarity", FileSimilarity)
	} else {
		fmt.Fprintf(&md, "No figure: %s.png is drawn by gorgoclip compare from the test images, which results "+
			"files do not hold, and there is none in this directory.\n\n", FileSimilarity)
	}

	// Per-class accuracy: the best prompt set against the reference probe.
	var series []Series
	var captions []string
	if i, ok := BestZeroShot(cmp.ZeroShot); ok {
		if v := perClass(cmp.ZeroShot[i]); len(v) == len(names) {
			series = append(series, Series{Name: "zero-shot, " + promptLabel(cmp.ZeroShot[i], i), Values: v, Colour: PromptColour(i)})
			captions = append(captions, fmt.Sprintf("zero-shot with the best prompt set (%s)", quoted(cmp.ZeroShot[i], i)))
		}
	}
	ref, hasRef := referenceProbe(stats)
	if hasRef {
		if v := probePerClass(paperProbes(cmp.Probes), ref.Shots, len(names)); v != nil {
			series = append(series, Series{Name: "linear probe, " + shotsName(ref.Shots) + seedsSuffix(ref.Seeds), Values: v, Colour: ProbeColour})
			captions = append(captions, "the "+probeName(ref.Shots)+seedsSuffix(ref.Seeds))
		}
	}
	if len(series) > 0 && len(names) > 0 {
		f, err := PerClassFigure(fmt.Sprintf("%s, %s: accuracy per class", DatasetLabel(cmp.Dataset), ModelName(cmp.Model, cmp.Pretrained)), names, series)
		if err := save(f, err, FilePerClass); err != nil {
			return err
		}
		md.WriteString("## Per-class accuracy\n\n")
		fmt.Fprintf(&md, "Accuracy on each class's test images: %s, sorted by the first", strings.Join(captions, " against "))
		if len(names) > MaxClassRows {
			fmt.Fprintf(&md, "; the best and the worst %d of the %d classes", MaxClassRows/2, len(names))
		}
		md.WriteString(".\n\n")
		embed(&md, "Per-class accuracy", FilePerClass)
	}

	// Confusion matrices.
	var conf strings.Builder
	for i, r := range cmp.ZeroShot {
		if len(r.Confusion) == 0 {
			continue
		}
		name := fmt.Sprintf("%s%d_%s", ConfusionZeroShotPrefix, i+1, slug(r.Prompts))
		t := fmt.Sprintf("%s, zero-shot, %s", DatasetLabel(cmp.Dataset), promptLabel(r, i))
		f, err := ConfusionFigure(t, namesFor(names, len(r.Confusion)), r.Confusion)
		if err := save(f, err, name); err != nil {
			return err
		}
		fmt.Fprintf(&conf, "### Zero-shot, %s\n\n", mdEscape(promptLabel(r, i)))
		embed(&conf, "Confusion matrix, zero-shot, "+mdEscape(promptLabel(r, i)), name)
	}
	if hasRef {
		if m, seeds := sumConfusion(paperProbes(cmp.Probes), ref.Shots); m != nil {
			name := ConfusionProbePrefix + "full"
			if ref.Shots > 0 {
				name = fmt.Sprintf("%s%dshot", ConfusionProbePrefix, ref.Shots)
			}
			t := fmt.Sprintf("%s, linear probe, %s", DatasetLabel(cmp.Dataset), shotsName(ref.Shots))
			if seeds > 1 {
				t += fmt.Sprintf(" (%d seeds pooled)", seeds)
			}
			f, err := ConfusionFigure(t, namesFor(names, len(m)), m)
			if err := save(f, err, name); err != nil {
				return err
			}
			fmt.Fprintf(&conf, "### Linear probe, %s\n\n", shotsName(ref.Shots)+pooledSuffix(seeds))
			embed(&conf, "Confusion matrix, linear probe, "+shotsName(ref.Shots), name)
		}
	}
	if conf.Len() > 0 {
		md.WriteString("## Confusion matrices\n\nRows are true classes, columns predicted classes; each row is normalised to sum to 1. " +
			"Each title gives the matrix's top-1 accuracy and number of test images.\n\n")
		md.WriteString(conf.String())
	}

	path := filepath.Join(dir, FileReport)
	if err := atomicfile.WriteBytes(path, []byte(md.String())); err != nil {
		return fmt.Errorf("plots: writing %s: %w", path, err)
	}
	return nil
}

// embed writes Markdown that shows the PNG of figure name and links its SVG.
func embed(md *strings.Builder, alt, name string) {
	fmt.Fprintf(md, "![%s](%s.png)\n\n[SVG](%s.svg)\n\n", alt, name, name)
}

func writeInfo(md *strings.Builder, cmp *results.Comparison, stats []ShotStats, names []string) {
	md.WriteString("| | |\n| --- | --- |\n")
	fmt.Fprintf(md, "| Dataset | %s |\n", mdEscape(orDash(cmp.Dataset)))
	fmt.Fprintf(md, "| Classes | %d |\n", len(names))
	if n := testCount(cmp); n > 0 {
		fmt.Fprintf(md, "| Test images | %d |\n", n)
	}
	for _, s := range stats {
		if s.Shots == 0 && s.Train > 0 {
			fmt.Fprintf(md, "| Training images (full data) | %d |\n", s.Train)
		}
	}
	fmt.Fprintf(md, "| Model | %s |\n", mdEscape(orDash(cmp.Model)))
	fmt.Fprintf(md, "| Pretrained | %s |\n", mdEscape(orDash(cmp.Pretrained)))
	if cmp.Features != "" {
		fmt.Fprintf(md, "| Probe features | %s |\n", mdEscape(cmp.Features))
	}
	if n := maxSeeds(stats); n > 0 {
		fmt.Fprintf(md, "| Probe seeds per k | %d |\n", n)
	}
	for _, row := range []struct{ name, value string }{
		{"Dataset spec", cmp.DatasetSpec}, {"Weights SHA-256", cmp.WeightsSHA256},
		{"gorgoclip", cmp.Version}, {"Date", cmp.Date},
	} {
		if row.value != "" {
			fmt.Fprintf(md, "| %s | %s |\n", row.name, mdEscape(row.value))
		}
	}
	if cmp.Command != "" {
		fmt.Fprintf(md, "| Command | `%s` |\n", strings.NewReplacer("`", "'", "|", `\|`).Replace(cmp.Command))
	}
	md.WriteString("\n")
}

func writeMatches(md *strings.Builder, cmp *results.Comparison, stats []ShotStats) {
	for i, r := range cmp.ZeroShot {
		z := metric(r, metricAcc1)
		if math.IsNaN(z) {
			continue
		}
		lead := fmt.Sprintf("Zero-shot with %s (%.1f%% top-1)", quoted(r, i), percent(z))
		m := MatchShots(z, stats)
		switch m.Kind {
		case MatchNone:
			continue
		case MatchBelow:
			fmt.Fprintf(md, "- %s is below the %d-shot linear probe (%.1f%%): it matches less than %d labelled example per class.\n",
				lead, m.Lo.Shots, percent(m.Lo.Acc1.Mean), m.Lo.Shots)
		case MatchAbove:
			fmt.Fprintf(md, "- %s beats every k-shot linear probe up to k = %d (%.1f%%): it is worth more than %d labelled examples per class.\n",
				lead, m.Hi.Shots, percent(m.Hi.Acc1.Mean), m.Hi.Shots)
		case MatchBetween:
			if m.Lo.Shots == m.Hi.Shots {
				fmt.Fprintf(md, "- %s matches the %d-shot linear probe (%.1f%%).\n", lead, m.Lo.Shots, percent(m.Lo.Acc1.Mean))
			} else {
				fmt.Fprintf(md, "- %s matches a **%.1f-shot** linear probe (interpolated on log2 k between the %d-shot probe at %.1f%% and the %d-shot probe at %.1f%%).\n",
					lead, m.Shots, m.Lo.Shots, percent(m.Lo.Acc1.Mean), m.Hi.Shots, percent(m.Hi.Acc1.Mean))
			}
		}
	}
	for _, s := range stats {
		if s.Shots != 0 || math.IsNaN(s.Acc1.Mean) {
			continue
		}
		line := fmt.Sprintf("- The full-data linear probe reaches %.1f%% top-1", percent(s.Acc1.Mean))
		if i, ok := BestZeroShot(cmp.ZeroShot); ok {
			d := percent(s.Acc1.Mean - metric(cmp.ZeroShot[i], metricAcc1))
			dir := "above"
			if d < 0 {
				dir = "below"
			}
			line += fmt.Sprintf(", %.1f points %s the best zero-shot prompt set (%s)", math.Abs(d), dir, quoted(cmp.ZeroShot[i], i))
		}
		md.WriteString(line + ".\n")
	}
}

// writeBest names the best method at each k when there are several.
func writeBest(md *strings.Builder, all []ShotStats) {
	if len(curves(all)) < 2 {
		return
	}
	best := map[int]ShotStats{}
	var ks []int
	for _, s := range all {
		if s.Shots == 0 || math.IsNaN(s.Acc1.Mean) {
			continue
		}
		b, ok := best[s.Shots]
		if !ok {
			ks = append(ks, s.Shots)
		}
		if !ok || s.Acc1.Mean > b.Acc1.Mean {
			best[s.Shots] = s
		}
	}
	if len(ks) == 0 {
		return
	}
	slices.Sort(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("k = %d: %s (%.1f%%)", k, mdEscape(best[k].Method), percent(best[k].Acc1.Mean))
	}
	fmt.Fprintf(md, "- Best mean top-1 per k: %s.\n", strings.Join(parts, ", "))
}

// writeSkipped says which methods could not be fitted at which k, grouping the
// methods that missed the same k.
func writeSkipped(md *strings.Builder, cmp *results.Comparison, all []ShotStats) {
	if len(cmp.SkippedShots) == 0 {
		return
	}
	var order []string // methods in the comparison's order, then any others
	for _, s := range all {
		if !slices.Contains(order, s.Method) {
			order = append(order, s.Method)
		}
	}
	for _, m := range slices.Sorted(maps.Keys(cmp.SkippedShots)) {
		if !slices.Contains(order, m) {
			order = append(order, m)
		}
	}
	var groups []string // k lists, in order of first use
	by := map[string][]string{}
	for _, m := range order {
		ks, ok := cmp.SkippedShots[m]
		if !ok || len(ks) == 0 {
			continue
		}
		key := joinInts(ks)
		if _, ok := by[key]; !ok {
			groups = append(groups, key)
		}
		by[key] = append(by[key], mdEscape(m))
	}
	for _, key := range groups {
		fmt.Fprintf(md, "- No %s at k = %s: some class has fewer training examples than the k shots and the method's validation set need.\n",
			strings.Join(by[key], ", "), key)
	}
}

// joinInts writes ks as "1, 2, 4".
func joinInts(ks []int) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = strconv.Itoa(k)
	}
	return strings.Join(parts, ", ")
}

func writeTables(md *strings.Builder, cmp *results.Comparison, stats, all []ShotStats) {
	md.WriteString("## Numbers\n\nAccuracies in %.\n\n")
	if len(cmp.ZeroShot) > 0 {
		md.WriteString("### Zero-shot\n\nTop-1 with its 95% Wilson interval.\n\n" +
			"| Prompt set | Top-1 % | 95% interval | Top-5 % | Mean per-class recall % | Test images |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for i, r := range cmp.ZeroShot {
			fmt.Fprintf(md, "| %s | %s | %s | %s | %s | %s |\n", mdEscape(promptLabel(r, i)),
				pct(metric(r, metricAcc1)), interval(metric(r, metricAcc1Low), metric(r, metricAcc1High)),
				pct(metric(r, metricAcc5)), pct(metric(r, metricRecall)), count(r.Test))
		}
		md.WriteString("\n")
	}
	if len(stats) > 0 {
		md.WriteString("### Linear probes (logreg)\n\nThe CLIP paper's probe: mean ± sample standard deviation over seeds.\n\n")
		md.WriteString("| k (shots per class) | Seeds | Top-1 % | Top-5 % | Mean per-class recall % | C |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, s := range stats {
			fmt.Fprintf(md, "| %s | %d | %s | %s | %s | %s |\n", kName(s.Shots), s.Seeds, pctStd(s.Acc1), pctStd(s.Acc5), pctStd(s.Recall), cRange(s))
		}
		md.WriteString("\n")
	}
	writeMethods(md, cmp, all)
}

// writeMethods writes the table of methods against k: top-1 as mean ± std over
// seeds, and the validation examples each fit chose its hyperparameters on. It is
// left out when the paper's probe is the only method.
func writeMethods(md *strings.Builder, cmp *results.Comparison, all []ShotStats) {
	cs := curves(all)
	if len(cs) == 0 || len(cs) == 1 && cs[0].method == results.MethodLogReg {
		return
	}
	var ks []int
	hasFull := false
	for _, s := range all {
		if s.Shots == 0 {
			hasFull = true
		} else if !slices.Contains(ks, s.Shots) {
			ks = append(ks, s.Shots)
		}
	}
	slices.Sort(ks)
	if hasFull {
		ks = append(ks, 0)
	}
	md.WriteString("### Methods\n\nTop-1 % of every method on the same shots (the shots depend on the seed only), " +
		"mean ± sample standard deviation over seeds; n_val is the number of validation images each fit chose its " +
		"hyperparameters on, at each k in the order of the columns (\"none\": the method chooses nothing), never test images.")
	if p := priorPrompts(cmp.Probes); p != "" {
		fmt.Fprintf(md, " The methods other than logreg start from the zero-shot classifier of \"%s\".", mdEscape(p))
	}
	md.WriteString("\n\n| Method |")
	for _, k := range ks {
		fmt.Fprintf(md, " k = %s |", kName(k))
	}
	md.WriteString(" n_val |\n| --- |" + strings.Repeat(" ---: |", len(ks)+1) + "\n")
	for _, c := range cs {
		at := map[int]ShotStats{}
		for _, s := range c.kPts {
			at[s.Shots] = s
		}
		if c.full != nil {
			at[0] = *c.full
		}
		fmt.Fprintf(md, "| %s |", mdEscape(c.method))
		var vals []string
		anyVal := false
		for _, k := range ks {
			s, ok := at[k]
			if !ok {
				md.WriteString(" – |")
				vals = append(vals, "–")
				continue
			}
			fmt.Fprintf(md, " %s |", pctStd(s.Acc1))
			vals = append(vals, strconv.Itoa(s.Val))
			anyVal = anyVal || s.Val > 0
		}
		if !anyVal {
			vals = []string{"none"}
		}
		fmt.Fprintf(md, " %s |\n", strings.Join(vals, " / "))
	}
	md.WriteString("\n")
}

// priorPrompts returns the prompt set the few-shot results name, or "" when none
// does or they differ.
func priorPrompts(probes []results.Result) string {
	p := ""
	for _, r := range probes {
		switch {
		case methodOf(r) == results.MethodLogReg || r.Prompts == "":
		case p == "":
			p = r.Prompts
		case p != r.Prompts:
			return ""
		}
	}
	return p
}

// kName returns "full" for 0 and k otherwise.
func kName(k int) string {
	if k == 0 {
		return "full"
	}
	return strconv.Itoa(k)
}

// classNames returns the comparison's class names, else those of its first result
// that has some, else numbers sized to the largest per-class data.
func classNames(cmp *results.Comparison) []string {
	if len(cmp.ClassNames) > 0 {
		return cmp.ClassNames
	}
	all := append(append([]results.Result{}, cmp.ZeroShot...), cmp.Probes...)
	n := 0
	for _, r := range all {
		if len(r.ClassNames) > 0 {
			return r.ClassNames
		}
		n = max(n, len(r.PerClassAccuracy), len(r.Confusion))
	}
	return namesFor(nil, n)
}

// namesFor returns names when it has n entries, else "0".."n-1".
func namesFor(names []string, n int) []string {
	if len(names) == n {
		return names
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}

// bestZeroShot returns the index of the zero-shot result with the highest acc1.
func BestZeroShot(zs []results.Result) (int, bool) {
	best, ok := -1, false
	for i, r := range zs {
		a := metric(r, metricAcc1)
		if !math.IsNaN(a) && (!ok || a > metric(zs[best], metricAcc1)) {
			best, ok = i, true
		}
	}
	return best, ok
}

// probePerClass averages per-class accuracy over the seeds of the k-shot probes.
func probePerClass(probes []results.Result, k, n int) []float64 {
	sum, cnt := make([]float64, n), make([]int, n)
	any := false
	for _, r := range probes {
		v := perClass(r)
		if r.Shots != k || len(v) != n {
			continue
		}
		any = true
		for i, x := range v {
			if !math.IsNaN(x) {
				sum[i] += x
				cnt[i]++
			}
		}
	}
	if !any {
		return nil
	}
	for i := range sum {
		if cnt[i] > 0 {
			sum[i] /= float64(cnt[i])
		} else {
			sum[i] = math.NaN()
		}
	}
	return sum
}

// sumConfusion adds up the confusion matrices of the k-shot probes over seeds.
func sumConfusion(probes []results.Result, k int) ([][]int, int) {
	var m [][]int
	seeds := 0
	for _, r := range probes {
		if r.Shots != k || len(r.Confusion) == 0 {
			continue
		}
		if m == nil {
			m = make([][]int, len(r.Confusion))
			for i, row := range r.Confusion {
				m[i] = make([]int, len(row))
			}
		}
		if len(r.Confusion) != len(m) {
			continue
		}
		for i, row := range r.Confusion {
			for j := 0; j < len(row) && j < len(m[i]); j++ {
				m[i][j] += row[j]
			}
		}
		seeds++
	}
	return m, seeds
}

func testCount(cmp *results.Comparison) int {
	for _, r := range append(append([]results.Result{}, cmp.ZeroShot...), cmp.Probes...) {
		if r.Test > 0 {
			return r.Test
		}
	}
	return 0
}

// probeName returns "full-data linear probe" for 0 and "16-shot linear probe" for 16.
func probeName(k int) string {
	if k == 0 {
		return "full-data linear probe"
	}
	return shotsName(k) + " linear probe"
}

func pooledSuffix(n int) string {
	if n > 1 {
		return fmt.Sprintf(", %d seeds pooled", n)
	}
	return ""
}

func seedsSuffix(n int) string {
	if n > 1 {
		return fmt.Sprintf(", mean of %d seeds", n)
	}
	return ""
}

// slug turns a prompt-set name into a file-name fragment: "a photo of a {}." ->
// "a-photo-of-a".
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
		if b.Len() >= 32 {
			break
		}
	}
	if b.Len() == 0 {
		return "prompts"
	}
	return b.String()
}

func pct(f float64) string {
	if math.IsNaN(f) {
		return "–"
	}
	return fmt.Sprintf("%.1f", percent(f))
}

// interval formats a 95% interval of fractions as "61.0–63.6"; "–" when unknown.
func interval(lo, hi float64) string {
	if math.IsNaN(lo) || math.IsNaN(hi) {
		return "–"
	}
	return fmt.Sprintf("%.1f–%.1f", percent(lo), percent(hi))
}

func pctStd(s MeanStd) string {
	if math.IsNaN(s.Mean) {
		return "–"
	}
	if s.N < 2 {
		return pct(s.Mean)
	}
	return fmt.Sprintf("%.1f ± %.1f", percent(s.Mean), percent(s.Std))
}

func cRange(s ShotStats) string {
	switch {
	case s.CMax == 0:
		return "–"
	case s.CMin == s.CMax:
		return fmt.Sprintf("%.3g", s.CMin)
	}
	return fmt.Sprintf("%.3g–%.3g", s.CMin, s.CMax)
}

func count(n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// quoted returns the prompt-set name of zero-shot result i in quotes, escaped.
func quoted(r results.Result, i int) string {
	if r.Prompts == "" {
		return promptLabel(r, i)
	}
	return "\"" + mdEscape(promptLabel(r, i)) + "\""
}

// mdEscape keeps text from breaking Markdown tables and emphasis.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

// DatasetLabel shortens a dataset spec for titles: "imagefolder:/data/imagenette2-160"
// becomes "imagenette2-160", "fashion-mnist:/usr/share/datasets/fashion-mnist" becomes
// "fashion-mnist". The report's info table keeps the full spec.
func DatasetLabel(spec string) string {
	kind, path, ok := strings.Cut(spec, ":")
	if !ok || path == "" {
		return spec
	}
	if base := filepath.Base(filepath.Clean(path)); base != "." && base != string(filepath.Separator) {
		return base
	}
	return kind
}
