// Package cli implements the gorgoclip command: a dispatcher over subcommands, each
// in its own file, each parsing its own flags and calling the packages that do the
// work. Main returns an exit code so that everything stays testable in-process.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/version"
	"github.com/gorgoclip/gorgoclip/loaders/results"
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// args are the command line after "gorgoclip", for the provenance of results.
	args []string
}

// commandLine returns the command being run, shell-quoted, as results files record it.
func (e *Env) commandLine() string {
	return results.CommandLine(append([]string{"gorgoclip"}, e.args...))
}

// Command is one gorgoclip subcommand.
type Command struct {
	// Name is the word after gorgoclip.
	Name string
	// Summary is the one-line description shown by gorgoclip --help.
	Summary string
	// Run executes the command with the arguments after its name. Errors are printed
	// as "gorgoclip NAME: ERR"; a *UsageError also exits with status 2.
	Run func(env *Env, args []string) error
}

// UsageError reports bad command-line usage (exit status 2).
type UsageError struct{ Msg string }

// Error returns the usage message.
func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

var commands = map[string]Command{}

// register adds c to the command table; each command file calls it from init.
func register(c Command) {
	if _, dup := commands[c.Name]; dup {
		panic("cli: duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "gorgoclip: OpenAI CLIP in Go (gorgonia): zero-shot and linear-probe experiments")
	fmt.Fprintln(w, "\nUsage: gorgoclip COMMAND [flags]   (gorgoclip COMMAND --help for its flags; gorgoclip --version)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].Summary)
	}
}

// Main runs gorgoclip with args (without the program name) and returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		fmt.Fprintln(stdout, version.Full())
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gorgoclip: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	// User input must never produce a panic trace; a panic is a bug, reported briefly
	// with the stack only when GORGOCLIP_DEBUG is set.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "gorgoclip %s: internal error: %v\n", c.Name, r)
			if os.Getenv("GORGOCLIP_DEBUG") != "" {
				stderr.Write(debug.Stack())
			} else {
				fmt.Fprintln(stderr, "(set GORGOCLIP_DEBUG=1 for a stack trace and please report it)")
			}
			code = 3
		}
	}()
	out := &checkedWriter{w: stdout}
	err := c.Run(&Env{Stdin: stdin, Stdout: out, Stderr: stderr, args: args}, args[1:])
	if err == nil && out.err != nil {
		err = fmt.Errorf("writing standard output: %w", out.err)
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "gorgoclip %s: %v\n", c.Name, err)
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// checkedWriter keeps the first error of its writes: results lost to a full disk
// or a closed pipe fail the command (exit 1) even where a write's error went
// unchecked.
type checkedWriter struct {
	w   io.Writer
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	c.err = err
	return n, err
}

// newFlags returns a FlagSet for a command whose help goes to env.Stderr and which
// reports errors instead of exiting. usageLine follows "gorgoclip NAME".
func newFlags(env *Env, name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: gorgoclip %s %s\n\nFlags:\n", name, usageLine)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Msg: err.Error()}
	}
	return nil
}

// listFlag is a comma-separated list flag that may also be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}
