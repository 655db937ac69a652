// Package version names the gorgoclip build, for --version and for the provenance
// that every results file records.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the gorgoclip release. A release build sets it with
// -ldflags "-X github.com/gorgoclip/gorgoclip/internal/version.Version=v1.2.3";
// otherwise it is "dev" and String adds the commit Go recorded at build time.
var Version = "dev"

// String returns Version with the VCS commit the binary was built from, when Go
// recorded one ("dev+3f2a9c1b0d4e", "+dirty" when the tree had uncommitted changes).
func String() string {
	v := Version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v += "+" + rev
	if dirty {
		v += "+dirty"
	}
	return v
}

// Full returns String with the Go version and platform, as --version prints it.
func Full() string {
	return fmt.Sprintf("gorgoclip %s (%s %s/%s)", String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
