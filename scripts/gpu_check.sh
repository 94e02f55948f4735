#!/usr/bin/env bash
# One run on a lent GPU machine: the Triton kernels' correctness on the device, then the benchmarks.
#   OUT=gpu-out scripts/gpu_check.sh [tests] [check] [peers] [kernels] [nvs] [causal] [vision] [vision-tests] [e2e]
#                                    [e2e-compiled]
# Every stage has its own time limit, so a slow or broken stage leaves the others' results. Logs, JSON and
# PNG land in $OUT/r/ and are packed into $OUT/results.tgz at the end; the last lines printed are a summary.
# Triton's compile cache is packed into $OUT/triton-cache.tgz: carry it back (as triton-cache.tgz in the
# repository root) so the next call measures instead of compiling. `make bench-wheels` downloads the peers'
# wheels (fla-core, einops) into .bench-wheels/: carry that folder too, and they are installed for the run.
set -u
OUT=${OUT:-gpu-out}
R=$OUT/r
mkdir -p "$R"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
PY=${PY:-python3}
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
export TRITON_CACHE_DIR=$PWD/.triton-cache
[ -f triton-cache.tgz ] && tar xzf triton-cache.tgz
if compgen -G ".bench-wheels/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --target .bench-site .bench-wheels/*.whl && export PYTHONPATH=$PYTHONPATH:$PWD/.bench-site
fi

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

check_each_kind() {  # `kernels.bench --check` in one process per kind, so that their Triton compiles run in parallel
    local k
    for k in softmax sigmoid nala mala norm lightning soft local; do
        $PY -m kernels.bench --device cuda --suite full --check --seq 196 --kinds $k --out "$R/check-$k" \
            >"$R/check-$k.log" 2>&1 &
    done
    wait
    grep -h -A30 "correctness" "$R"/check-*.log | grep -E "ok|FAIL|Error"
}
export -f check_each_kind
export PY R

# Stages to run (default: the first four, about 9 minutes on a fresh H200). Every stage is compile-bound on a fresh
# machine, where Triton's cache is empty: the 2026-11-28 H200 run needed more than 130 s for the 105 kernel tests on 16
# workers, and more than 180 s for the 26 checks of `--check` in one process, hence the per-kind processes below.
STAGES=${*:-tests check peers kernels nvs}
for name in $STAGES; do
    case $name in
    tests) stage kernel-tests 200 $PY -m pytest tests/kernels/test_triton.py -v -n 16 -p no:cacheprovider \
        -p no:benchmark --timeout 150 --tb=short ;;
    check) stage kernels-check 150 bash -c check_each_kind ;;
    peers) stage kernels-peers 240 $PY -m kernels.bench --device cuda --suite peers --out "$R" ;;
    kernels) stage kernels-full 150 $PY -m kernels.bench --device cuda --suite full --no-check --seq 1024 3136 16384 \
        --out "$R" ;;
    nvs) stage nvs-bench 50 $PY -m nvs.bench --device cuda --out "$R" ;;
    causal) stage kernels-full-causal 90 $PY -m kernels.bench --device cuda --suite full --causal --no-check --out "$R" ;;
    vision) stage vision-bench 120 $PY -m vision.bench --device cuda --sizes 224 --out "$R" ;;
    vision-tests) stage vision-tests 240 $PY -m pytest tests/vision/test_fused_models.py tests/vision/test_compile.py \
        tests/kernels/test_custom_op.py -v -p no:cacheprovider --timeout 200 --tb=short ;;
    e2e) stage vision-e2e 400 $PY -m vision.bench --device cuda --suite e2e --compile off --out "$R" ;;
    e2e-compiled) stage vision-e2e-compiled 550 $PY -m vision.bench --device cuda --suite e2e --compile on \
        --out "$R/compiled" ;;
    *) echo "unknown stage $name" | tee -a "$SUMMARY" ;;
    esac
done

tar czf "$OUT/results.tgz" -C "$OUT" r
tar czf "$OUT/triton-cache.tgz" .triton-cache 2>/dev/null
# the device tool returns files of at most 16 MiB: a larger cache stays behind, and says so
[ "$(stat -c %s "$OUT/triton-cache.tgz" 2>/dev/null || echo 0)" -gt 16000000 ] && echo "triton-cache.tgz over 16 MB"
echo "----- summary"
grep -hE "FAILED|[0-9]+ (passed|failed)" "$R"/kernel-tests.log 2>/dev/null | cut -c1-300 | tail -n 12
cat "$R"/kernels-check.log 2>/dev/null
grep -hE "roofline|target|failed" "$R"/kernels-full.log 2>/dev/null
grep -hE "MISSED|met$|targets met|not measured" "$R"/kernels-peers.log 2>/dev/null
cat "$SUMMARY"
