package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/internal/progress"
	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// featureFlags binds the flags that decide which image features are computed, and
// how, to cfg: zeroshot, compare and extract share them, and share a cache when they
// agree on them.
func featureFlags(fs *flag.FlagSet, cfg *experiments.Config) {
	fs.StringVar(&cfg.Weights, "weights", "", "model directory: OpenAI .npy, Hugging Face (safetensors or pytorch_model.bin) or converted (required)")
	fs.StringVar(&cfg.Dataset, "dataset", "", "dataset spec: imagefolder:DIR (DIR/train/, DIR/val/, or DIR/<class>/ as a test split), parquet:FILE|DIR, fashion-mnist:DIR, mnist:DIR, cifar10:DIR, cifar100:DIR, wds:DIR (required)")
	fs.IntVar(&cfg.TestLimit, "test-limit", 0, "use this many test images (0 = all), a seeded random subset")
	fs.Uint64Var(&cfg.LimitSeed, "limit-seed", 0, "seed of the --train-limit/--test-limit subsets")
	fs.IntVar(&cfg.BatchSize, "batch", 32, "images per model run")
	fs.StringVar(&cfg.Device, "device", "cpu", deviceHelp)
	fs.StringVar(&cfg.Precision, "precision", "fp32", precisionHelp)
	fs.IntVar(&cfg.Workers, "workers", 0, "image decoding goroutines (0 = number of CPUs)")
	fs.BoolVar(&cfg.SkipBad, "skip-bad", false, "skip unreadable images and list them in the results instead of failing")
}

// experimentFlags binds the flags zeroshot and compare share to cfg.
func experimentFlags(env *Env, fs *flag.FlagSet, cfg *experiments.Config, prompts *listFlag) {
	featureFlags(fs, cfg)
	fs.StringVar(&cfg.Vocab, "vocab", "", "BPE merges file (default: beside the weights, $GORGOCLIP_VOCAB, or the fetch cache)")
	fs.StringVar(&cfg.DatasetName, "dataset-name", "", "dataset name for the results, as CLIP_benchmark names it (cifar10, imagenet1k; default: the spec's last path element)")
	fs.Var(prompts, "prompts", `prompt sets, comma-separated or repeated: bare, photo ("a photo of a {}."), article ("a photo of a {}"), imagenet80 (the 80-template ImageNet ensemble; run gorgoclip fetch templates first), a literal template with {}, openai:prompts.md#DATASET (prompts.md from the working directory or where fetch templates saved it), or a templates file (default: a wds: dataset's own templates, else bare,photo)`)
	fs.StringVar(&cfg.CacheDir, "cache", "", "feature cache directory (default OUT/cache): an interrupted run resumes from it, and features that gorgoclip extract tasks wrote there are read, not computed")
	fs.StringVar(&cfg.Model, "model-name", "", "model name for the results (default: from the config)")
	fs.StringVar(&cfg.Pretrained, "pretrained", "", "weights name for the results (default: the weights directory's name)")
	cfg.Provenance.Command = env.commandLine()
}

func init() {
	register(Command{Name: "compare", Summary: "zero-shot against k-shot probes and few-shot methods: results.json, plots, report.md", Run: runCompare})
	register(Command{Name: "zeroshot", Summary: "zero-shot classification of a dataset with one or more prompt sets", Run: runZeroShot})
}

var compareUsage = `--weights DIR --dataset SPEC --out DIR [flags]

Zero-shot CLIP against k-shot classifiers on one dataset, as in the CLIP paper's
Figure 6: encodes the training and test images once (cached in --cache), evaluates each
prompt set zero-shot, and fits every method of --methods at every k of --shots over
--seeds draws of the shots, all on the same features: the shots depend on the seed only,
so every method sees the same ones. logreg (the paper's L-BFGS probe) is also fitted on
the whole training set. coop (CoOp: 16 learned context vectors trained through the text
tower with the paper's schedule, see gorgoclip probe --help) runs only when named (or
with --methods all): it takes minutes a fit with ViT-B/32 on two cores. The feature-only
methods other than logreg start from the zero-shot classifier of --prior-prompts (per class the mean of the normalised template embeddings,
renormalised) with the model's exp(logit_scale); ZS-LP and CLAP start their prototypes
at the measured mean norm of the raw class embeddings. Hyperparameters are chosen on
min(k, 4) validation images per class drawn from the training pool, disjoint from the
shots, never on the test set. A method that some class has too few training images for
at a k (the shots plus its validation set) is skipped there, said on stderr and listed
in results.json (skipped_shots) and the report.

Writes OUT/results.json (one result per method, k and seed in CLIP_benchmark's
conventions: method, fewshot_k (-1 for the full set), seed; a summary per method and
k), OUT/clip_benchmark/ and OUT/results.jsonl, the figures and OUT/report.md (with a
table of method against k). Progress and the fit time per method go to stderr.`

