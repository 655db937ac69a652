// Package memlimit runs a test in a child process whose address space is limited
// (the shell's ulimit -v), so that a test can show that hostile input is refused
// without allocating what it claims: before such a fix the child dies out of
// memory and the test fails, instead of the whole test binary (or machine) paying.
package memlimit

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// HostileLimit is the address space of the tests that hostile files are refused
// without allocating what they claim: the Go runtime's own reservations (0.8 to
// 1.3 GB), what reading a small file needs, and less than the 3 GiB or more those
// files made the readers allocate before they were bounded.
const HostileLimit = 2 << 30

// childEnv names the variable that tells a re-executed test binary which test runs
// under the limit.
const childEnv = "GORGOCLIP_MEMLIMIT_CHILD"

// Child reports whether the calling test is the limited child and should run its
// body. In the parent it re-executes the test binary running only t (a top-level
// test) with its address space limited to limit bytes (the Go runtime itself
// reserves 0.8 to 1.3 GB of address space, so limit must leave room for that), fails t if the child fails
// (a crash out of memory included, with the child's output), and returns false.
// Under the race detector, which reserves terabytes of address space, and where no
// POSIX shell can set the limit, t is skipped saying why; so it is when the child
// skips (CI=true makes a missing fixture fail in the child, and so here).
func Child(t *testing.T, limit int64) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("memlimit: %s is a subtest; only top-level tests can run as a child", t.Name())
	}
	if raceEnabled {
		t.Skip("memlimit: the race detector reserves more address space than the limit; runs without -race")
	}
	if runtime.GOOS == "windows" {
		t.Skip("memlimit: no ulimit on windows")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("memlimit: no shell to set the limit: ", err)
	}
	args := []string{"-c", `ulimit -v "$0" && exec "$@"`, fmt.Sprint(limit >> 10), os.Args[0],
		"-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1", "-test.v"}
	cmd := exec.Command(sh, args...)
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err == nil && strings.Contains(string(out), "--- SKIP: "+t.Name()) {
		t.Skipf("skipped in the child:\n%s", out) // a missing fixture, say
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("under a %d MiB address-space limit: %v\n%s", limit>>20, err, out)
	}
	return false
}
