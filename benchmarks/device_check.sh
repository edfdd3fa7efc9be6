#!/bin/bash
# The device check: what only a GPU can test, in one command of under 8 minutes.
#
#   bash benchmarks/device_check.sh            # on a machine with a CUDA GPU, from the repo root
#
# 0. `gankit doctor` (run from the source tree, before anything is installed): versions, devices,
#    bf16/fp16 support, CPU extensions, weights and cache folders -> $OUT/doctor.txt;
# 1. installs gankit into the machine's Python without touching its torch (--no-deps; the other
#    dependencies from wheels/ when the machine has no index to download from);
# 2. runs the CUDA-only tests (pytest -m cuda: precisions, channels_last, determinism and exact
#    resume on the GPU, every task, augmentation without host syncs);
# 3. runs the throughput benchmark on the GPU (64 px RGB, batch 128) and a one-GPU torchrun (NCCL).
# Results go to $OUT (or benchmarks/results/device): doctor, test log, throughput JSON, nvidia-smi.
set -u
OUT=${OUT:-benchmarks/results/device}
mkdir -p "$OUT"
python -m gankit doctor 2>&1 | tee "$OUT/doctor.txt"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$OUT/nvidia-smi.txt"
if [ -d wheels ]; then
  python -m pip install -q --no-index --find-links wheels -e . --no-deps
  python -m pip install -q --no-index --find-links wheels PyWavelets mlxtend 2>/dev/null || true
else
  python -m pip install -q -e . --no-deps
fi
python - <<'PY' > "$OUT/env.txt" 2>&1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None)
PY
cat "$OUT/env.txt"
timeout 300 python -m pytest -m cuda -p no:cacheprovider -o addopts="" -rs tests 2>&1 | tail -40 | tee "$OUT/tests.txt"
timeout 120 python benchmarks/throughput.py --device cuda --steps 20 \
  --modes fp32-nchw-joint,fp32-cl-joint,fp32-cl-joint-bgc0.5,fp32-cl-joint-bgc0.5-plain,fp32-cl-joint-diffaug,bf16-cl-joint \
  --json "$OUT/throughput-cuda.json" 2>&1 | tail -12 | tee "$OUT/throughput.txt"
timeout 90 torchrun --standalone --nproc-per-node 1 -m gankit train --data digits --size 16 --steps 10 \
  --set model.width=8 --device cuda --runs-dir /tmp/device-ddp --no-progress 2>&1 | tail -3 | tee "$OUT/torchrun.txt"
