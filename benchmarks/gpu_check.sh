#!/usr/bin/env bash
# GPU check of the cuda backend, for a lent GPU machine with little time (< 5 minutes).
#
#   bash benchmarks/gpu_check.sh          # from anywhere; runs in the repository root
#
# 1. prints nvidia-smi; 2. makes a fresh venv (FASTGD_GPU_VENV, default
# /tmp/fastgd-gpu-venv) with numpy, numba, numba-cuda[cu12|cu13] (matching the
# driver), pytest, hypothesis; 3. runs tests/test_cuda.py and the cuda cases of
# the backend grid (tests/test_backends.py -k cuda) on the GPU with 32 threads
# per block (several blocks on their small inputs); 4. runs
# benchmarks/gpu_bench.py at full size. Every step is guarded and time-limited:
# one failing does not lose the others' output. When $OUT is set, the logs and
# gpu_bench.json (updated after every benchmark step) and a summary.json go there
# (else to /tmp/fastgd-gpu-check). FASTGD_GPU_BENCH_ARGS=--quick shrinks the benchmark.
set -u
cd "$(dirname "$0")/.."
RESULTS="${OUT:-/tmp/fastgd-gpu-check}"
mkdir -p "$RESULTS"
# The lent GPU machines have no network but ship numba-cuda in the python3 that
# holds PyTorch: use that interpreter's prefix when it has numba.cuda.
if [ -z "${FASTGD_GPU_VENV:-}" ] && python3 -c "import numba.cuda" 2>/dev/null; then
    FASTGD_GPU_VENV=$(python3 -c 'import sys; print(sys.prefix)')
fi
VENV="${FASTGD_GPU_VENV:-/tmp/fastgd-gpu-venv}"
# numba-cuda 0.x on numpy >= 2.5 still names np.row_stack (removed); shim it for
# this run only, through a sitecustomize outside the repository.
SHIM=$(mktemp -d)
printf 'import numpy\nif not hasattr(numpy, "row_stack"):\n    numpy.row_stack = numpy.vstack\n' > "$SHIM/sitecustomize.py"
export NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 NUMBA_CUDA_WARN_ON_IMPLICIT_COPY=0
PY="$VENV/bin/python"
declare -A STATUS

step() {  # step NAME TIMEOUT_S COMMAND...: run, log to $RESULTS/NAME.log, record the exit status
    local name="$1" limit="$2"
    shift 2
    echo "=== $name (limit ${limit}s)"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$RESULTS/$name.log"
    local rc=${PIPESTATUS[0]}
    STATUS[$name]="rc=$rc $((SECONDS - start))s"
    echo "=== $name: ${STATUS[$name]}"
}

step nvidia_smi 20 nvidia-smi -L
CUDA_MAJOR=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1)
EXTRA=cu12
[ "${CUDA_MAJOR:-12}" -ge 13 ] 2>/dev/null && EXTRA=cu13
echo "driver CUDA major: ${CUDA_MAJOR:-unknown}; numba-cuda extra: $EXTRA"

if [ -x "$PY" ] && "$PY" -c "import numba, numpy, pytest, hypothesis" 2>/dev/null; then
    echo "=== reusing $VENV"
    STATUS[install]="reused"
else
    # `timeout` runs programs, not shell functions: the install is one bash -c.
    step install 180 bash -c "python3 -m venv '$VENV' && { '$PY' -m pip install -q numpy numba \
        'numba-cuda[$EXTRA]' pytest hypothesis || '$PY' -m pip install -q numpy numba pytest hypothesis; }"
fi

step cuda_detect 60 env PYTHONPATH="$PWD:$SHIM" "$PY" -c "
import numba, numpy
from numba import cuda
print('numba', numba.__version__, 'numpy', numpy.__version__, 'cuda module', cuda.__file__)
print('available:', cuda.is_available())
cuda.detect()
import fastgd
print([tuple(row) for row in fastgd.backends()])
"

# The tests run on the GPU (with one, tests/conftest.py collects the cuda cases
# in this process).
step pytest_cuda 200 env -u CI -u NUMBA_ENABLE_CUDASIM PYTHONPATH="$PWD:$SHIM" \
    FASTGD_CUDA_THREADS=32 FASTGD_CUDA_MAX_BLOCKS=4 "$PY" -m pytest tests/test_cuda.py tests/test_backends.py \
    -k cuda -q -p no:cacheprovider -W ignore::DeprecationWarning --durations=5

step bench 240 env -u NUMBA_ENABLE_CUDASIM PYTHONPATH="$PWD:$SHIM" "$PY" benchmarks/gpu_bench.py \
    --json "$RESULTS/gpu_bench.json" ${FASTGD_GPU_BENCH_ARGS:-}

{
    echo "{"
    first=1
    for name in "${!STATUS[@]}"; do
        [ $first = 1 ] || echo ","
        first=0
        printf '  "%s": "%s"' "$name" "${STATUS[$name]}"
    done
    echo
    echo "}"
} > "$RESULTS/summary.json"
echo "=== summary ($RESULTS)"
cat "$RESULTS/summary.json"
