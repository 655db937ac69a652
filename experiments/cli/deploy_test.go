package cli

// The ready-made jobs of deploy/ run for real: the Kubernetes Indexed Job's pods are
// the gorgoclip processes of its manifest, one per JOB_COMPLETION_INDEX, over a
// temporary directory standing for the shared volume; the Slurm scripts are submitted
// to a stand-in sbatch that runs the array's tasks at once and the comparison after
// them. Both must end with a comparison that computed no feature.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// yamlLine is one meaningful line of a YAML file: its indentation and text without
// the comment.
type yamlLine struct {
	n, indent int
	text      string
}

var yamlKeyRE = regexp.MustCompile(`^([A-Za-z0-9_.-]+):(?: +(.*))?$`)

// parseYAML reads the block-style subset of YAML the manifests are written in:
// mappings, sequences ("- "), plain and double-quoted scalars, comments. Anything
// else (flow style, anchors, multi-line scalars, tabs) is an error, which keeps the
// manifests within what this checks. Plain integers become ints; everything else is
// a string, so that an unquoted number where Kubernetes wants a string shows.
func parseYAML(src string) (any, error) {
	var ls []yamlLine
	for i, raw := range strings.Split(src, "\n") {
		if strings.Contains(raw, "\t") {
			return nil, fmt.Errorf("line %d: tab", i+1)
		}
		text := strings.TrimRight(yamlStripComment(raw), " ")
		if strings.TrimSpace(text) == "" {
			continue
		}
		trimmed := strings.TrimLeft(text, " ")
		ls = append(ls, yamlLine{n: i + 1, indent: len(text) - len(trimmed), text: trimmed})
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("empty")
	}
	v, next, err := yamlBlock(ls, 0, ls[0].indent)
	if err == nil && next < len(ls) {
		err = fmt.Errorf("line %d: unexpected indentation", ls[next].n)
	}
	return v, err
}

// yamlStripComment cuts a "#" comment that starts a line or follows a space, outside
// double quotes.
func yamlStripComment(line string) string {
	inQuote := false
	for k, c := range line {
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == '#' && !inQuote && (k == 0 || line[k-1] == ' '):
			return line[:k]
		}
	}
	return line
}

func yamlBlock(ls []yamlLine, i, indent int) (any, int, error) {
	if ls[i].text == "-" || strings.HasPrefix(ls[i].text, "- ") {
		return yamlSeq(ls, i, indent)
	}
	return yamlMap(ls, i, indent)
}

func yamlSeq(ls []yamlLine, i, indent int) (any, int, error) {
	var out []any
	for i < len(ls) && ls[i].indent == indent && (ls[i].text == "-" || strings.HasPrefix(ls[i].text, "- ")) {
		rest := strings.TrimLeft(strings.TrimPrefix(ls[i].text, "-"), " ")
		var v any
		var err error
		switch {
		case rest == "":
			if i+1 >= len(ls) || ls[i+1].indent <= indent {
				return nil, i, fmt.Errorf("line %d: empty item", ls[i].n)
			}
			v, i, err = yamlBlock(ls, i+1, ls[i+1].indent)
		case yamlKeyRE.MatchString(rest):
			// "- key: value" opens a mapping whose keys line up with "key".
			inner := indent + len(ls[i].text) - len(rest)
			ls[i] = yamlLine{n: ls[i].n, indent: inner, text: rest}
			v, i, err = yamlMap(ls, i, inner)
		default:
			v, err = yamlScalar(rest, ls[i].n)
			i++
		}
		if err != nil {
			return nil, i, err
		}
		out = append(out, v)
	}
	return out, i, nil
}

func yamlMap(ls []yamlLine, i, indent int) (any, int, error) {
	m := map[string]any{}
	for i < len(ls) && ls[i].indent == indent {
		kv := yamlKeyRE.FindStringSubmatch(ls[i].text)
		if kv == nil {
			return nil, i, fmt.Errorf("line %d: want KEY: VALUE, got %q", ls[i].n, ls[i].text)
		}
		if _, dup := m[kv[1]]; dup {
			return nil, i, fmt.Errorf("line %d: key %q repeated", ls[i].n, kv[1])
		}
		var v any
		var err error
		switch next := i + 1; {
		case kv[2] != "":
			v, err = yamlScalar(kv[2], ls[i].n)
			i++
		case next < len(ls) && (ls[next].indent > indent || (ls[next].indent == indent && strings.HasPrefix(ls[next].text, "- "))):
			v, i, err = yamlBlock(ls, next, ls[next].indent)
		default:
			return nil, i, fmt.Errorf("line %d: key %q has no value", ls[i].n, kv[1])
		}
		if err != nil {
			return nil, i, err
		}
		m[kv[1]] = v
	}
	if i < len(ls) && ls[i].indent > indent {
		return nil, i, fmt.Errorf("line %d: unexpected indentation", ls[i].n)
	}
	return m, i, nil
}

