#!/usr/bin/env bash
# Device check for a lent GPU (~10 minutes on one GPU): a tiny end-to-end iteration of the process-based
# loop on the embedded model (google/gemma-3-270m), transformers backend on CUDA, TRL training on the GPU,
# then prints what it measured. Nothing here is faked: every figure is read from the run it just made.
#
#   bash benchmarks/gpu_check.sh [RUN_DIR]        # default runs/gpu-check (removed first)
#
# Needs: a CUDA build of torch, this package installed (pip install -e .), the benchmark data
# ($PRM_SR_DATA_DIR or --data-dir via PRM_SR_DATA_DIR). vLLM is not used: the transformers backend is the
# one the CPU machine tests, so this checks the GPU path of the same code.
set -euo pipefail
RUN_DIR="${1:-runs/gpu-check}"
PY="${PYTHON:-python}"

echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi not found"
"$PY" - <<'PY'
import torch
assert torch.cuda.is_available(), "torch sees no GPU: install a CUDA build of torch"
p = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {p.name}, {p.total_memory / 2**30:.1f} GiB, "
      f"bf16 {torch.cuda.is_bf16_supported()}")
PY

echo "== plan (no GPU needed; the same config the run below uses)"
SETS=(
  --set model.device=cuda --set model.dtype=bfloat16 --set model.batch_size=32
  --set sft.device=cuda --set dpo.device=cuda --set cluster.gpus_per_node=1
  --set sft.per_device_batch_size=2 --set dpo.per_device_batch_size=2
  --set iterations=1 --set "problems_per_iteration=[16]"
  --set seed_data.ift_examples=256 --set seed_data.eft_train_pairs=64 --set seed_data.eft_heldout_pairs=100
  --set search.width=4 --set search.max_step_tokens=64 --set search.max_rounds=8 --set search.lockstep=16
  --set eval.few_shot=3 --set eval.max_new_tokens=256 --set eval.chunk_size=32
  --set "eval.limit={gsm8k: 100, math500: 50, olympiadbench: 20}" --set judge_eval.limit=100
)
"$PY" -m prm_selfreward.cli plan --config configs/cpu-smoke.yaml "${SETS[@]}"

echo "== generation throughput (transformers backend on CUDA)"
"$PY" benchmarks/bench_generation.py --device cuda --quick || echo "(bench_generation.py failed; see above)"

echo "== one iteration: eval M0 -> seed -> SFT -> eval M1 -> search -> pairs -> step-DPO -> eval M2"
rm -rf "$RUN_DIR"
start=$(date +%s)
"$PY" -m prm_selfreward.cli iterate --config configs/cpu-smoke.yaml --run-dir "$RUN_DIR" "${SETS[@]}"
echo "wall time: $(( $(date +%s) - start )) s"

echo "== measured (from $RUN_DIR/manifest.json)"
"$PY" - "$RUN_DIR" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
manifest = json.loads((run / "manifest.json").read_text())
print(f"{'stage':<22} {'status':<9} {'seconds':>8}  result")
for name, entry in manifest["stages"].items():
    result = entry.get("result")
    short = json.dumps(result, default=str)[:90] if result is not None else ""
    print(f"{name:<22} {entry.get('status', ''):<9} {entry.get('wall_time_s', 0):>8.1f}  {short}")
for t in (0, 1, 2):
    summary = run / f"iter_{t}" / "eval" / "summary.json"
    if summary.exists():
        accs = {b: f"{100 * s['accuracy']:.1f}% of {s['total']}" for b, s in json.loads(summary.read_text())["benchmarks"].items()}
        print(f"M{t} accuracy: {accs}")
PY
