package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

// TestInterruptSaysResume stops compare with Ctrl-C (SIGINT) while it computes
// features: it must exit at once, saying where the features are and that rerunning
// the same command resumes from them.
func TestInterruptSaysResume(t *testing.T) {
	bin := krBinary(t)
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	fm := testfix.FashionMNIST(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	cmd, stderr, exited := krStart(t, bin, nil, "compare", "--weights", weights, "--dataset", "fashion-mnist:"+fm,
		"--train-limit", "3000", "--test-limit", "1000", "--shots", "1", "--seeds", "1", "--C", "1",
		"--cache", cache, "--out", filepath.Join(dir, "out"))
	if !krWaitFor(t, exited, 90*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(cache, "*", "shard-*.npy"))
		return len(m) > 0
	}) {
		t.Fatalf("no feature shard after 90s:\n%s", stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("compare still running 30s after SIGINT:\n%s", stderr)
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code %d, want 130", code)
	}
	want := "gorgoclip compare: interrupted; the image features computed so far are kept in " + cache + ": rerun the same command to resume from them"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "results.json")); err == nil {
		t.Error("the run finished before it was interrupted; nothing was tested")
	}
}
