package cli

import (
	"fmt"
	"runtime"
)

// Version is the gorgoclip release, set with -ldflags "-X .../cli.Version=..." by make.
var Version = "dev"

func init() {
	register(Command{Name: "version", Summary: "print the gorgoclip version", Run: func(env *Env, args []string) error {
		fmt.Fprintf(env.Stdout, "gorgoclip %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}})
}
