package cli

import "github.com/gorgoclip/gorgoclip/graph"

// deviceHelp documents the --device flag of embed, zeroshot, compare, classify, grad and bench.
const deviceHelp = "where the model runs: cpu, or cuda (cuda:N for GPU N; needs a build with make cuda)"

// precisionHelp documents the --precision flag of embed, zeroshot, compare and bench.
const precisionHelp = "number format of the towers: fp32 (exact), bf16 (bfloat16 weights and GEMMs with float32 accumulation: half the memory, faster with oneDNN or on a GPU; see README), or with --device cuda fp16 or tf32"

// parsePrecision reads --precision, a usage error naming the flag when it is bad.
func parsePrecision(s string) (graph.Precision, error) {
	p, err := graph.ParsePrecision(s)
	if err != nil {
		return p, Usagef("--precision %q: want fp32 or bf16 (or, with --device cuda, fp16 or tf32)", s)
	}
	return p, nil
}
