#!/usr/bin/env bash
# The one prepared run for a lent GPU machine (16 cores, no network, its own torch): the GPU
# benchmark, the CUDA tests, the framework-overhead benchmark on otherwise idle cores, and
# (when given) the seq2seq teacher-forcing seed sweep on the GPU. Everything is written
# under $OUT; the tail of each log is printed at the end.
#
# Prepare once on the development machine (the device reaches nothing outside the repo):
#   bench/device.sh prepare     # copies Fashion-MNIST, num2words and the plugins' entry
#                               # points into .devdata/ (git-ignored; carry it)
# Then, on the device, from the repository root:
#   bench/device.sh [SEQ2SEQ_ARGS...]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if [ "${1:-}" = "prepare" ]; then
    site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    mkdir -p .devdata/site .devdata/fashion-mnist
    cp ../shared/data/fashion-mnist/*.gz .devdata/fashion-mnist/
    for dist in "$site"/ember-*.dist-info "$site"/ember_text-*.dist-info \
                "$site"/ember_vision-*.dist-info "$site"/ember_tabular-*.dist-info; do
        mkdir -p ".devdata/site/$(basename "$dist")"
        cp "$dist/METADATA" "$dist/entry_points.txt" ".devdata/site/$(basename "$dist")/"
    done
    if [ -d "$site/num2words" ]; then cp -r "$site/num2words" "$site/docopt.py" .devdata/site/; fi
    grep -qx "/.devdata/" .git/info/exclude 2>/dev/null || echo "/.devdata/" >> .git/info/exclude
    du -sh .devdata
    exit 0
fi

OUT=${OUT:-/tmp/ember-device}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT/core:$ROOT/plugins/vision:$ROOT/plugins/text:$ROOT/plugins/tabular:$ROOT/.devdata/site${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 EMBER_DATA="$ROOT/.devdata" EMBER_QUIET=1 PYTHONDONTWRITEBYTECODE=1
cores=$(nproc)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import sys, torch, ember; print(sys.version.split()[0], torch.__version__, ember.__version__, torch.cuda.is_available())"
  echo "cores: $cores"; } > "$OUT/env.txt" 2>&1

# dry run anywhere: EMBER_DEVICE_SMOKE=1 bench/device.sh (every benchmark in --smoke mode)
smoke=${EMBER_DEVICE_SMOKE:+--smoke}
deadline=$((SECONDS + ${EMBER_DEVICE_SECONDS:-540}))
left() { echo $((deadline - SECONDS > 10 ? deadline - SECONDS : 10)); }
gpu=""
# CPU overhead on cores 4.. (one pinned process per core), while the GPU work uses cores 0-3
if [ "$cores" -ge 16 ]; then
    gpu="taskset -c 0-3"
    (taskset -c 4-9 timeout 300 $PY bench/overhead.py $smoke --models mlp --processes 6 --calibrate \
        --repeats 30 > "$OUT/overhead_mlp.txt" 2>&1) &
    (taskset -c 10-15 timeout 300 $PY bench/overhead.py $smoke --models cnn --processes 6 \
        --repeats 12 --epochs 2 > "$OUT/overhead_cnn.txt" 2>&1) &
fi
$gpu timeout 100 $PY -m pytest tests/core/test_cuda.py -q -p no:cacheprovider \
    > "$OUT/cuda_tests.txt" 2>&1
$gpu timeout 240 $PY bench/gpu.py $smoke > "$OUT/gpu.txt" 2>&1
wait  # the overhead runs (cores free again for the sweep)
if [ $# -gt 0 ]; then
    timeout "$(left)" $PY bench/seq2seq.py $smoke "$@" > "$OUT/seq2seq.txt" 2>&1
fi
for log in "$OUT"/*.txt; do
    echo "=== $(basename "$log")"
    grep -v "^RESULT\|Warning\|warn(" "$log" | tail -n 24
    grep "^RESULT" "$log"
done
