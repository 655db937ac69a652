package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/experiments"
	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

func TestResolveTask(t *testing.T) {
	for i, test := range []struct {
		shard  string
		shards int
		env    map[string]string
		want   experiments.Task
		how    string // substring of the description, or of the error when err
		err    bool
	}{
		{"1/3", 0, nil, experiments.Task{Index: 1, Count: 3}, "--shard 1/3", false},
		{"0/1", 0, map[string]string{"JOB_COMPLETION_INDEX": "5"}, experiments.Task{Index: 0, Count: 1}, "--shard 0/1", false},
		{"auto", 4, map[string]string{"JOB_COMPLETION_INDEX": "2"}, experiments.Task{Index: 2, Count: 4}, "JOB_COMPLETION_INDEX=2, --shards 4", false},
		// An Indexed Job's variable wins over Slurm's.
		{"auto", 4, map[string]string{"JOB_COMPLETION_INDEX": "0", "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, experiments.Task{Index: 0, Count: 4}, "JOB_COMPLETION_INDEX=0", false},
		{"auto", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, experiments.Task{Index: 3, Count: 4}, "SLURM_ARRAY_TASK_ID=3 of SLURM_ARRAY_TASK_COUNT=4", false},
		{"auto", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "1"}, experiments.Task{Index: 7, Count: 8}, "SLURM_ARRAY_TASK_MIN=1", false},
		{"auto", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "20", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_STEP": "5"}, experiments.Task{Index: 3, Count: 4}, "SLURM_ARRAY_TASK_STEP=5", false},

		{"3/3", 0, nil, experiments.Task{}, `--shard "3/3": want I/N`, true},
		{"x", 0, nil, experiments.Task{}, `--shard "x"`, true},
		{"1/3", 3, nil, experiments.Task{}, "--shards goes with --shard auto", true},
		{"auto", 0, nil, experiments.Task{}, "neither JOB_COMPLETION_INDEX", true},
		{"auto", 0, map[string]string{"JOB_COMPLETION_INDEX": "1"}, experiments.Task{}, "needs --shards N", true},
		{"auto", 2, map[string]string{"JOB_COMPLETION_INDEX": "2"}, experiments.Task{}, "JOB_COMPLETION_INDEX=2 is outside [0, 2)", true},
		{"auto", 2, map[string]string{"JOB_COMPLETION_INDEX": "one"}, experiments.Task{}, `JOB_COMPLETION_INDEX="one" is not an integer`, true},
		{"auto", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, experiments.Task{}, `SLURM_ARRAY_TASK_COUNT="" is not an integer`, true},
		// With --shards the task ID is the part: a resubmitted --array=5,7 keeps its parts.
		{"auto", 8, map[string]string{"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "5"}, experiments.Task{Index: 7, Count: 8}, "SLURM_ARRAY_TASK_ID=7, --shards 8", false},
		{"auto", 8, map[string]string{"SLURM_ARRAY_TASK_ID": "8"}, experiments.Task{}, "SLURM_ARRAY_TASK_ID=8 is outside [0, 8) (--shards)", true},
		// --array=1,5,9 (a list): the index cannot be told, and is refused.
		{"auto", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1"}, experiments.Task{}, "outside [0, 3): submit the array as a range", true},
		{"auto", 0, map[string]string{"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_STEP": "4"}, experiments.Task{}, "not SLURM_ARRAY_TASK_MIN=0 plus a multiple", true},
	} {
		got, how, err := resolveTask(test.shard, test.shards, func(k string) string { return test.env[k] })
		if test.err {
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), test.how) || !errorsAs(err, &ue) {
				t.Errorf("test %d: got %v, %v; want a usage error mentioning %q", i, got, err, test.how)
			}
			continue
		}
		if err != nil || got != test.want || !strings.Contains(how, test.how) {
			t.Errorf("test %d: got %+v %q %v; want %+v and %q", i, got, how, err, test.want, test.how)
		}
	}
}

func errorsAs(err error, ue **UsageError) bool {
	u, ok := err.(*UsageError)
	*ue = u
	return ok
}

// exArgs are the model and dataset arguments of the array-job tests: dataset, a
// spec, with subsets of trainLimit and testLimit images.
func exArgs(t *testing.T, dataset string, trainLimit, testLimit int) []string {
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	return []string{"--weights", weights, "--dataset", dataset, "--train-limit", strconv.Itoa(trainLimit),
		"--test-limit", strconv.Itoa(testLimit), "--batch", "32", "--workers", "2"}
}

// exImageFolder writes an image folder of three classes with perTrain and perVal
// small PNGs each, the class setting the colours.
func exImageFolder(t *testing.T, perTrain, perVal int) string {
	dir := t.TempDir()
	for _, split := range []struct {
		name string
		n    int
	}{{"train", perTrain}, {"val", perVal}} {
		for ci, class := range []string{"red", "green", "blue"} {
			for i := 0; i < split.n; i++ {
				biPNG(t, filepath.Join(dir, split.name, class, fmt.Sprintf("%03d.png", i)), 12+i%5, 12, 40*ci+i%7)
			}
		}
	}
	return dir
}

// exCompare runs compare on cache into out and returns its stderr.
func exCompare(t *testing.T, bin string, common []string, cache, out string) string {
	t.Helper()
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	// Raw features in the probes, as probe reads them from the cache.
	args := append([]string{"compare", "--vocab", vocab, "--shots", "1,2", "--seeds", "2", "--C", "1", "--normalize=false", "--cache", cache, "--out", out}, common...)
	cmd, stderr, exited := krStart(t, bin, nil, args...)
	<-exited
	if !cmd.ProcessState.Success() {
		t.Fatalf("compare: %v:\n%s", cmd.ProcessState, stderr)
	}
	return stderr.String()
}

// TestExtractArrayJob is the array job of issue 19: three tasks of a Kubernetes
// Indexed Job (JOB_COMPLETION_INDEX 0..2) and one Slurm array task (the fourth of
// four) write one cache concurrently; compare then computes no feature and its
// results equal, metric for metric, those of one process computing everything; probe
// reads the split directories extract printed.
func TestExtractArrayJob(t *testing.T) {
	bin := krBinary(t)
	// 3 train shards and 2 test shards of 256 images.
	common := exArgs(t, "imagefolder:"+exImageFolder(t, 220, 110), 600, 300)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	extract := append([]string{"extract", "--cache", cache, "--shard", "auto"}, common...)
	type task struct {
		env  []string
		args []string
	}
	var tasks []task
	for i := range 3 {
		tasks = append(tasks, task{[]string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(i), "SLURM_ARRAY_TASK_ID="}, []string{"--shards", "4"}})
	}
	tasks = append(tasks, task{[]string{"JOB_COMPLETION_INDEX=", "SLURM_ARRAY_TASK_ID=3", "SLURM_ARRAY_TASK_COUNT=4", "SLURM_ARRAY_TASK_MIN=0"}, nil})
	var cmds []*exec.Cmd
	var stderrs []*bytes.Buffer
	var stdouts []*bytes.Buffer
	var done []chan struct{}
	for _, tk := range tasks {
		var out bytes.Buffer
		cmd := exec.Command(bin, append(append([]string{}, extract...), tk.args...)...)
		cmd.Env = append(os.Environ(), tk.env...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		cmds, stderrs, stdouts, done = append(cmds, cmd), append(stderrs, &stderr), append(stdouts, &out), append(done, exited)
	}
	computed := 0
	for i, cmd := range cmds {
		<-done[i]
		if !cmd.ProcessState.Success() {
			t.Fatalf("task %d: %v:\n%s", i, cmd.ProcessState, stderrs[i])
		}
		log := stderrs[i].String()
		want := []string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(i) + ", --shards 4", "SLURM_ARRAY_TASK_ID=3 of SLURM_ARRAY_TASK_COUNT=4"}[min(i, 3)/3]
		if !strings.Contains(log, "extract: task "+strconv.Itoa(i)+" of 4 ("+want) {
			t.Errorf("task %d does not say where its index came from (%s):\n%s", i, want, log)
		}
		for _, m := range regexp.MustCompile(`task \d of 4: (\d+) shards read from the cache, (\d+) computed`).FindAllStringSubmatch(log, -1) {
			n, _ := strconv.Atoi(m[2])
			computed += n
		}
	}
	if computed != 5 {
		t.Errorf("the tasks computed %d shards together, want each of the 5 once", computed)
	}
	if n := krCheckCache(t, cache, 32); n != 5 {
		t.Errorf("%d complete shards in the cache, want 5", n)
	}

	got := exCompare(t, bin, common, cache, filepath.Join(dir, "out-array"))
	if read, comp, lines := krCacheCounts(t, got); lines != 2 || read != 5 || comp != 0 {
		t.Errorf("compare after the array job: %d shards read, %d computed (%d lines), want 5 and 0:\n%s", read, comp, lines, got)
	}
	single := exCompare(t, bin, common, filepath.Join(dir, "cache-single"), filepath.Join(dir, "out-single"))
	if read, comp, _ := krCacheCounts(t, single); read != 0 || comp != 5 {
		t.Errorf("single process: %d read, %d computed; want 0 and 5", read, comp)
	}
	a, aRaw := krLoadMetrics(t, filepath.Join(dir, "out-array", "results.json"))
	b, bRaw := krLoadMetrics(t, filepath.Join(dir, "out-single", "results.json"))
	if !reflect.DeepEqual(a, b) {
		t.Errorf("results after the array job differ from one process's:\n%s\nwant:\n%s", aRaw, bRaw)
	}

	// Every task printed the split directories, the same ones.
	dirs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdouts[0].String()), "\n") {
		split, d, _ := strings.Cut(line, "\t")
		dirs[split] = d
	}
	if len(dirs) != 2 || dirs["train"] == "" || !strings.HasPrefix(dirs["test"], cache) || stdouts[3].String() != stdouts[0].String() {
		t.Fatalf("extract printed %q and %q, want the train and test directories", stdouts[0], stdouts[3])
	}
	code, out, stderr := run("", "probe", "--C", "1", "--train-features", dirs["train"], "--test-features", dirs["test"], "--classes", "3")
	if code != 0 {
		t.Fatalf("probe on the cache: exit %d:\n%s", code, stderr)
	}
	var pr struct {
		Train   int            `json:"n_train"`
		Test    int            `json:"n_test"`
		Metrics map[string]any `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(out), &pr); err != nil || pr.Train != 600 || pr.Test != 300 {
		t.Fatalf("probe on the cache: %v %+v:\n%s", err, pr, out)
	}
	full := b.Probes[len(b.Probes)-1]
	if full.Shots != 0 || pr.Metrics["lp_acc1"] != full.Metrics["lp_acc1"] {
		t.Errorf("probe on the cache: lp_acc1 %v; compare's full-data probe at the same C: %v", pr.Metrics["lp_acc1"], full.Metrics["lp_acc1"])
	}
}

var exTaskRE = regexp.MustCompile(`features imagefolder/train: task 0 of 2: (\d+) shards read from the cache, (\d+) computed`)

// TestExtractKilledTask: a task killed mid-way (SIGKILL) leaves only complete shards;
// its rerun computes only what is missing, and the comparison after both tasks
// computes nothing.
func TestExtractKilledTask(t *testing.T) {
	bin := krBinary(t)
	// 8 train shards, of which task 0 of 2 has 4, and 1 test shard.
	common := exArgs(t, "imagefolder:"+exImageFolder(t, 690, 30), 2048, 0)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	task0 := append([]string{"extract", "--cache", cache, "--shard", "0/2"}, common...)
	records := func() int {
		m, _ := filepath.Glob(filepath.Join(cache, "*-train-*", "shard-*.json"))
		return len(m)
	}
	cmd, stderr, exited := krStart(t, bin, nil, task0...)
	if !krWaitFor(t, exited, 60*time.Second, func() bool { return records() >= 2 }) {
		t.Fatalf("task 0 wrote no 2 shards (%v):\n%s", cmd.ProcessState, stderr)
	}
	krKill(t, cmd, exited)
	atKill := krCheckCache(t, cache, 32)
	if atKill < 2 || atKill >= 4 {
		t.Fatalf("%d shards at the kill, want 2..3 of task 0's 4 (it finished before the kill?):\n%s", atKill, stderr)
	}
	cmd, stderr, exited = krStart(t, bin, nil, task0...)
	<-exited
	if !cmd.ProcessState.Success() {
		t.Fatalf("rerun task 0: %v:\n%s", cmd.ProcessState, stderr)
	}
	m := exTaskRE.FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("rerun task 0 does not report its shards:\n%s", stderr)
	}
	read, _ := strconv.Atoi(m[1])
	comp, _ := strconv.Atoi(m[2])
	if read < atKill || read+comp != 4 || comp == 0 {
		t.Errorf("rerun task 0: %d read, %d computed; want >= %d read of 4:\n%s", read, comp, atKill, stderr)
	}
	cmd, stderr, exited = krStart(t, bin, nil, append([]string{"extract", "--cache", cache, "--shard", "1/2"}, common...)...)
	<-exited
	if !cmd.ProcessState.Success() {
		t.Fatalf("task 1: %v:\n%s", cmd.ProcessState, stderr)
	}
	if n := krCheckCache(t, cache, 32); n != 9 {
		t.Errorf("%d shards after both tasks, want 9", n)
	}
	got := exCompare(t, bin, common, cache, filepath.Join(dir, "out"))
	if read, comp, _ := krCacheCounts(t, got); read != 9 || comp != 0 {
		t.Errorf("compare after the tasks: %d read, %d computed; want 9 and 0:\n%s", read, comp, got)
	}
}
