package cli

// deviceHelp documents the --device flag of embed, zeroshot, compare and bench.
const deviceHelp = "where the model runs: cpu, or cuda (cuda:N for GPU N; needs a build with make cuda)"
