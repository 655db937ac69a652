#!/bin/bash
# Runs the extraction Indexed Job, waits for it to complete, then runs the comparison
# and prints where its results are. Usage: deploy/kubernetes/run.sh [kubectl flags,
# e.g. -n NAMESPACE]. Rerunning it after a failure resumes: finished shards are kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
timeout=${TIMEOUT:-48h}

# A Job's pod template cannot be changed in place: start from fresh Jobs (the cache
# on the volume is what carries progress).
kubectl "$@" delete job gorgoclip-extract gorgoclip-compare --ignore-not-found
kubectl "$@" apply -f "$here/extract-job.yaml"
# Wait for Complete, and stop early on Failed (a task out of retries).
kubectl "$@" wait job/gorgoclip-extract --for=condition=complete --timeout="$timeout" &
complete=$!
kubectl "$@" wait job/gorgoclip-extract --for=condition=failed --timeout="$timeout" &
failed=$!
if ! wait -n "$complete" "$failed" || ! kill -0 "$failed" 2>/dev/null; then
	kill "$complete" "$failed" 2>/dev/null || true
	echo "run.sh: gorgoclip-extract did not complete; see kubectl logs -l job-name=gorgoclip-extract" >&2
	exit 1
fi
kill "$failed" 2>/dev/null || true

kubectl "$@" apply -f "$here/compare-job.yaml"
kubectl "$@" wait job/gorgoclip-compare --for=condition=complete --timeout="$timeout"
kubectl "$@" logs job/gorgoclip-compare | tail -n 20
