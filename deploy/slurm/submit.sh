#!/bin/bash
# Submits the gorgoclip extraction array (TASKS tasks) and the comparison that runs
# once every task has succeeded. Usage: deploy/slurm/submit.sh [extra sbatch flags,
# e.g. --partition=cpu --account=ACCOUNT]. Settings: config.sh, or the environment;
# ARRAY=5,7 submits only those tasks (to redo failed ones), then the comparison.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=config.sh
source "$here/config.sh"
export GORGOCLIP WEIGHTS DATASET TRAIN_LIMIT TEST_LIMIT BATCH CACHE OUT TASKS GORGOCLIP_CACHE
mkdir -p "$CACHE" "$OUT"

array=$(sbatch --parsable "$@" --array="${ARRAY:-0-$((TASKS - 1))}" "$here/extract.sbatch")
array=${array%%;*} # --parsable prints JOBID or JOBID;CLUSTER
compare=$(sbatch --parsable "$@" --dependency=afterok:"$array" "$here/compare.sbatch")
compare=${compare%%;*}
echo "extraction: job array $array (tasks ${ARRAY:-0-$((TASKS - 1))} of $TASKS); comparison: job $compare, results in $OUT"
