package plots

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"github.com/gorgoclip/gorgoclip/loaders/results"
)

var imagenette = []string{"tench", "English springer", "cassette player", "chain saw", "church",
	"French horn", "garbage truck", "gas pump", "golf ball", "parachute"}

// confusionFor returns a confusion matrix of perClass test images per class whose
// accuracy is about acc, with errors spread over the other classes.
func confusionFor(rng *rand.Rand, n, perClass int, acc float64) [][]int {
	m := make([][]int, n)
	for i := range m {
		m[i] = make([]int, n)
		for j := 0; j < perClass; j++ {
			a := clamp(acc+0.15*(rng.Float64()-0.5)*float64(i%3), 0, 1)
			if rng.Float64() < a {
				m[i][i]++
			} else {
				// Errors go mostly to one neighbouring class, so the matrix has structure.
				k := (i + 1 + rng.IntN(2)*rng.IntN(n-1)) % n
				if k == i {
					k = (i + 1) % n
				}
				m[i][k]++
			}
		}
	}
	return m
}

func accuracies(m [][]int) (acc1, recall float64, per []results.Float) {
	var right, total int
	for i, row := range m {
		var n int
		for _, v := range row {
			n += v
		}
		right += row[i]
		total += n
		r := float64(row[i]) / float64(n)
		recall += r
		per = append(per, results.Float(r))
	}
	return float64(right) / float64(total), recall / float64(len(m)), per
}

// syntheticComparison builds a 10-class comparison: k = 1, 2, 4, 8, 16 and full data
// with 3 seeds each, two zero-shot prompt sets, confusion matrices everywhere.
func syntheticComparison() *results.Comparison { return syntheticComparisonN(imagenette) }

// classNamesN returns n class names, Imagenette's for n = 10.
func classNamesN(n int) []string {
	if n == len(imagenette) {
		return imagenette
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("class number %d", i)
	}
	return names
}

// syntheticComparisonN is syntheticComparison over the given classes, with a third
// prompt set whose accuracy equals the second's (their lines coincide).
func syntheticComparisonN(names []string) *results.Comparison {
	rng := rand.New(rand.NewPCG(1, 2))
	cmp := &results.Comparison{Dataset: "imagenette", Model: "ViT-B/32", Pretrained: "openai",
		ClassNames: names, Features: "pre-projection"}
	const perClass = 50
	result := func(task string, acc float64) results.Result {
		m := confusionFor(rng, len(names), perClass, acc)
		a1, rec, per := accuracies(m)
		r := results.Result{Dataset: cmp.Dataset, Model: cmp.Model, Pretrained: cmp.Pretrained, Task: task,
			Test: perClass * len(names), ClassNames: names, PerClassAccuracy: per, Confusion: m}
		prefix := ""
		if task == results.TaskLinearProbe {
			prefix = "lp_"
		}
		r.Metrics = map[string]results.Float{prefix + "acc1": results.Float(a1),
			prefix + "acc5": results.Float(math.Min(1, a1+0.08)), prefix + "mean_per_class_recall": results.Float(rec)}
		if task == results.TaskZeroShot {
			r.Metrics[results.MetricAcc1Low], r.Metrics[results.MetricAcc1High] = results.Float(a1-0.02), results.Float(a1+0.02)
		}
		return r
	}
	for _, z := range []struct {
		prompts string
		acc     float64
	}{{"labels", 0.72}, {"a photo of a {}.", 0.84}} {
		r := result(results.TaskZeroShot, z.acc)
		r.Prompts = z.prompts
		cmp.ZeroShot = append(cmp.ZeroShot, r)
	}
	same := cmp.ZeroShot[1]
	same.Prompts = "ImageNet ensemble (80 templates)"
	cmp.ZeroShot = append(cmp.ZeroShot, same)
	for _, k := range []int{1, 2, 4, 8, 16, 0} {
		acc := 0.97
		if k > 0 {
			acc = 0.55 + 0.08*math.Log2(float64(k))
		}
		for seed := int64(0); seed < 3; seed++ {
			r := result(results.TaskLinearProbe, acc)
			r.Shots, r.Seed, r.C = k, seed, 0.316*float64(seed+1)
			r.Train = len(names) * k
			if k == 0 {
				r.Train = 947 * len(names)
			}
			cmp.Probes = append(cmp.Probes, r)
		}
	}
	// One class the zero-shot classifier never gets right.
	cmp.ZeroShot[1].PerClassAccuracy[len(names)/2] = 0
	return cmp
}

