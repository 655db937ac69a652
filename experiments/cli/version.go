package cli

import (
	"fmt"

	"github.com/gorgoclip/gorgoclip/internal/version"
)

func init() {
	register(Command{Name: "version", Summary: "print the gorgoclip version (also gorgoclip --version)", Run: func(env *Env, args []string) error {
		fs := newFlags(env, "version", "")
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return Usagef("unexpected arguments %q", fs.Args())
		}
		_, err := fmt.Fprintln(env.Stdout, version.Full())
		return err
	}})
}
