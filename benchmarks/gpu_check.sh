#!/usr/bin/env bash
# One run on a GPU machine: build the extension, the CUDA tests, compute-sanitizer (memcheck and
# racecheck) on the op tests, and the GPU benchmarks; a short table last. Logs go to $OUT.
#   bash benchmarks/gpu_check.sh            (PY=python3 by default)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/s2c_gpu_check}
PY=${PY:-python3}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} FORCE_CUDA=1 MAX_JOBS=16 \
  $PY -m pip install --no-build-isolation --no-deps -e . >"$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }

$PY -m pytest -q -rfE -p no:cacheprovider tests/test_ops.py -k cuda >"$OUT/tests.log" 2>&1
tests_rc=$?
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | cut -c1-200 | head -20

SAN_TESTS="cuda and (golden or reference or empty or low_precision or bad_input or non_contiguous or deterministic or many_rois)"
PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout ${SAN_TIMEOUT:-180} compute-sanitizer --tool memcheck --error-exitcode 9 \
  $PY -m pytest -q -x -p no:cacheprovider tests/test_ops.py -k "$SAN_TESTS" >"$OUT/memcheck.log" 2>&1
memcheck_rc=$?
timeout ${SAN_TIMEOUT:-180} compute-sanitizer --tool racecheck --error-exitcode 9 \
  $PY -m pytest -q -x -p no:cacheprovider tests/test_ops.py -k "cuda and golden" >"$OUT/racecheck.log" 2>&1
racecheck_rc=$?

$PY benchmarks/bench_ops.py --device cuda --min-run-time 0.3 >"$OUT/bench_ops.md" 2>&1

echo "== summary =="
echo "tests rc=$tests_rc: $(tail -1 "$OUT/tests.log")"
echo "memcheck rc=$memcheck_rc: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
echo "racecheck rc=$racecheck_rc: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
cat "$OUT/bench_ops.md"
