#!/usr/bin/env bash
# One run on a GPU machine: build the extension, every CUDA test of the suite, compute-sanitizer
# (memcheck and racecheck) on the op tests, and the GPU benchmarks; a short table last. Logs in $OUT.
#   bash benchmarks/gpu_check.sh              PY=python3, SANITIZE=1 by default
# Packages the GPU machine lacks (kornia) may be carried as wheels in .whl/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/s2c_gpu_check}
PY=${PY:-python3}
SANITIZE=${SANITIZE:-1}
mkdir -p "$OUT"
stage() { echo "[$(date +%T)] $*"; }
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/s2c_site .whl/*.whl \
    && export PYTHONPATH="/tmp/s2c_site:$PYTHONPATH"
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

stage build
TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} FORCE_CUDA=1 MAX_JOBS=16 \
  $PY -m pip install --no-build-isolation --no-deps -e . >"$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }

stage tests
$PY -m pytest -q -rfE --durations=8 -p no:cacheprovider tests -k cuda >"$OUT/tests.log" 2>&1
tests_rc=$?
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | cut -c1-200 | head -20

stage benchmarks
$PY benchmarks/bench_ops.py --device cuda --min-run-time 0.3 >"$OUT/bench_ops.md" 2>&1
$PY benchmarks/bench_model.py --device cuda --rounds 3 --min-run-time 0.2 --batch 64 --profile --compile >"$OUT/bench_model.md" 2>&1
$PY benchmarks/bench_augment.py --device cuda --batch 64 --min-run-time 0.3 --profile >"$OUT/bench_augment.md" 2>&1
memcheck="skipped" racecheck="skipped"
if [ "$SANITIZE" = 1 ]; then
  stage sanitizer
  SAN_TESTS="cuda and (golden or reference or empty or low_precision or bad_input or non_contiguous or deterministic or many_rois)"
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout ${SAN_TIMEOUT:-180} compute-sanitizer --tool memcheck --error-exitcode 9 \
    $PY -m pytest -q -x -p no:cacheprovider tests/test_ops.py -k "$SAN_TESTS" >"$OUT/memcheck.log" 2>&1
  memcheck="rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
  timeout ${SAN_TIMEOUT:-180} compute-sanitizer --tool racecheck --error-exitcode 9 \
    $PY -m pytest -q -x -p no:cacheprovider tests/test_ops.py -k "cuda and golden" >"$OUT/racecheck.log" 2>&1
  racecheck="rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
fi

stage done

echo "== summary =="
echo "tests rc=$tests_rc: $(tail -1 "$OUT/tests.log")"
echo "memcheck $memcheck"
echo "racecheck $racecheck"
grep -v "^W" "$OUT/bench_ops.md" | grep -E "batch 64|^#|^\| size|Traceback|Error"
grep -v "^W" "$OUT/bench_model.md"
grep -v "^W" "$OUT/bench_augment.md"
