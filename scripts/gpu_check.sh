#!/usr/bin/env bash
# Issue 11 on a lent CUDA GPU, in one call of the device tool (notes/gpu.md says how and why):
#
#   run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=590)
#   run(command="bash scripts/gpu_check.sh suite compile", carry=[".gpu"], timeout_s=590)   # a rerun of some stages
#
# Stages, in this order (name some to run only those):
#   env      the GPU, torch, and that dsml and its packages import
#   cuda     every test marked cuda (tests/test_cuda.py, the one-GPU torch.distributed test, ...): 0 may skip
#   demo     ./run demo on the GPU (the same command; ./run itself would pip install)
#   bench    python -m benchmarks.bench_gpu --sections train score amp
#   suite    the rest of the suite, slow tests and notebooks included, on the GPU (CUDA is the default device);
#            8 pytest-xdist workers when the image has xdist
#   compile  python -m benchmarks.bench_gpu --sections compile (torch.compile and CUDA graphs; compiling is slow)
#
# Each stage has its own time limit, cut to what is left of GPU_CHECK_SECONDS (default 560) since the
# start; a stage with under 20 s left is not started. Each writes $OUT/<stage>.log (the device tool brings
# $OUT back); $OUT/summary.txt has the environment and one line per stage; $OUT/bench_gpu.md is the table
# for the README. The exit status is the number of stages that failed or did not run (99: no usable GPU or
# packages, nothing else was run).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/dsml-gpu-check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
py="${PYTHON:-python3}"
deadline=$((SECONDS + ${GPU_CHECK_SECONDS:-560}))
failed=0

# The packages the image lacks (scripts/gpu_bundle.sh), unpacked once per machine.
if [ -f .gpu/site.tar.xz ] && [ ! -f /tmp/dsml-site/.complete ]; then
  rm -rf /tmp/dsml-site && mkdir -p /tmp/dsml-site
  if tar -C /tmp/dsml-site -xJf .gpu/site.tar.xz; then touch /tmp/dsml-site/.complete; else
    echo "unpacking .gpu/site.tar.xz FAILED" | tee -a "$out/summary.txt"
  fi
fi
export PYTHONPATH="/tmp/dsml-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

stage() { # stage NAME SECONDS COMMAND...: run COMMAND under a time limit, log to $out/NAME.log
  local name=$1 limit=$2
  shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 20 ]; then
    echo "$name: NOT RUN (no time left; rerun: bash scripts/gpu_check.sh $name)" | tee -a "$out/summary.txt"
    failed=$((failed + 1))
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local started=$SECONDS
  echo "== $name (limit ${limit}s): $*"
  timeout -k 10 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  tail -n 15 "$out/$name.log"
  local verdict=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then verdict="TIMED OUT"; elif [ "$rc" != 0 ]; then verdict=FAILED; fi
  echo "$name: $verdict (exit $rc, $((SECONDS - started)) s)" | tee -a "$out/summary.txt"
  [ "$verdict" = ok ] || failed=$((failed + 1))
}

wanted() { [ $# -eq 0 ] || [[ " $* " == *" $STAGE "* ]]; }
xdist=()
"$py" -c "import xdist" 2>/dev/null && xdist=(-n 8) # 8 workers x 2 threads on the 16 cores

STAGE=env
if wanted "$@"; then
  {
    date -u
    nvidia-smi -L
    "$py" - <<'EOF'
import torch, polars, plotnine, nbclient, dsml
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
      f"GPU {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NONE'}, "
      f"{torch.cuda.device_count()} GPU(s); polars {polars.__version__}, plotnine {plotnine.__version__}, "
      f"nbclient {nbclient.__version__}; dsml from {dsml.__file__}")
assert torch.cuda.is_available(), "torch sees no GPU"
EOF
  } 2>&1 | tee -a "$out/summary.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "env: FAILED" | tee -a "$out/summary.txt"; exit 99; }
fi

STAGE=cuda
if wanted "$@"; then
  stage cuda 200 "$py" -m pytest -p no:cacheprovider -q -rs --durations=15 -m cuda tests
  if grep -qE "[0-9]+ skipped" "$out/cuda.log"; then
    echo "cuda: FAILED after all: $(grep -oE "[0-9]+ skipped" "$out/cuda.log" | tail -1) (a CUDA test must not skip on a GPU; see cuda.log)" | tee -a "$out/summary.txt"
    failed=$((failed + 1))
  fi
fi

STAGE=demo
wanted "$@" && stage demo 90 "$py" -m dsml train data/mnist_1000.csv --model dense --epochs 20 --batch-size 64 \
  --lr 0.001 --seed 1 --device cuda

STAGE=bench
wanted "$@" && stage bench 150 "$py" -m benchmarks.bench_gpu --sections train score amp --markdown "$out/bench_gpu.md"

STAGE=suite
wanted "$@" && stage suite 300 env OMP_NUM_THREADS=2 "$py" -m pytest -p no:cacheprovider -q -rs --durations=20 "${xdist[@]}" \
  -m "not cuda" tests

STAGE=compile
if wanted "$@"; then
  stage compile 240 "$py" -m benchmarks.bench_gpu --sections compile --markdown "$out/compile.md"
  if [ -f "$out/compile.md" ]; then # one table for the README: the compile rows under the others
    if [ -f "$out/bench_gpu.md" ]; then tail -n +5 "$out/compile.md" >>"$out/bench_gpu.md"; else mv "$out/compile.md" "$out/bench_gpu.md"; fi
    rm -f "$out/compile.md"
  fi
fi

echo "== $failed stage(s) failed or did not run; $((SECONDS)) s in all" | tee -a "$out/summary.txt"
exit "$failed"
