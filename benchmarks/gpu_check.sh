#!/bin/bash
# CUDA check of the training step (issue 13), under 5 minutes on one GPU:
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# Installs the package, then for 64 and 256 px in fp32 and bf16-mixed runs a few hundred real
# Trainer steps of benchmarks/train_step.py on CUDA (sec/kimg, peak GPU memory, the last R1 and
# path-length penalties, which must be finite). With NVLABS_DIR set to a checkout of NVlabs'
# stylegan2-ada-pytorch, also times its own training loop in fp32 (its code is
# imported, not shipped: benchmarks/nvlabs_train_step.py) with the same networks, side by side.
set -euo pipefail
OUT=${1:-${OUT:-gpu_check}}
mkdir -p "$OUT"
python -m pip install -q -e . > "$OUT/install.log" 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv"
for res in 64 256; do
  if [ "$res" = 64 ]; then steps=300; batch=32; else steps=120; batch=16; fi
  for precision in 32-true bf16-mixed; do
    timeout 60 python benchmarks/train_step.py --accelerator cuda --precision "$precision" \
      --resolution "$res" --channel-base 16384 --channel-max 512 --batch "$batch" --infer-batch 32 \
      --steps "$steps" --warmup 16 --json "$OUT/ours_${res}_${precision}.json" > /dev/null \
      || echo "ours $res $precision failed ($?)" >> "$OUT/failures.txt"
  done
  if [ -n "${NVLABS_DIR:-}" ]; then
    timeout 60 python benchmarks/nvlabs_train_step.py --nvlabs-dir "$NVLABS_DIR" --device cuda \
      --resolution "$res" --channel-base 16384 --channel-max 512 --batch "$batch" --steps "$steps" \
      --warmup 16 --json "$OUT/nvlabs_${res}_32-true.json" > /dev/null \
      || echo "nvlabs $res failed ($?)" >> "$OUT/failures.txt"
  fi
done
python - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| config | img/s | sec/kimg | peak GPU MiB | R1 | PL |")
print("| --- | --- | --- | --- | --- | --- |")
for f in sorted(out.glob("*_*.json")):
    d = json.loads(f.read_text()); r = d.get("last_regularizers", {})
    print(f"| {f.stem} | {d['train_img_per_s']} | {d['sec_per_kimg']} | {d['peak_gpu_mib']} | "
          f"{r.get('Loss/r1_penalty')} | {r.get('Loss/pl_penalty')} |")
PY
