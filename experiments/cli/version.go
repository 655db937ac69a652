package cli

import (
	"fmt"
	"runtime"
)

// Version is the gorgoclip release, set with -ldflags "-X .../cli.Version=..." by make.
var Version = "dev"

func init() {
	register(Command{Name: "version", Summary: "print the gorgoclip version", Run: func(env *Env, args []string) error {
		fs := newFlags(env, "version", "")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return Usagef("unexpected arguments %q", fs.Args())
		}
		_, err := fmt.Fprintf(env.Stdout, "gorgoclip %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return err
	}})
}