func yamlScalar(s string, line int) (any, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		if len(s) < 2 || !strings.HasSuffix(s, `"`) || strings.ContainsAny(s[1:len(s)-1], `"\`) {
			return nil, fmt.Errorf("line %d: bad quoted string %s", line, s)
		}
		return s[1 : len(s)-1], nil
	case strings.ContainsAny(s[:1], "[{&*!|>'%@`"):
		return nil, fmt.Errorf("line %d: %q is outside the YAML subset the manifests keep to", line, s)
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	return s, nil
}

func TestParseYAML(t *testing.T) {
	v, err := parseYAML("a: 1 # one\nb:\n  - x\n  - \"2\"\n  - k: v\n    l: w\nc:\n  d: e#f\nlist:\n- 3\n")
	want := map[string]any{"a": 1, "b": []any{"x", "2", map[string]any{"k": "v", "l": "w"}}, "c": map[string]any{"d": "e#f"}, "list": []any{3}}
	if err != nil || fmt.Sprint(v) != fmt.Sprint(want) {
		t.Errorf("got %v, %v; want %v", v, err, want)
	}
	for i, bad := range []string{"a: [1, 2]\n", "a: 1\n  b: 2\n", "a: 1\na: 2\n", "a:\n", "x\n", "a: \"q\n", "\ta: 1\n"} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("test %d: %q parsed", i, bad)
		}
	}
}

// yget walks v by map keys and list indices.
func yget(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a mapping at %q", path, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path, k)
			}
			v = l[k]
		}
	}
	return v
}