func runCompare(env *Env, args []string) error {
	var cfg experiments.Config
	var prompts, shots, methods listFlag
	fs := newFlags(env, "compare", compareUsage)
	experimentFlags(env, fs, &cfg, &prompts)
	fs.IntVar(&cfg.TrainLimit, "train-limit", 0, "use this many training images (0 = all), a seeded class-balanced subset")
	normalize := fs.Bool("normalize", true, "L2-normalise the image features before logreg, as CLIP_benchmark does (--normalize=false: raw projected features; the other methods always normalise)")
	fs.Var(&methods, "methods", "methods fitted at every k, comma-separated or repeated: "+strings.Join(experiments.MethodNames(), ", ")+
		", or all (default: every one but coop, which trains prompts through the text tower, minutes a fit; see gorgoclip probe --help)")
	fs.StringVar(&cfg.PriorPrompts, "prior-prompts", "", `prompt set of the zero-shot classifier the methods other than logreg start from, fixed before any test result (default: a wds: dataset's own templates, else "photo"; evaluated zero-shot too)`)
	fs.Var(&shots, "shots", "k of the k-shot fits, comma-separated (default 1,2,4,8,16)")
	fs.IntVar(&cfg.Seeds, "seeds", 3, "draws of the shots per k (every method gets the same shots)")
	fs.BoolVar(&cfg.NoFull, "no-full", false, "skip logreg on the whole training set")
	fs.Float64Var(&cfg.C, "C", 0, "fix logreg's inverse L2 strength (default: sweep 1e-6..1e6 on a validation split, as the CLIP paper)")
	fs.StringVar(&cfg.Out, "out", "", "output directory for results.json, plots and report.md (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Weights == "" || cfg.Dataset == "" || cfg.Out == "" {
		return Usagef("--weights, --dataset and --out are required (see gorgoclip compare --help)")
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected arguments %q", fs.Args())
	}
	if _, err := parsePrecision(cfg.Precision); err != nil {
		return err
	}
	for _, s := range shots {
		k, err := strconv.Atoi(s)
		if err != nil || k <= 0 {
			return Usagef("--shots: %q is not a positive integer", s)
		}
		cfg.Shots = append(cfg.Shots, k)
	}
	cfg.Prompts = prompts
	cfg.Methods = methods
	cfg.NoNormalize = !*normalize
	if err := cfg.CheckMethods(); err != nil {
		return Usagef("--methods: %v", err)
	}
	cfg.Log = progress.NewLog(env.Stderr)
	defer resumeOnInterrupt(cfg.Log, "compare", cacheDir(cfg))()
	if _, err := experiments.Compare(cfg); err != nil {
		return err
	}
	_, err := fmt.Fprintln(env.Stdout, filepath.Join(cfg.Out, "results.json"))
	return err
}

// cacheDir is where cfg's features are cached (experiments.Config.CacheDir's default).
func cacheDir(cfg experiments.Config) string {
	if cfg.CacheDir == "" && cfg.Out != "" {
		return filepath.Join(cfg.Out, "cache")
	}
	return cfg.CacheDir
}

// resumeOnInterrupt makes Ctrl-C end the run with a word on how to go on: the
// features computed so far are in cache, and the same command resumes from them.
// It returns the function that stops listening.
func resumeOnInterrupt(w io.Writer, name, cache string) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt)
	done := make(chan struct{})
	go func() {
		select {
		case <-ch:
			msg := "the same command starts again from the beginning"
			if cache != "" {
				msg = fmt.Sprintf("the image features computed so far are kept in %s: rerun the same command to resume from them", cache)
			}
			fmt.Fprintf(w, "\ngorgoclip %s: interrupted; %s\n", name, msg)
			os.Exit(130)
		case <-done:
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

func runZeroShot(env *Env, args []string) error {
	var cfg experiments.Config
	var prompts listFlag
	fs := newFlags(env, "zeroshot", "--weights DIR --dataset SPEC [--out DIR] [flags]")
	experimentFlags(env, fs, &cfg, &prompts)
	fs.StringVar(&cfg.Out, "out", "", "write OUT/zeroshot.json and the CLIP_benchmark export OUT/clip_benchmark/ (default: print the JSON to stdout only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Weights == "" || cfg.Dataset == "" {
		return Usagef("--weights and --dataset are required (see gorgoclip zeroshot --help)")
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected arguments %q", fs.Args())
	}
	if _, err := parsePrecision(cfg.Precision); err != nil {
		return err
	}
	cfg.Prompts = prompts
	cfg.Log = progress.NewLog(env.Stderr)
	defer resumeOnInterrupt(cfg.Log, "zeroshot", cfg.CacheDir)()
	cmp, err := experiments.ZeroShotRun(cfg)
	if err != nil {
		return err
	}
	b, err := results.Encode(cmp)
	if err != nil {
		return err
	}
	if _, err := env.Stdout.Write(b); err != nil {
		return fmt.Errorf("writing stdout: %w", err)
	}
	return nil
}
