// Command gorgoclip runs OpenAI CLIP in Go: tokenize, preprocess, embed, zero-shot,
// linear probes, comparisons, plots, downloads and benchmarks. See gorgoclip --help.
package main

import (
	"os"

	"github.com/gorgoclip/gorgoclip/experiments/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
