package cli

import (
	"regexp"
	"testing"
)

func TestVersion(t *testing.T) {
	want := regexp.MustCompile(`^gorgoclip \S+ \(go1\.\S+ \w+/\w+\)\n$`)
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		code, out, errOut := run("", args...)
		if code != 0 || !want.MatchString(out) {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, code, out, errOut)
		}
	}
}
