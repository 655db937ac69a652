package experiments

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
	"github.com/gorgoclip/gorgoclip/probes"
)

// TestCheckMethods checks that compare refuses what it cannot run, by name, before
// anything is loaded: the weights and dataset here do not exist.
func TestCheckMethods(t *testing.T) {
	for i, test := range []struct {
		cfg  Config
		want []string // fragments of the error; none for no error
	}{
		{Config{}, nil},
		{Config{Methods: []string{"clap", "logreg"}, C: 1, PriorPrompts: "photo"}, nil},
		{Config{Methods: []string{"logreg", "bogus", "zs-lp", "nope"}}, []string{`unknown methods "bogus", "nope" (known: ` + strings.Join(MethodNames(), ", ") + ", or all for every one)"}},
		{Config{Methods: []string{MethodsAll}}, nil},
		{Config{Methods: []string{"coop", "logreg"}, PriorPrompts: "photo"}, []string{`prior prompts "photo" are for the few-shot methods`, "coop, logreg do not use them"}},
		{Config{Methods: []string{"lp+"}}, []string{`unknown method "lp+" (known: `}},
		{Config{Methods: []string{"clap", "clap"}}, []string{`method "clap" is given twice`}},
		{Config{Methods: []string{"clap", "tip-adapter"}, C: 0.5}, []string{"C fixes logreg's", "(clap, tip-adapter) leave logreg out"}},
		{Config{Methods: []string{"logreg"}, PriorPrompts: "bare"}, []string{`prior prompts "bare" are for the few-shot methods`, "; logreg do not use them"}},
		{Config{Methods: []string{"clap", "coop"}, Precision: "bf16"}, []string{"coop trains through the text tower's gradients", "precision fp32, not bf16"}},
		{Config{Methods: []string{MethodsAll}, Precision: "fp16"}, []string{"coop trains through", "not fp16"}},
		{Config{Methods: []string{"clap"}, Precision: "bf16"}, nil},
	} {
		err := test.cfg.CheckMethods()
		if len(test.want) == 0 {
			if err != nil {
				t.Errorf("test %d: got %v want no error", i, err)
			}
			continue
		}
		for _, w := range test.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("test %d: got %v want an error containing %q", i, err, w)
			}
		}
		// Compare refuses the same before it opens the (missing) weights.
		cfg := test.cfg
		cfg.Weights, cfg.Dataset, cfg.Out = "/nonexistent/weights", "imagefolder:/nonexistent", t.TempDir()
		if _, cerr := Compare(cfg); cerr == nil || err == nil || cerr.Error() != err.Error() {
			t.Errorf("test %d: Compare said %v, CheckMethods %v", i, cerr, err)
		}
	}
	if name := (&probes.LogReg{}).Name(); name != results.MethodLogReg {
		t.Errorf("probes.LogReg is %q, results.MethodLogReg %q", name, results.MethodLogReg)
	}
}

// fixedEncoder returns row i of its table for the i-th prompt: class-major,
// template-minor, as BuildClassifier asks.
type fixedEncoder struct{ rows [][]float32 }

func (e fixedEncoder) EncodeTexts(_ []int32, n int) ([]float32, error) {
	var out []float32
	for _, r := range e.rows[:n] {
		out = append(out, r...)
	}
	return out, nil
}

