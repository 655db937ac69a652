package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/loaders/featcache"
	"github.com/gorgoclip/gorgoclip/probes"
)

func init() {
	register(Command{
		Name:    "extract",
		Summary: "one array task's share of a dataset's image features, into a shared feature cache",
		Run:     runExtract,
	})
}

const extractUsage = `--weights DIR --dataset SPEC --cache DIR --shard I/N|auto [--shards N] [flags]

Computes the image features, with their labels, of the I-th of N parts of every split
(train and test, or --splits) into the feature cache DIR: what one task of a Kubernetes
Indexed Job or a Slurm job array runs, all tasks writing to one shared volume. A later
zeroshot or compare with the same --weights, --dataset, limits and --cache computes no
image features ("N shards read from the cache, 0 computed"); probe reads a split's cache
directory, which extract prints on stdout ("SPLIT<TAB>DIR" a line).

Parts are runs of 256 items of a split (for a wds: dataset without limits, whole tar
shards, each streamed front to back), the same for every task. Each task writes only
its own files, atomically, never waits for another, and skips what a previous run of it
finished; a shard whose images changed since it was cached is recomputed.

--shard auto takes I from $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job; N is --shards,
the Job's completions) or else from $SLURM_ARRAY_TASK_ID (a Slurm job array): with --shards
N the task ID is I itself, so any of 0..N-1 can be resubmitted alone (--array=5,7);
without, the array must be a range (--array=0-31, 1-32 or 0-62:2) and N is
$SLURM_ARRAY_TASK_COUNT. It says which it used.`

func runExtract(env *Env, args []string) error {
	var cfg experiments.Config
	var splits listFlag
	fs := newFlags(env, "extract", extractUsage)
	featureFlags(fs, &cfg)
	fs.IntVar(&cfg.TrainLimit, "train-limit", 0, "use this many training images (0 = all), a seeded random subset")
	fs.StringVar(&cfg.CacheDir, "cache", "", "feature cache directory on the volume the tasks and the comparison share (required)")
	shard := fs.String("shard", "", "I/N: compute the I-th (from 0) of N parts of every split; auto: see above (required)")
	shards := fs.Int("shards", 0, "N for --shard auto: a Kubernetes Indexed Job's completions, a Slurm array's task count")
	fs.Var(&splits, "splits", "splits to extract, comma-separated (default train,test)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case cfg.Weights == "" || cfg.Dataset == "" || cfg.CacheDir == "" || *shard == "":
		return Usagef("--weights, --dataset, --cache and --shard are required (see gorgoclip extract --help)")
	case fs.NArg() > 0:
		return Usagef("unexpected arguments %q", fs.Args())
	case cfg.TrainLimit < 0 || cfg.TestLimit < 0:
		return Usagef("--train-limit and --test-limit need >= 0")
	}
	if _, err := parsePrecision(cfg.Precision); err != nil {
		return err
	}
	if len(splits) == 0 {
		splits = listFlag{"train", "test"}
	}
	task, how, err := resolveTask(*shard, *shards, os.Getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "extract: task %d of %d (%s)\n", task.Index, task.Count, how)
	cfg.Log = env.Stderr
	reps, err := experiments.Extract(cfg, splits, task)
	if err != nil {
		return err
	}
	for _, r := range reps {
		if _, err := fmt.Fprintf(env.Stdout, "%s\t%s\n", r.Split, r.Dir); err != nil {
			return err
		}
	}
	return nil
}

