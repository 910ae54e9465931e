#!/usr/bin/env bash
# The fair test on one GPU (the device machine): generate the data there, pretrain a 224-px `demo`
# CLIP, run the positive control and the primary scenario, evaluate. Sized by estimate for 10
# minutes of one H100 (data ~1.5 min on 16 cores, pretraining ~0.5, 22 runs ~5, scoring ~0.5).
# Results (results.json, RESULTS.md, control.json, logs) are copied to $OUT for the trip back.
#   run on the device:  bash scripts/gpu_fair_test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_out}
WORK=${WORK:-runs/fair_test_gpu}
mkdir -p "$OUT" "$WORK"
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1 || true
timeout "${LIMIT_S:-560}" "$PY" scripts/fair_test.py --profile gpu --out "$WORK" --jobs 1 \
  --threads "$(nproc)" 2>&1 | tee "$OUT/fair_test.log"
rc=${PIPESTATUS[0]}
for f in results.json RESULTS.md control.json runs_done.jsonl profile.json; do
  [ -f "$WORK/$f" ] && cp "$WORK/$f" "$OUT/"
done
echo "exit $rc" >> "$OUT/fair_test.log"
exit "$rc"