// TestClassifierRawNorm checks RawNorm against the mean of hand-computed norms, and
// that the unit Weights do not depend on the raw scale.
func TestClassifierRawNorm(t *testing.T) {
	tok, err := tokenizer.Load(testfix.Shared(t, "clip/"+tokenizer.OpenAIVocabFile))
	if err != nil {
		t.Fatal(err)
	}
	set := PromptSet{Name: "two", Templates: []string{"a photo of a {}.", "a {}."}}
	// Class 0: templates (3, 4) and (3, 4), mean (3, 4), norm 5. Class 1: (12, 0)
	// and (0, 16), mean (6, 8), norm 10.
	enc := fixedEncoder{[][]float32{{3, 4}, {3, 4}, {12, 0}, {0, 16}}}
	cl, err := BuildClassifier(enc, tok, []string{"cat", "dog"}, set, 77, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (5.0 + 10.0) / 2; math.Abs(cl.RawNorm-want) > 1e-12 {
		t.Errorf("RawNorm %v, want %v", cl.RawNorm, want)
	}
	half := fixedEncoder{[][]float32{{1.5, 2}, {1.5, 2}, {6, 0}, {0, 8}}}
	cl2, err := BuildClassifier(half, tok, []string{"cat", "dog"}, set, 77, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cl.Weights, cl2.Weights) || math.Abs(cl2.RawNorm-cl.RawNorm/2) > 1e-12 {
		t.Errorf("half the scale: weights %v vs %v, RawNorm %v vs %v", cl2.Weights, cl.Weights, cl2.RawNorm, cl.RawNorm)
	}
}

// syntheticRun is compare's fitting stage on cached CLIP-like features of 10 classes
// in 512 dimensions (what a ViT-B/32 gives): 500 training and 1000 test images a
// class. As in CLIP, image and text embeddings sit in two narrow cones (common
// directions mImg and mTxt, the modality gap) and share per-class directions; the
// zero-shot prior, with raw norm rawNorm, is near the images' classes but imperfect.
func syntheticRun(methods []string, noFull bool, rawNorm float64) (probeRun, error) {
	const classes, dim, trainPer, testPer = 10, 512, 500, 1000
	rng := rand.New(rand.NewPCG(17, 18))
	gauss := func() []float64 { // a random direction of norm about 1
		v := make([]float64, dim)
		for j := range v {
			v[j] = rng.NormFloat64() / math.Sqrt(dim)
		}
		return v
	}
	mImg, mTxt := gauss(), gauss()
	centre := make([][]float64, classes)
	cl := &Classifier{Dim: dim, RawNorm: rawNorm}
	for c := range centre {
		centre[c] = gauss()
		noise := gauss()
		for j := range noise {
			cl.Weights = append(cl.Weights, float32(0.7*mTxt[j]+0.4*centre[c][j]+0.5*noise[j]))
		}
	}
	unitRows(cl.Weights, dim)
	draw := func(per int) *Features {
		f := &Features{N: classes * per, Dim: dim}
		for i := 0; i < f.N; i++ {
			c := i % classes
			noise := gauss()
			for j := range noise {
				f.X = append(f.X, float32(10*(0.7*mImg[j]+0.06*centre[c][j]+0.45*noise[j])))
			}
			f.Y = append(f.Y, c)
		}
		return f
	}
	cfg := &Config{Methods: methods, Shots: []int{1, 2, 4, 8, 16}, Seeds: 3, NoFull: noFull}
	ms, err := cfg.methods()
	names := make([]string, classes)
	for i := range names {
		names[i] = string(rune('a' + i))
	}
	return probeRun{cfg: cfg, methods: ms, train: draw(trainPer), test: draw(testPer), names: names,
		prior: &prior{cl: cl, prompts: "a photo of a {}.", logitScale: 100}}, err
}

// unitRows scales each row of x [n, dim] to unit norm in place.
func unitRows(x []float32, dim int) {
	for i := 0; i < len(x); i += dim {
		var ss float64
		for _, v := range x[i : i+dim] {
			ss += float64(v) * float64(v)
		}
		for j := range x[i : i+dim] {
			x[i+j] = float32(float64(x[i+j]) / math.Sqrt(ss))
		}
	}
}

// TestProbeRunMethods checks compare's fitting stage on synthetic cached features:
// one result per method, k and seed (seed 0 included), the summary per method and k,
// and the prior handed to the methods: ZS-LP started at the classifier's raw norm
// gives exactly what probes.Run gives with InitNorm set to it.
func TestProbeRunMethods(t *testing.T) {
	if testing.Short() {
		t.Skip("fits every method 15 times")
	}
	r, err := syntheticRun(nil, true, 7.5)
	if err != nil {
		t.Fatal(err)
	}
	r.cfg.Shots, r.cfg.Seeds = []int{1, 4}, 2
	rs, skipped, err := r.fit()
	if err != nil {
		t.Fatal(err)
	}
	names := probes.MethodNames()
	if len(rs) != len(names)*2*2 || skipped != nil {
		t.Fatalf("%d results, skipped %v; want %d and none", len(rs), skipped, len(names)*4)
	}
	for i, res := range rs {
		m, k, seed := names[i/4], []int{1, 4}[i/2%2], int64(i%2)
		if res.Method != m || res.Shots != k || res.Seed != seed || res.Task != results.TaskLinearProbe || res.Test != 10000 {
			t.Errorf("result %d: %s k=%d seed=%d task %s, want %s k=%d seed=%d", i, res.Method, res.Shots, res.Seed, res.Task, m, k, seed)
		}
	}
	sum := summarize(rs)
	if len(sum) != len(names)*2 || sum[2].Method != names[1] || sum[2].Seeds != 2 || sum[1].Val != 40 {
		t.Errorf("summary %+v", sum)
	}
	zs := rs[slices.IndexFunc(rs, func(r results.Result) bool { return r.Method == "zs-lp" && r.Shots == 4 && r.Seed == 1 })]
	train := probes.Dataset{X: r.train.X, Y: r.train.Y, N: r.train.N, D: r.train.Dim}
	test := probes.Dataset{X: r.test.X, Y: r.test.Y, N: r.test.N, D: r.test.Dim}
	o, err := probes.Run(train, test, 10, probes.Protocol{Method: &probes.ZSLP{InitNorm: 7.5}, Shots: 4, Seed: 1,
		Text: r.prior.cl.Weights, LogitScale: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := float64(zs.Metrics["lp_acc1"]), o.Metrics.Top1; got != want || zs.Prompts != "a photo of a {}." {
		t.Errorf("zs-lp k=4 seed=1: top-1 %v with the prior's raw norm, %v with InitNorm 7.5; prompts %q", got, want, zs.Prompts)
	}
}

var benchResults []results.Result

// BenchmarkCompareMethods times compare's fitting stage on cached features of a
// 10-class, 512-dimensional problem (10000 test images) at k = 1, 2, 4, 8, 16 over 3
// seeds: all methods at once, then each alone (ns/op is the whole run), and logreg
// on the full 5000 training images with its sweep over C.
func BenchmarkCompareMethods(b *testing.B) {
	type benchCase struct {
		name    string
		methods []string
		shots   []int
	}
	ks := []int{1, 2, 4, 8, 16}
	cases := []benchCase{{"all", nil, ks}}
	for _, m := range probes.MethodNames() {
		cases = append(cases, benchCase{m, []string{m}, ks})
	}
	cases = append(cases, benchCase{"logreg-full", []string{"logreg"}, nil})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r, err := syntheticRun(c.methods, c.shots != nil, 7.5)
			if err != nil {
				b.Fatal(err)
			}
			r.cfg.Shots = c.shots
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rs, _, err := r.fit()
				if err != nil {
					b.Fatal(err)
				}
				benchResults = rs
			}
		})
	}
}