// resolveTask turns --shard and --shards, with the array engines' variables from
// getenv for --shard auto, into a task, and says where its index came from.
func resolveTask(shard string, shards int, getenv func(string) string) (experiments.Task, string, error) {
	var t experiments.Task
	if shard != "auto" {
		i, n, ok := strings.Cut(shard, "/")
		var err1, err2 error
		t.Index, err1 = strconv.Atoi(i)
		t.Count, err2 = strconv.Atoi(n)
		switch {
		case shards != 0:
			return t, "", Usagef("--shards goes with --shard auto (--shard I/N gives N)")
		case !ok || err1 != nil || err2 != nil || t.Validate() != nil:
			return t, "", Usagef("--shard %q: want I/N with 0 <= I < N, or auto", shard)
		}
		return t, "--shard " + shard, nil
	}
	if shards < 0 {
		return t, "", Usagef("--shards %d: need a positive count", shards)
	}
	if v := getenv("JOB_COMPLETION_INDEX"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil {
			return t, "", Usagef("--shard auto: JOB_COMPLETION_INDEX=%q is not an integer", v)
		}
		if shards == 0 {
			return t, "", Usagef("--shard auto: JOB_COMPLETION_INDEX=%d (a Kubernetes Indexed Job) needs --shards N, the Job's completions", i)
		}
		t = experiments.Task{Index: i, Count: shards}
		if t.Validate() != nil {
			return t, "", Usagef("--shard auto: JOB_COMPLETION_INDEX=%d is outside [0, %d) (--shards)", i, shards)
		}
		return t, fmt.Sprintf("JOB_COMPLETION_INDEX=%d, --shards %d", i, shards), nil
	}
	if getenv("SLURM_ARRAY_TASK_ID") != "" {
		return slurmTask(shards, getenv)
	}
	return t, "", Usagef("--shard auto: neither JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (a Slurm job array) is set; give --shard I/N")
}

// slurmTask is --shard auto in a Slurm job array. With --shards N the task ID is the
// part itself, so that any of 0..N-1 can be resubmitted alone (--array=5,7); without,
// the array is a range and its position in it is the part.
func slurmTask(shards int, getenv func(string) string) (experiments.Task, string, error) {
	var t experiments.Task
	num := func(name string, def int) (int, error) {
		s := getenv(name)
		if s == "" && def >= 0 {
			return def, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, Usagef("--shard auto: %s=%q is not an integer", name, s)
		}
		return n, nil
	}
	id, err := num("SLURM_ARRAY_TASK_ID", -1)
	if err != nil {
		return t, "", err
	}
	if shards > 0 {
		t = experiments.Task{Index: id, Count: shards}
		if t.Validate() != nil {
			return t, "", Usagef("--shard auto: SLURM_ARRAY_TASK_ID=%d is outside [0, %d) (--shards)", id, shards)
		}
		return t, fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d, --shards %d", id, shards), nil
	}
	count, err := num("SLURM_ARRAY_TASK_COUNT", -1)
	if err != nil {
		return t, "", err
	}
	first, err := num("SLURM_ARRAY_TASK_MIN", 0)
	if err != nil {
		return t, "", err
	}
	step, err := num("SLURM_ARRAY_TASK_STEP", 1)
	if err != nil {
		return t, "", err
	}
	if step < 1 || (id-first)%step != 0 {
		return t, "", Usagef("--shard auto: SLURM_ARRAY_TASK_ID=%d is not SLURM_ARRAY_TASK_MIN=%d plus a multiple of SLURM_ARRAY_TASK_STEP=%d: submit the array as a range, or give --shards", id, first, step)
	}
	t = experiments.Task{Index: (id - first) / step, Count: count}
	how := fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d of SLURM_ARRAY_TASK_COUNT=%d", id, count)
	if first != 0 || step != 1 {
		how += fmt.Sprintf(", SLURM_ARRAY_TASK_MIN=%d, SLURM_ARRAY_TASK_STEP=%d", first, step)
	}
	if t.Validate() != nil {
		return t, "", Usagef("--shard auto: %s gives task %d, outside [0, %d): submit the array as a range, or give --shards", how, t.Index, count)
	}
	return t, how, nil
}

// loadCached reads a split's feature-cache directory (as extract prints it) as a
// probe dataset, leaving out the items that were skipped as unreadable.
func loadCached(dir string) (probes.Dataset, error) {
	r, err := featcache.Load(dir, nil)
	if err != nil {
		return probes.Dataset{}, fmt.Errorf("probe: %w (run gorgoclip extract or compare to compute it)", err)
	}
	x, labels, index := r.Kept()
	d := probes.Dataset{X: x, N: len(index), D: r.Dim}
	for _, y := range labels {
		d.Y = append(d.Y, int(y))
	}
	if d.N == 0 {
		return probes.Dataset{}, fmt.Errorf("probe: %s: no readable items", dir)
	}
	return d, nil
}
