// Package scratch makes the temporary directories of long writes (an archive's
// extraction, a model's conversion) beside their destination, named after the host
// and process that made them, so that the next run can tell those a killed run left
// behind from those a live one is still filling, and remove them.
package scratch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Dir creates a new directory parent/PREFIX-HOST-PID-RANDOM and returns its path.
// prefix should start with a dot and name the destination and the job, such as
// ".imagenette2-320.extract".
func Dir(parent, prefix string) (string, error) {
	return os.MkdirTemp(parent, fmt.Sprintf("%s-%s-%d-*", prefix, host(), os.Getpid()))
}

// CleanStale removes the directories Dir made in parent with prefix whose process,
// on this host, no longer runs, and returns their paths. Directories of other hosts
// (on a shared file system) and of live processes are left alone.
func CleanStale(parent, prefix string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(parent, globEscape(prefix)+"-*"))
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), prefix+"-"+host()+"-")
		if rest == filepath.Base(m) {
			continue // another host's, or not ours
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || alive(pid) {
			continue
		}
		if err := os.RemoveAll(m); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, m)
	}
	return removed, errors.Join(errs...)
}

// alive reports whether process pid exists (signal 0 checks without sending).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// host is this machine's name, with the characters a file name or the pattern
// cannot hold replaced.
func host() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '/' || r == '*' || r == '?' || r == '[' || r == '\\' {
			return '_'
		}
		return r
	}, h)
}

// globEscape quotes the pattern characters of s.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(s)
}
