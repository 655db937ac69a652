package version

import (
	"regexp"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	old := Version
	defer func() { Version = old }()
	Version = "v1.2.3" // as -ldflags -X sets it
	if s := String(); !strings.HasPrefix(s, "v1.2.3") {
		t.Errorf("String() = %q, want the release first", s)
	}
	if f := Full(); !regexp.MustCompile(`^gorgoclip v1\.2\.3\S* \(go1\.\S+ \w+/\w+\)$`).MatchString(f) {
		t.Errorf("Full() = %q", f)
	}
}
