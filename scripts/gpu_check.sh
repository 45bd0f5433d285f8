#!/usr/bin/env bash
# GPU check on one H100 / H200: (a) the GPU test tier on the tiny model, (b) one T-GRPO step of a randomly
# initialised Qwen2.5-VL-3B (benchmarks/gpu_3b_step.py: s/step, completion tok/s, peak memory, vision share,
# shared vs per-completion vision encoding). Nothing is downloaded on the GPU machine.
#
#   scripts/gpu_check.sh prepare      # HERE, with network and uv: wheels the GPU image lacks -> .whl/,
#                                     # tiny model + demo clips -> .cache/gpu-check/ (both git-ignored)
#   scripts/gpu_check.sh [OUT_DIR]    # THERE: install .whl/ into /tmp/site, run (a) and (b); figures and logs
#                                     # go to OUT_DIR (default $OUT, else outputs/gpu_check)
#
# With the workplace's device tool: run `prepare` here, then
#   run(command="bash scripts/gpu_check.sh", carry=[".whl", ".cache/gpu-check"], timeout_s=600)
# The GPU image has Python 3.12, torch, transformers 5.17, accelerate, pyarrow, opencv, pytest, but no trl,
# datasets, hydra, omegaconf, decord, albucore (docs: shared/docs/environment.md); the wheels carried are
# ~40 MB (decord2 is most of it). wandb, deepspeed, vllm and av are not carried: the runs use logger=none
# distributed=none rollout=hf, and the demo clips are built here (building them needs av).
# Budget: about 8 minutes on the GPU ((a) <= 3 min, (b) <= 5 min, each under its own timeout).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=$REPO/.cache/gpu-check
WHEELS=${ROVA_WHEELS:-$REPO/.whl}  # ROVA_WHEELS: another wheel folder (or none, to test the flow here)

prepare() {
    set -e
    mkdir -p "$WHEELS"
    # Versions from uv.lock, so the GPU run uses what the tests here use.
    local specs
    specs=$(uv run --no-sync python - <<'EOF'
import tomllib
lock = {p["name"]: p["version"] for p in tomllib.load(open("uv.lock", "rb"))["package"]}
wanted = ["trl", "datasets", "dill", "multiprocess", "hydra-core", "omegaconf", "decord2", "albucore", "simsimd",
          "stringzilla", "jiwer", "rapidfuzz", "nltk", "submitit"]
print(" ".join(f"{name}=={lock[name]}" for name in wanted if name in lock))
EOF
)
    echo "wheels: $specs"
    # shellcheck disable=SC2086
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" $specs
    # Pure-Python packages published only as sdists: build their wheels here.
    local sdists
    sdists=$(uv run --no-sync python -c "
import tomllib
lock = {p['name']: p['version'] for p in tomllib.load(open('uv.lock', 'rb'))['package']}
print(' '.join(f'{n}=={lock[n]}' for n in ('antlr4-python3-runtime', 'rouge-score') if n in lock))")
    # shellcheck disable=SC2086
    python3 -m pip wheel -q --no-deps -w "$WHEELS" $sdists
    # The tiny model and the demo clips (24, the default count; the tests and the 3B step use the first 8).
    uv run python -c "
from rova.models.tiny import ensure_tiny_model
from rova.data.demo import build_demo_dataset
ensure_tiny_model('$CACHE/tiny-qwen2_5_vl', 'qwen2_5_vl')
build_demo_dataset('$CACHE/demo', num_clips=24)
build_demo_dataset('$CACHE/demo', num_clips=8)"
    du -sh "$WHEELS" "$CACHE"
    echo "prepared: carry .whl and .cache/gpu-check; run 'bash scripts/gpu_check.sh' on the GPU machine"
}

if [ "${1:-}" = "prepare" ]; then
    prepare
    exit $?
fi

OUT_DIR=${1:-${OUT:-$REPO/outputs/gpu_check}}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
export TOKENIZERS_PARALLELISM=false ROVA_TEST_CACHE=$CACHE

if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
        || { echo "gpu_check: installing the carried wheels failed" >&2; exit 3; }
    export PYTHONPATH=/tmp/site:$REPO${PYTHONPATH:+:$PYTHONPATH}
else
    export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d "$CACHE/tiny-qwen2_5_vl" ] || echo "gpu_check: $CACHE missing (run 'scripts/gpu_check.sh prepare' here and carry it)" >&2

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    $PY -c "
import importlib
for name in ('torch', 'transformers', 'trl', 'accelerate', 'datasets', 'hydra', 'omegaconf', 'decord', 'albucore'):
    try:
        print(f'{name:<14}', getattr(importlib.import_module(name), '__version__', '?'))
    except Exception as exc:
        print(f'{name:<14} MISSING ({type(exc).__name__}: {exc})')
import torch; print('cuda', torch.cuda.is_available(), torch.version.cuda)"
} 2>&1 | tee "$OUT_DIR/env.txt"

status=0
start=$SECONDS
echo "== (a) GPU test tier: pytest -m gpu =="
timeout 180 $PY -m pytest -m gpu -q -p no:cacheprovider -o addopts="" -ra 2>&1 | tee "$OUT_DIR/gpu_tests.log"
rc_tests=${PIPESTATUS[0]}
# 5 = no test collected for the marker: not a failure of the GPU code.
if [ "$rc_tests" -ne 0 ] && [ "$rc_tests" -ne 5 ]; then status=1; fi
echo "(a) exit $rc_tests after $((SECONDS - start)) s"

start=$SECONDS
echo "== (b) T-GRPO step, random Qwen2.5-VL-3B, G=8, 16 frames x ~128x28x28 px, 256 completion tokens =="
timeout 330 $PY benchmarks/gpu_3b_step.py --out "$OUT_DIR" --cache-dir "$CACHE" 2>&1 | tee "$OUT_DIR/gpu_3b_step.log"
rc_step=${PIPESTATUS[0]}
[ "$rc_step" -eq 0 ] || status=1
echo "(b) exit $rc_step after $((SECONDS - start)) s"


# (c) issue 23: the longest clip one process holds with the 3B's sequence split over 2 GPUs (Ulysses) vs 1.
# Needs 2 GPUs and DeepSpeed; the lent machine has one GPU and no DeepSpeed wheel is carried, so it says why not.
echo "== (c) sequence parallelism, random Qwen2.5-VL-3B: longest clip per GPU, SP=1 vs SP=2 =="
start=$SECONDS
if [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ] && $PY -c 'import deepspeed' 2>/dev/null; then
    timeout 240 $PY benchmarks/sequence_parallel_bench.py --arch qwen2_5_vl_3b --device cuda --frames 256 --step 128 \
        --max-frames 2048 --size 224 --cache "$CACHE" 2>&1 | tee "$OUT_DIR/sequence_parallel.log"
    rc_sp=${PIPESTATUS[0]}
else
    echo "skipped: needs 2 GPUs and deepspeed (this machine: $($PY -c 'import torch; print(torch.cuda.device_count())') GPU(s))" \
        | tee "$OUT_DIR/sequence_parallel.log"
    rc_sp=0
fi
[ "$rc_sp" -eq 0 ] || status=1
echo "(c) exit $rc_sp after $((SECONDS - start)) s"
echo "gpu_check: tests exit $rc_tests, 3B step exit $rc_step, SP exit $rc_sp; figures in $OUT_DIR"
exit $status