// deployManifest reads deploy/kubernetes/NAME and returns it with its container's
// args, which must all be strings.
func deployManifest(t *testing.T, name string) (any, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseYAML(string(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if yget(t, m, "apiVersion") != "batch/v1" || yget(t, m, "kind") != "Job" {
		t.Errorf("%s is not a batch/v1 Job", name)
	}
	var args []string
	for i, a := range yget(t, m, "spec", "template", "spec", "containers", 0, "args").([]any) {
		s, ok := a.(string)
		if !ok {
			t.Errorf("%s: args[%d] = %v is not a string (quote it)", name, i, a)
		}
		args = append(args, s)
	}
	return m, args
}

// flagValue returns the value of --name in args, or "".
func flagValue(args []string, name string) string {
	if i := slices.Index(args, "--"+name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// deployVolume lays out a stand-in for the shared volume: the fixture weights and
// vocabulary where the manifests and scripts expect downloads, and a small image
// folder.
func deployVolume(t *testing.T, weightsAt, vocabDir, datasetAt string) {
	t.Helper()
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	for _, l := range [][2]string{{weights, weightsAt}, {vocab, filepath.Join(vocabDir, filepath.Base(vocab))}, {exImageFolder(t, 100, 50), datasetAt}} {
		if err := os.MkdirAll(filepath.Dir(l[1]), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeployKubernetes(t *testing.T) {
	bin := krBinary(t)
	job, extract := deployManifest(t, "extract-job.yaml")
	cmpJob, compare := deployManifest(t, "compare-job.yaml")
	completions := yget(t, job, "spec", "completions")
	if yget(t, job, "spec", "completionMode") != "Indexed" || completions != yget(t, job, "spec", "parallelism") ||
		fmt.Sprint(completions) != flagValue(extract, "shards") || flagValue(extract, "shard") != "auto" || extract[0] != "extract" {
		t.Fatalf("extract-job.yaml: want an Indexed Job whose completions and parallelism equal --shards, running extract --shard auto; args %q", extract)
	}
	if compare[0] != "compare" || flagValue(compare, "out") == "" {
		t.Fatalf("compare-job.yaml runs %q", compare)
	}
	for _, f := range []string{"weights", "dataset", "train-limit", "test-limit", "limit-seed", "batch", "cache", "skip-bad"} {
		if flagValue(extract, f) != flagValue(compare, f) {
			t.Errorf("--%s: %q in extract-job.yaml, %q in compare-job.yaml: they would not share features", f, flagValue(extract, f), flagValue(compare, f))
		}
	}
	spec := func(m any) any { return yget(t, m, "spec", "template", "spec") }
	mount := yget(t, spec(job), "containers", 0, "volumeMounts", 0, "mountPath").(string)
	for _, m := range []any{job, cmpJob} {
		if yget(t, spec(m), "restartPolicy") != "Never" || yget(t, spec(m), "volumes", 0, "persistentVolumeClaim", "claimName") != yget(t, spec(job), "volumes", 0, "persistentVolumeClaim", "claimName") ||
			yget(t, spec(m), "containers", 0, "image") != yget(t, spec(job), "containers", 0, "image") ||
			yget(t, spec(m), "containers", 0, "volumeMounts", 0, "mountPath") != mount {
			t.Errorf("the two Jobs differ in restart policy, volume, image or mount path")
		}
	}
	for _, p := range []string{flagValue(extract, "weights"), strings.TrimPrefix(flagValue(extract, "dataset"), "imagefolder:"), flagValue(extract, "cache"), flagValue(compare, "out")} {
		if !strings.HasPrefix(p, mount+"/") {
			t.Errorf("%s is not on the shared volume %s", p, mount)
		}
	}

	// The Job's pods, run here: the volume is a temporary directory.
	vol := t.TempDir()
	local := func(args []string) []string {
		out := slices.Clone(args)
		for i, a := range out {
			out[i] = strings.ReplaceAll(a, mount, vol)
		}
		return out
	}
	var env []string
	for _, e := range yget(t, spec(job), "containers", 0, "env").([]any) {
		env = append(env, fmt.Sprintf("%s=%s", yget(t, e, "name"), strings.ReplaceAll(yget(t, e, "value").(string), mount, vol)))
	}
	deployVolume(t, local([]string{flagValue(extract, "weights")})[0], filepath.Join(local([]string{yget(t, spec(job), "containers", 0, "env", 0, "value").(string)})[0], "vocab"),
		local([]string{strings.TrimPrefix(flagValue(extract, "dataset"), "imagefolder:")})[0])
	n := completions.(int)
	var pods []*exec.Cmd
	var logs []*bytes.Buffer
	var exits []chan struct{}
	for i := range n {
		cmd, stderr, exited := krStart(t, bin, append(slices.Clone(env), "JOB_COMPLETION_INDEX="+strconv.Itoa(i)), local(extract[:])...)
		pods, logs, exits = append(pods, cmd), append(logs, stderr), append(exits, exited)
	}
	for i, cmd := range pods {
		<-exits[i]
		if !cmd.ProcessState.Success() {
			t.Fatalf("pod %d: %v:\n%s", i, cmd.ProcessState, logs[i])
		}
	}
	cmd, stderr, exited := krStart(t, bin, env, local(compare)...)
	<-exited
	if !cmd.ProcessState.Success() {
		t.Fatalf("compare pod: %v:\n%s", cmd.ProcessState, stderr)
	}
	if read, comp, lines := krCacheCounts(t, stderr.String()); lines != 2 || read != 3 || comp != 0 {
		t.Errorf("compare pod: %d shards read, %d computed; want 3 and 0:\n%s", read, comp, stderr)
	}
	if _, err := os.Stat(filepath.Join(local([]string{flagValue(compare, "out")})[0], "results.json")); err != nil {
		t.Error(err)
	}
}

// fakeSbatch runs a batch script at once (an array's tasks, a range or a list,
// concurrently, with Slurm's array variables), appends its arguments to $SBATCH_LOG and prints a job ID as
// sbatch --parsable does on a multi-cluster site.
const fakeSbatch = `#!/bin/bash
set -u
echo "$*" >> "$SBATCH_LOG"
array= script=
for a in "$@"; do
	case $a in
	--array=*) array=${a#--array=} ;;
	-*) ;;
	*) script=$a ;;
	esac
done
export SLURM_CPUS_PER_TASK=2
if [ -n "$array" ]; then
	if [[ $array == *-* ]]; then ids=($(seq "${array%-*}" "${array#*-}")); else ids=(${array//,/ }); fi
	pids=()
	for i in "${ids[@]}"; do
		SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=${#ids[@]} SLURM_ARRAY_TASK_MIN=${ids[0]} \
			SLURM_ARRAY_TASK_MAX=${ids[-1]} SLURM_ARRAY_TASK_STEP=1 bash "$script" > "$SBATCH_LOG.task$i" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || exit 1; done
else
	bash "$script" > "$SBATCH_LOG.job" 2>&1 || exit 1
fi
echo "$((1000 + $(wc -l < "$SBATCH_LOG")));cluster"
`

func TestDeploySlurm(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "slurm")
	scripts, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(scripts) != 4 {
		t.Fatalf("deploy/slurm holds %q, want config.sh, extract.sbatch, compare.sbatch, submit.sh", scripts)
	}
	for _, s := range scripts {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", s, err, out)
		}
	}
	bin := krBinary(t)
	vol := t.TempDir()
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "sbatch"), []byte(fakeSbatch), 0o755); err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(vol, "models", "tiny")
	deployVolume(t, weights, filepath.Join(vol, "gorgoclip-cache", "vocab"), filepath.Join(vol, "data"))
	sbatchLog := filepath.Join(vol, "sbatch.log")
	out := filepath.Join(vol, "results")
	cache := filepath.Join(vol, "features")
	submit := func(env ...string) string {
		cmd := exec.Command("bash", filepath.Join(dir, "submit.sh"), "--partition=cpu")
		cmd.Env = append(os.Environ(), "PATH="+fake+string(os.PathListSeparator)+os.Getenv("PATH"), "SBATCH_LOG="+sbatchLog,
			"GORGOCLIP="+bin, "WEIGHTS="+weights, "DATASET=imagefolder:"+filepath.Join(vol, "data"), "TEST_LIMIT=120",
			"CACHE="+cache, "OUT="+out, "TASKS=3", "GORGOCLIP_CACHE="+filepath.Join(vol, "gorgoclip-cache"))
		cmd.Env = append(cmd.Env, env...)
		printed, err := cmd.CombinedOutput()
		if err != nil {
			logs, _ := exec.Command("bash", "-c", "tail -n 20 "+sbatchLog+".*").CombinedOutput()
			t.Fatalf("submit.sh: %v\n%s\nlogs:\n%s", err, printed, logs)
		}
		return string(printed)
	}
	printed := submit()
	logOf := func(name string) string { b, _ := os.ReadFile(sbatchLog + "." + name); return string(b) }
	calls, _ := os.ReadFile(sbatchLog)
	lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "--partition=cpu --array=0-2 ") || !strings.Contains(lines[1], "--partition=cpu --dependency=afterok:1001 ") {
		t.Errorf("sbatch calls:\n%s\nwant the array 0-2, then the comparison after job 1001", calls)
	}
	if !strings.Contains(printed, "job array 1001 (tasks 0-2 of 3); comparison: job 1002") {
		t.Errorf("submit.sh printed %q", printed)
	}
	for i := range 3 {
		if want := fmt.Sprintf("extract: task %d of 3 (SLURM_ARRAY_TASK_ID=%d, --shards 3)", i, i); !strings.Contains(logOf(fmt.Sprint("task", i)), want) {
			t.Errorf("task %d's log lacks %q:\n%s", i, want, logOf(fmt.Sprint("task", i)))
		}
	}
	if read, comp, lines := krCacheCounts(t, logOf("job")); lines != 2 || read != 3 || comp != 0 {
		t.Errorf("compare job: %d shards read, %d computed; want 3 and 0:\n%s", read, comp, logOf("job"))
	}
	if _, err := os.Stat(filepath.Join(out, "results.json")); err != nil {
		t.Error(err)
	}

	// Task 1's work is lost (its one train shard); resubmitted alone, it redoes just that.
	lost, _ := filepath.Glob(filepath.Join(cache, "*-train-*", "shard-000000.*"))
	if len(lost) != 2 {
		t.Fatalf("task 1's shard files: %q", lost)
	}
	for _, p := range lost {
		os.Remove(p)
	}
	if printed := submit("ARRAY=1"); !strings.Contains(printed, "(tasks 1 of 3)") {
		t.Errorf("submit.sh printed %q", printed)
	}
	if task := logOf("task1"); !strings.Contains(task, "task 1 of 3 (SLURM_ARRAY_TASK_ID=1, --shards 3)") || !strings.Contains(task, "task 1 of 3: 0 shards read from the cache, 1 computed") {
		t.Errorf("resubmitted task 1:\n%s", task)
	}
	if read, comp, _ := krCacheCounts(t, logOf("job")); read != 3 || comp != 0 {
		t.Errorf("compare after the resubmitted task: %d read, %d computed; want 3 and 0:\n%s", read, comp, logOf("job"))
	}
}