// checkPNG decodes path and fails unless it has the wanted size (when w > 0) and
// more than one colour in a reasonable share of its pixels.
func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := decodePNG(t, path)
	b := img.Bounds()
	if w > 0 && (b.Dx() != w || b.Dy() != h) {
		t.Errorf("%s: got %dx%d pixels want %dx%d", path, b.Dx(), b.Dy(), w, h)
	}
	colours := map[color.RGBA]int{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			colours[c]++
			if c != (color.RGBA{255, 255, 255, 255}) {
				nonWhite++
			}
		}
	}
	total := (b.Dx() / 2) * (b.Dy() / 2)
	if len(colours) < 3 || nonWhite < total/100 {
		t.Errorf("%s: looks blank: %d colours, %d of %d sampled pixels not white", path, len(colours), nonWhite, total)
	}
}

// decodePNG reads the PNG at path.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// checkSVG fails unless path is well-formed XML with an <svg> root.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q, want svg", path, root)
	}
}

// review copies the figure under $PLOTS_REVIEW_DIR when set, for looking at by eye.
func review(t *testing.T, f Figure, name string) {
	if dir := os.Getenv("PLOTS_REVIEW_DIR"); dir != "" {
		if err := f.Save(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func saveAndCheck(t *testing.T, f Figure, err error, name string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), name)
	if err := f.Save(base); err != nil {
		t.Fatal(err)
	}
	w, h := f.PixelSize()
	checkPNG(t, base+".png", w, h)
	checkSVG(t, base+".svg")
	review(t, f, name)
}

// writeReport writes cmp's report into a temporary directory (and under
// $PLOTS_REVIEW_DIR/review when set) and returns the directory and report.md.
func writeReport(t *testing.T, cmp *results.Comparison, review string) (dir, report string) {
	t.Helper()
	dir = t.TempDir()
	if err := Report(cmp, dir); err != nil {
		t.Fatal(err)
	}
	if rd := os.Getenv("PLOTS_REVIEW_DIR"); rd != "" {
		if err := Report(cmp, filepath.Join(rd, review)); err != nil {
			t.Fatal(err)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, FileReport))
	if err != nil {
		t.Fatal(err)
	}
	return dir, string(md)
}

func TestReport(t *testing.T) {
	cmp := syntheticComparison()
	dir, report := writeReport(t, cmp, "report")
	figures := []string{FileShots, FileTemplates, FilePerClass,
		ConfusionZeroShotPrefix + "1_labels", ConfusionZeroShotPrefix + "2_a-photo-of-a",
		ConfusionZeroShotPrefix + "3_imagenet-ensemble-80-templates", ConfusionProbePrefix + "full"}
	for _, name := range figures {
		checkPNG(t, filepath.Join(dir, name+".png"), 0, 0)
		checkSVG(t, filepath.Join(dir, name+".svg"))
		for _, ext := range []string{".png", ".svg"} {
			if !strings.Contains(report, "("+name+ext+")") {
				t.Errorf("report does not link %s%s", name, ext)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2*len(figures)+1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("got files %v, want %d figures (png+svg) and the report", names, len(figures))
	}

	stats := SummarizeProbes(cmp.Probes)
	want := []string{"imagenette", "ViT-B/32", "openai", "pre-projection", "| Classes | 10 |",
		"| Training images (full data) | 9470 |", "| Probe seeds per k | 3 |",
		"No figure: similarity.png is drawn by gorgoclip compare"}
	for _, z := range cmp.ZeroShot {
		want = append(want, fmt.Sprintf("| %s | %.1f | %.1f–%.1f | %.1f | %.1f | 500 |", mdEscape(z.Prompts),
			100*z.Metrics["acc1"], 100*z.Metrics[results.MetricAcc1Low], 100*z.Metrics[results.MetricAcc1High],
			100*z.Metrics["acc5"], 100*z.Metrics["mean_per_class_recall"]))
		m := MatchShots(float64(z.Metrics["acc1"]), stats)
		if m.Kind != MatchBetween {
			t.Fatalf("zero-shot %q: match %+v, want between two k", z.Prompts, m)
		}
		want = append(want, fmt.Sprintf("(%.1f%% top-1) matches a **%.1f-shot** linear probe", 100*z.Metrics["acc1"], m.Shots))
	}
	for _, s := range stats {
		k := fmt.Sprint(s.Shots)
		if s.Shots == 0 {
			k = "full"
		}
		want = append(want, fmt.Sprintf("| %s | 3 | %.1f ± %.1f |", k, 100*s.Acc1.Mean, 100*s.Acc1.Std))
	}
	want = append(want, "The full-data linear probe reaches")
	for _, w := range want {
		if !strings.Contains(report, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}

func TestReportErrors(t *testing.T) {
	if err := Report(nil, t.TempDir()); err == nil {
		t.Error("nil comparison: no error")
	}
	if err := Report(&results.Comparison{Dataset: "x"}, t.TempDir()); err == nil || !strings.HasPrefix(err.Error(), "plots:") {
		t.Errorf("empty comparison: got %v, want a plots: error", err)
	}
	// A file where the directory should be: the error names the path.
	dir := t.TempDir()
	blocker := filepath.Join(dir, "out")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Report(syntheticComparison(), blocker)
	if err == nil || !strings.HasPrefix(err.Error(), "plots:") || !strings.Contains(err.Error(), blocker) {
		t.Errorf("got %v, want a plots: error naming %s", err, blocker)
	}
}

// TestReportZeroShotOnly checks a comparison without probes still gets its figures.
func TestReportZeroShotOnly(t *testing.T) {
	cmp := syntheticComparison()
	cmp.Probes = nil
	dir := t.TempDir()
	if err := Report(cmp, dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{FileTemplates, FilePerClass, ConfusionZeroShotPrefix + "1_labels"} {
		checkPNG(t, filepath.Join(dir, name+".png"), 0, 0)
	}
	if _, err := os.Stat(filepath.Join(dir, FileShots+".png")); err == nil {
		t.Errorf("%s drawn without probes", FileShots)
	}
}

func TestFigures(t *testing.T) {
	cmp := syntheticComparison()
	f, err := ShotsFigure(cmp)
	saveAndCheck(t, f, err, "shots")
	f, err = TemplatesFigure(cmp)
	saveAndCheck(t, f, err, "templates")
	// Results of earlier versions have no interval.
	old := *cmp
	old.ZeroShot = []results.Result{{Prompts: "old", Metrics: map[string]results.Float{"acc1": 0.9}}}
	f, err = TemplatesFigure(&old)
	saveAndCheck(t, f, err, "templates_old")
	f, err = ShotsFigure(&old)
	saveAndCheck(t, f, err, "shots_old")
	zs, lp := perClass(cmp.ZeroShot[1]), probePerClass(cmp.Probes, 0, 10)
	f, err = PerClassFigure("per class", imagenette, []Series{{Name: "zero-shot", Values: zs}, {Name: "linear probe", Values: lp}})
	saveAndCheck(t, f, err, "per_class")
	f, err = ConfusionFigure("confusion, 10 classes", imagenette, cmp.ZeroShot[1].Confusion)
	saveAndCheck(t, f, err, "confusion10")

	rng := rand.New(rand.NewPCG(3, 4))
	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprintf("class number %d", i)
	}
	f, err = ConfusionFigure("confusion, 100 classes", names, confusionFor(rng, 100, 20, 0.6))
	saveAndCheck(t, f, err, "confusion100")
	f, err = ConfusionFigure("confusion, 20 classes", names[:20], confusionFor(rng, 20, 20, 0.7))
	saveAndCheck(t, f, err, "confusion20")

	f, err = SimilarityFigure(syntheticSimilarity(rng))
	saveAndCheck(t, f, err, "similarity")
	s := syntheticSimilarity(rng)
	s.Images, s.Title, s.Subtitle, s.Captions = nil, "", "", nil
	f, err = SimilarityFigure(s)
	saveAndCheck(t, f, err, "similarity_noimages")
}

// syntheticSimilarity is an 8x8 similarity matrix whose diagonal stands out, with
// striped and gradient thumbnails of different shapes.
func syntheticSimilarity(rng *rand.Rand) Similarity {
	s := Similarity{Title: "Cosine similarity between text and image features",
		Subtitle: "8 of 10 classes, the first test image of each"}
	for i := 0; i < 8; i++ {
		s.Texts = append(s.Texts, fmt.Sprintf("This is a photo of a %s", []string{"page of text", "rocket", "motorcycle", "portrait", "hard hat", "cup of coffee", "cat", "horse"}[i]))
		w, h := 300, 200+40*i
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := uint8((x*255/w + 40*i) % 256)
				if (y/20+i)%2 == 0 {
					v = 255 - v
				}
				img.Set(x, y, color.RGBA{v, uint8(y * 255 / h), uint8(30 * i), 255})
			}
		}
		s.Images = append(s.Images, img)
		s.Captions = append(s.Captions, []string{"text", "rocket", "motorcycle", "portrait", "hard hat", "coffee", "cat", "horse with a long name"}[i])
		row := make([]float64, 8)
		for j := range row {
			row[j] = 0.12 + 0.05*rng.Float64()
		}
		row[i] = 0.26 + 0.06*rng.Float64()
		s.Values = append(s.Values, row)
	}
	return s
}

func TestFigureErrors(t *testing.T) {
	for i, test := range []struct {
		name string
		err  error
	}{
		{"confusion not square", second(ConfusionFigure("x", nil, [][]int{{1, 2}, {3}}))},
		{"confusion names", second(ConfusionFigure("x", []string{"a"}, [][]int{{1, 2}, {3, 4}}))},
		{"confusion empty", second(ConfusionFigure("x", nil, nil))},
		{"per-class length", second(PerClassFigure("x", []string{"a", "b"}, []Series{{Name: "s", Values: []float64{1}}}))},
		{"similarity rows", second(SimilarityFigure(Similarity{Texts: []string{"a"}, Values: [][]float64{{1}, {2}}}))},
		{"similarity images", second(SimilarityFigure(Similarity{Texts: []string{"a"}, Values: [][]float64{{1, 2}}, Images: []image.Image{image.NewRGBA(image.Rect(0, 0, 1, 1))}}))},
		{"templates", second(TemplatesFigure(&results.Comparison{}))},
		{"shots", second(ShotsFigure(&results.Comparison{}))},
	} {
		if test.err == nil || !strings.HasPrefix(test.err.Error(), "plots: ") {
			t.Errorf("test %d (%s): got %v want a plots: error", i, test.name, test.err)
		}
	}
	if err := (Figure{Width: 10, Height: 10}).WriteTo(io.Discard, "gif"); err == nil {
		t.Error("gif: no error")
	}
}

func second(_ Figure, err error) error { return err }

func TestMatchShots(t *testing.T) {
	curve := []ShotStats{
		{Shots: 1, Acc1: MeanStd{Mean: 0.40}}, {Shots: 2, Acc1: MeanStd{Mean: 0.50}},
		{Shots: 4, Acc1: MeanStd{Mean: 0.60}}, {Shots: 8, Acc1: MeanStd{Mean: 0.70}},
		{Shots: 0, Acc1: MeanStd{Mean: 0.95}},
	}
	for i, test := range []struct {
		z     float64
		kind  MatchKind
		shots float64
	}{
		{0.30, MatchBelow, 1},
		{0.40, MatchBetween, 1},
		{0.55, MatchBetween, math.Sqrt(8)}, // halfway between 2 and 4 on log2 k
		{0.60, MatchBetween, 4},
		{0.70, MatchBetween, 8},
		{0.90, MatchAbove, 8}, // full data is not a k
		{math.NaN(), MatchNone, 0},
	} {
		m := MatchShots(test.z, curve)
		if m.Kind != test.kind || math.Abs(m.Shots-test.shots) > 1e-9 {
			t.Errorf("test %d: got %v %v want %v %v", i, m.Kind, m.Shots, test.kind, test.shots)
		}
	}
	if m := MatchShots(0.5, nil); m.Kind != MatchNone {
		t.Errorf("no curve: got %v", m.Kind)
	}
}

func TestSummarizeProbes(t *testing.T) {
	mk := func(k int, a float64) results.Result {
		return results.Result{Shots: k, Metrics: map[string]results.Float{"lp_acc1": results.Float(a)}}
	}
	got := SummarizeProbes([]results.Result{mk(0, 0.9), mk(4, 0.5), mk(4, 0.7), mk(1, 0.3)})
	want := []struct {
		k, seeds  int
		mean, std float64
	}{{1, 1, 0.3, 0}, {4, 2, 0.6, math.Sqrt(0.02)}, {0, 1, 0.9, 0}}
	if len(got) != len(want) {
		t.Fatalf("got %d groups want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Shots != w.k || g.Seeds != w.seeds || math.Abs(g.Acc1.Mean-w.mean) > 1e-12 || math.Abs(g.Acc1.Std-w.std) > 1e-12 {
			t.Errorf("test %d: got %+v want %+v", i, g, w)
		}
		if !math.IsNaN(g.Acc5.Mean) {
			t.Errorf("test %d: missing lp_acc5 gave %v, want NaN", i, g.Acc5.Mean)
		}
	}
}

func TestSlug(t *testing.T) {
	for i, test := range []struct{ in, want string }{
		{"a photo of a {}.", "a-photo-of-a"}, {"labels", "labels"}, {"{}", "prompts"},
		{"Ensemble (80 templates)", "ensemble-80-templates"},
	} {
		if got := slug(test.in); got != test.want {
			t.Errorf("test %d: got %q want %q", i, got, test.want)
		}
	}
}

func ExampleMatchShots() {
	curve := []ShotStats{{Shots: 2, Acc1: MeanStd{Mean: 0.5}}, {Shots: 8, Acc1: MeanStd{Mean: 0.7}}}
	m := MatchShots(0.6, curve)
	fmt.Printf("zero-shot at 60%% matches a %.0f-shot probe\n", m.Shots)
	// Output: zero-shot at 60% matches a 4-shot probe
}

func TestDatasetLabel(t *testing.T) {
	for i, test := range []struct{ spec, want string }{
		{"imagefolder:/data/imagenette2-160", "imagenette2-160"},
		{"fashion-mnist:/usr/share/datasets/fashion-mnist/", "fashion-mnist"},
		{"cifar10:/", "cifar10"},
		{"imagenette", "imagenette"},
	} {
		if got := DatasetLabel(test.spec); got != test.want {
			t.Errorf("test %d: got %q want %q", i, got, test.want)
		}
	}
}

// TestReportManyClasses renders the report at 40 and 100 classes, where the
// confusion matrix is one raster image: its PNG must show the diagonal from the
// first class to the last, and its SVG must embed the raster as PNG with a positive
// size.
func TestReportManyClasses(t *testing.T) {
	for _, n := range []int{40, 100} {
		cmp := syntheticComparisonN(classNamesN(n))
		dir := t.TempDir()
		if err := Report(cmp, dir); err != nil {
			t.Fatal(err)
		}
		if rd := os.Getenv("PLOTS_REVIEW_DIR"); rd != "" {
			if err := Report(cmp, filepath.Join(rd, fmt.Sprintf("report%d", n))); err != nil {
				t.Fatal(err)
			}
		}
		base := filepath.Join(dir, ConfusionZeroShotPrefix+"2_a-photo-of-a")
		checkPNG(t, base+".png", 0, 0)
		checkSVG(t, base+".svg")
		checkDiagonal(t, base+".png")
		svg, err := os.ReadFile(base + ".svg")
		if err != nil {
			t.Fatal(err)
		}
		images := 0
		d := xml.NewDecoder(bytes.NewReader(svg))
		for {
			tok, err := d.Token()
			if err != nil {
				break
			}
			se, ok := tok.(xml.StartElement)
			if !ok || se.Name.Local != "image" {
				continue
			}
			images++
			for _, a := range se.Attr {
				switch {
				case (a.Name.Local == "height" || a.Name.Local == "width") && strings.HasPrefix(a.Value, "-"):
					t.Errorf("%d classes: SVG image %s %s", n, a.Name.Local, a.Value)
				case a.Name.Local == "href" && !strings.HasPrefix(a.Value, "data:image/png;base64,"):
					t.Errorf("%d classes: SVG image data %.30s…, want data:image/png", n, a.Value)
				}
			}
		}
		if images != 1 {
			t.Errorf("%d classes: %d images in the SVG, want the one raster", n, images)
		}
		checkPNG(t, filepath.Join(dir, FilePerClass+".png"), 0, 0)
		md, _ := os.ReadFile(filepath.Join(dir, FileReport))
		if want := fmt.Sprintf("the best and the worst %d of the %d classes", MaxClassRows/2, n); (n > MaxClassRows) != strings.Contains(string(md), want) {
			t.Errorf("%d classes: report has %q: %v", n, want, !(n > MaxClassRows))
		}
	}
}

// checkDiagonal fails unless the confusion matrix in the PNG at path has saturated
// blue cells in at least 18 of 20 horizontal bands of its data area: the diagonal
// of a matrix whose classes are mostly right.
func checkDiagonal(t *testing.T, path string) {
	t.Helper()
	img := decodePNG(t, path)
	b := img.Bounds()
	top, bottom := b.Max.Y, b.Min.Y
	var ys []int
	// The colour bar on the right is blue from top to bottom: leave it out.
	right := b.Min.X + b.Dx()*85/100
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < right; x += 2 {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			if int(c.B)-int(c.R) > 80 && c.R < 120 {
				ys = append(ys, y)
				top, bottom = min(top, y), max(bottom, y)
				break
			}
		}
	}
	bands := map[int]bool{}
	for _, y := range ys {
		bands[20*(y-top)/(bottom-top+1)] = true
	}
	if len(bands) < 18 {
		t.Errorf("%s: dark cells in %d of 20 bands of rows %d..%d", path, len(bands), top, bottom)
	}
}

func TestPlaceLabels(t *testing.T) {
	for i, test := range []struct {
		ys, want []vg.Length
	}{
		{[]vg.Length{10, 50}, []vg.Length{10, 50}},               // apart: unmoved
		{[]vg.Length{50, 50, 50}, []vg.Length{45, 50, 55}},       // equal values: spread around them
		{[]vg.Length{98, 99}, []vg.Length{95, 100}},              // at the top: pushed down inside
		{[]vg.Length{0, 20, 2}, []vg.Length{0, 20, 5}},           // order kept by value
		{[]vg.Length{50, 52, 100}, []vg.Length{48.5, 53.5, 100}}, // both move, around their mean
		{[]vg.Length{1, 1, 1}, []vg.Length{0, 5, 10}},            // at the bottom: pushed up inside
	} {
		got := placeLabels(test.ys, 5, 0, 100)
		if fmt.Sprint(got) != fmt.Sprint(test.want) {
			t.Errorf("test %d: got %v want %v", i, got, test.want)
		}
	}
}
