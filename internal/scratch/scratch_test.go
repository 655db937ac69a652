package scratch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCleanStale(t *testing.T) {
	parent := t.TempDir()
	live, err := Dir(parent, ".out.convert")
	if err != nil {
		t.Fatal(err)
	}
	// A dead process's directory: the PID of a child that has exited.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot start a process: ", err)
	}
	dead := filepath.Join(parent, ".out.convert-"+host()+"-"+strconv.Itoa(cmd.Process.Pid)+"-123")
	other := filepath.Join(parent, ".out.convert-elsewhere-"+strconv.Itoa(cmd.Process.Pid)+"-123")
	unrelated := filepath.Join(parent, ".other.convert-"+host()+"-"+strconv.Itoa(cmd.Process.Pid)+"-1")
	for _, d := range []string{dead, other, unrelated} {
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := CleanStale(parent, ".out.convert")
	if err != nil || len(removed) != 1 || removed[0] != dead {
		t.Fatalf("removed %v (%v), want only %s", removed, err, dead)
	}
	for _, d := range []string{live, other, unrelated} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
	if !strings.Contains(filepath.Base(live), "-"+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("%s does not name this process", live)
	}
}
