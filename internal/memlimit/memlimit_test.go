package memlimit

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// sink keeps allocations alive.
var sink []byte

// overLimit, as the value of childEnv, makes the test binary allocate and touch
// 2 GiB instead of running tests (see TestLimitIsEnforced).
const overLimit = "allocate-2GiB"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == overLimit {
		sink = make([]byte, 2<<30)
		for i := range sink {
			sink[i] = 1
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLimitIsEnforced checks that the limit Child sets holds: a child allocating
// 2 GiB under a 1 GiB limit dies.
func TestLimitIsEnforced(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector needs more address space than any limit here")
	}
	cmd := exec.Command("sh", "-c", `ulimit -v 1048576 && exec "$@"`, "sh", os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+overLimit)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("a 2 GiB allocation under a 1 GiB limit did not fail:\n%s", out)
	} else if !strings.Contains(string(out), "out of memory") {
		t.Fatalf("the child failed, but not out of memory: %v\n%s", err, out)
	}
}

// TestWithinLimit is a child that stays within its limit: Child must pass it.
func TestWithinLimit(t *testing.T) {
	if !Child(t, 1<<30) {
		return
	}
	b := make([]byte, 16<<20)
	b[len(b)-1] = 1
	sink = b
}
