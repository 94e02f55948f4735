#!/usr/bin/env bash
# One run on a lent GPU machine: the Triton kernels' correctness on the device, then the benchmarks.
#   OUT=gpu-out scripts/gpu_check.sh
# Every stage has its own time limit, so a slow or broken stage leaves the others' results. Logs, JSON and
# PNG land in $OUT/r/ and are packed into $OUT/results.tgz at the end; the last lines printed are a summary.
set -u
OUT=${OUT:-gpu-out}
R=$OUT/r
mkdir -p "$R"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
PY=${PY:-python3}
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"

stage() {  # stage NAME LIMIT_S COMMAND...: run with a time limit, log to $R/NAME.log, note rc and seconds
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    timeout -k 5 "$limit" "$@" >"$R/$name.log" 2>&1
    rc=$?
    echo "$name: rc=$rc in $((SECONDS - start)) s (limit $limit s)" | tee -a "$SUMMARY"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
    $PY -c "import torch, triton, sys; print(sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name(), torch.cuda.get_device_properties(0).multi_processor_count, 'SMs')"
} >"$R/env.log" 2>&1
cat "$R/env.log"

stage kernel-tests 130 $PY -m pytest tests/kernels/test_triton.py -q -n 8 -p no:cacheprovider --timeout 100 -rf --tb=line
stage kernels-full 180 $PY -m kernels.bench --device cuda --suite full --out "$R"
stage nvs-bench 50 $PY -m nvs.bench --device cuda --out "$R"
stage kernels-full-causal 70 $PY -m kernels.bench --device cuda --suite full --causal --no-check --out "$R"
stage vision-bench 90 $PY -m vision.bench --device cuda --out "$R"

tar czf "$OUT/results.tgz" -C "$OUT" r
echo "----- summary"
tail -n 3 "$R/kernel-tests.log"
grep -E "FAIL|failed|error" "$R/kernels-full.log" | head -20
grep -E "roofline|target" "$R/kernels-full.log"
cat "$SUMMARY"
