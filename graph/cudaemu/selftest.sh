#!/usr/bin/env bash
# selftest.sh: the CUDA emulator's checks, shown to fail. Each case plants one bug in a
# copy of the tracked tree, builds the CUDA graph test binary and the emulator there,
# and expects the CUDA graph tests to fail with the case's message; the unchanged copy
# must pass first. A case whose text is no longer in its file fails too: update the
# case with the code. Run by make cuda-emu-selftest (CI); NVRTC names libnvrtc.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${NVRTC:?set NVRTC to a libnvrtc (make cuda-emu-selftest finds one)}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# check NAME EXPECT [FILE OLD NEW]: copy the tree, replace OLD by NEW in FILE, run the
# tests ($RUN, a -test.run pattern: CUDAOps unless set); EXPECT "pass", or an extended
# regular expression the failing output must hold.
check() {
  local name=$1 expect=$2 src=$tmp/src
  shift 2
  rm -rf "$src" && mkdir -p "$src"
  (cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$src")
  if [ $# -gt 0 ]; then
    if ! FILE=$src/$1 OLD=$2 NEW=$3 python3 -c '
import os, sys
p, old, new = os.environ["FILE"], os.environ["OLD"], os.environ["NEW"]
s = open(p).read()
if old not in s:
    sys.exit("text not found in " + p + ": " + old)
open(p, "w").write(s.replace(old, new, 1))'; then
      echo "selftest: $name: cannot plant the bug" >&2
      fails=$((fails + 1))
      return
    fi
  fi
  local out=$tmp/$name.log rc=0
  (
    cd "$src"
    make -s cuda-graph-test EMUBINS=bin/cuda-graph.test bin/cudaemu/libcuda.so.1 bin/cudaemu/libcublas.so.13
    cd graph
    LD_LIBRARY_PATH=$src/bin/cudaemu GORGOCLIP_CUBLAS=$src/bin/cudaemu/libcublas.so.13 GORGOCLIP_NVRTC=$NVRTC \
      timeout -k 5 60 ../bin/cuda-graph.test -test.run "${RUN:-CUDAOps}" -test.count=1 -test.timeout 20s
  ) > "$out" 2>&1 || rc=$?
  if [ "$expect" = pass ]; then
    if [ "$rc" -ne 0 ]; then
      echo "selftest: $name: the unchanged tree fails (exit $rc):" >&2
      tail -20 "$out" >&2
      fails=$((fails + 1))
    else
      echo "selftest: $name: passes"
    fi
  elif [ "$rc" -eq 0 ]; then
    echo "selftest: $name: NOT caught: the tests pass with the bug" >&2
    fails=$((fails + 1))
  elif ! grep -Eq "$expect" "$out"; then
    echo "selftest: $name: failed (exit $rc), but without /$expect/:" >&2
    tail -20 "$out" >&2
    fails=$((fails + 1))
  else
    echo "selftest: $name: caught (exit $rc): $(grep -Eo "$expect" "$out" | head -1)"
  fi
}

RUN='CUDAOps|CUDAConv2d|CUDAGradients' check unchanged pass
check missing-syncthreads 'GPU and CPU differ' graph/cuda/common.cuh \
  '    __syncthreads(); // shared may still be read by a previous call' ''
check swapped-leading-dims 'cudaemu: cublasSgemm .*invalid' graph/cudalib_cuda.go \
  'C.uint64_t(b), C.int(ldb), C.uint64_t(a), C.int(lda), C.float(beta)' \
  'C.uint64_t(b), C.int(lda), C.uint64_t(a), C.int(ldb), C.float(beta)'
check short-scratch 'cudaemu: cublas[A-Za-z ]* operand C' graph/op_attention_cuda.go \
  'base, err := d.scratchOf(4*n + b*h*t*t)' 'base, err := d.scratchOf(4*n + b*h*t*t - 1)'
check host-reads-device-memory 'SIGSEGV' graph/device_cuda.go \
  '	copyStats.h2d.Add(1)' '	copyStats.h2d.Add(1 + int64(dst[0]*0))'
check kernel-parameter-order 'GPU and CPU differ' graph/op_layernorm_cuda.go \
  'i(n), i(w), f(o.Eps))' 'i(w), i(n), f(o.Eps))'
RUN=CUDAConv2d check im2col-padding-off-by-one 'GPU and CPU differ' graph/cuda/conv2d.cu \
  'if (iy < 0 || iy >= h || ix < 0 || ix >= w) {' 'if (iy < 0 || iy >= h || ix < -1 || ix >= w) {'
RUN=CUDAGradients check column-sums-barrier 'GPU and CPU differ' graph/cuda/common.cuh \
  $'    part[threadIdx.x] = s;\n    __syncthreads();' '    part[threadIdx.x] = s;'
check device-held-across-run 'panic: test timed out' graph/machine.go \
  '	if err := m.bind(inputs); err != nil {' '	if m.dev != nil {
		defer m.dev.enter()()
	}
	if err := m.bind(inputs); err != nil {'

if [ "$fails" -gt 0 ]; then
  echo "selftest: $fails case(s) failed" >&2
  exit 1
fi
echo "selftest: every planted bug was caught"
