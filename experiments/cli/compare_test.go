package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/results"
	"github.com/gorgoclip/gorgoclip/probes"
)

// TestCompareMethods runs compare --methods on the tiny fixture model and a
// Fashion-MNIST subset: the methods in the order given, each at every k and seed on
// the same shots, logreg also on the full set, the prior's prompt set evaluated
// zero-shot, and the time per method on stderr.
func TestCompareMethods(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	fm := testfix.FashionMNIST(t)
	out := t.TempDir()
	code, stdout, stderr := run("", "compare", "--weights", weights, "--vocab", vocab, "--dataset", "fashion-mnist:"+fm,
		"--train-limit", "200", "--test-limit", "100", "--methods", "zs-lp,logreg", "--prompts", "bare",
		"--prior-prompts", "photo", "--shots", "1,2", "--seeds", "2", "--out", out)
	if code != 0 {
		t.Fatalf("compare: exit %d:\n%s", code, stderr)
	}
	if strings.TrimSpace(stdout) != filepath.Join(out, "results.json") {
		t.Errorf("stdout %q, want the results file", stdout)
	}
	for _, want := range []string{`few-shot prior: the zero-shot classifier of "a photo of a {}."`,
		"fit and test time per method: zs-lp ", "probe zs-lp         k=2    seed=1 top-1 "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	cmp, err := results.LoadComparison(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.ZeroShot) != 2 || cmp.ZeroShot[1].Prompts != "a photo of a {}." {
		t.Errorf("zero-shot: %d results, want bare and the prior's prompt set", len(cmp.ZeroShot))
	}
	type fit struct {
		method      string
		shots, seed int
	}
	want := []fit{{"zs-lp", 1, 0}, {"zs-lp", 1, 1}, {"zs-lp", 2, 0}, {"zs-lp", 2, 1},
		{"logreg", 1, 0}, {"logreg", 1, 1}, {"logreg", 2, 0}, {"logreg", 2, 1}, {"logreg", 0, 0}}
	if len(cmp.Probes) != len(want) {
		t.Fatalf("%d probe results, want %d", len(cmp.Probes), len(want))
	}
	for i, w := range want {
		r := cmp.Probes[i]
		if got := (fit{r.Method, r.Shots, int(r.Seed)}); got != w {
			t.Errorf("result %d: got %+v want %+v", i, got, w)
		}
		// The shots depend on the seed only: both methods fit the same number.
		if w.shots > 0 && r.Train != 10*w.shots {
			t.Errorf("result %d: %d training images, want %d", i, r.Train, 10*w.shots)
		}
	}
	if len(cmp.Summary) != 5 || cmp.Summary[0].Method != "zs-lp" || cmp.Summary[0].Seeds != 2 {
		t.Errorf("summary %+v, want zs-lp's and logreg's per k", cmp.Summary)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| Method | k = 1 | k = 2 | k = full | n_val |", "| zs-lp |", "| logreg |"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}

// TestCompareMethodsRefused checks that --methods and the flags that depend on it are
// refused by name before anything is loaded (the weights and dataset do not exist).
func TestCompareMethodsRefused(t *testing.T) {
	for i, test := range []struct {
		args  []string
		names []string
	}{
		{[]string{"--methods", "logreg,bogus,clap,nope"}, []string{"--methods", `"bogus"`, `"nope"`, strings.Join(probes.MethodNames(), ", ")}},
		{[]string{"--methods", "clap", "--methods", "clap"}, []string{`"clap" is given twice`}},
		{[]string{"--methods", "clap,lp++", "--C", "1"}, []string{"logreg", "clap, lp++"}},
		{[]string{"--methods", "logreg", "--prior-prompts", "photo"}, []string{`"photo"`, "few-shot"}},
	} {
		args := append([]string{"compare", "--weights", "no-such-weights", "--dataset", "imagefolder:no-such-dir", "--out", t.TempDir()}, test.args...)
		code, _, stderr := run("", args...)
		if code != 2 {
			t.Errorf("test %d: exit %d, want 2 (usage):\n%s", i, code, stderr)
		}
		for _, n := range test.names {
			if !strings.Contains(stderr, n) {
				t.Errorf("test %d: stderr does not name %q:\n%s", i, n, stderr)
			}
		}
	}
}

// TestCompareHelpNamesMethods checks that compare --help offers every registered
// method.
func TestCompareHelpNamesMethods(t *testing.T) {
	code, _, stderr := run("", "compare", "--help")
	if code != 0 {
		t.Fatalf("compare --help: exit %d", code)
	}
	for _, m := range probes.MethodNames() {
		if !strings.Contains(stderr, m) {
			t.Errorf("compare --help does not name %s", m)
		}
	}
}
