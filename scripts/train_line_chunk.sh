#!/usr/bin/env bash
# One chunk of the line model's CPU training (configs/line_cpu_ctc.json), in the background at the lowest
# priority. The running checkpoint lives outside the checkout ($MASTEROCR_RUNS, default ~/masterocr-runs), so a
# checkout laid anew resumes it; where it is gone the chunk starts from the shipped line weights.
#   bash scripts/train_line_chunk.sh [--set KEY=VALUE ...]  # start or resume; log: $MASTEROCR_RUNS/line_cpu_ctc.log
#   pkill -INT -f 'masterocr train -c configs/line_cpu_ctc.json'   # stop: the signal saves checkpoint-latest.pth
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${MASTEROCR_RUNS:-$HOME/masterocr-runs}
mkdir -p "$runs"
py=${PYTHON:-.venv/bin/python}
nohup nice -n 19 "$py" -m masterocr -v train -c configs/line_cpu_ctc.json \
    -r weights/master_line.safetensors --finetune "$@" --set "trainer.save_dir=$runs" \
    >> "$runs/line_cpu_ctc.log" 2>&1 &
echo "training in the background (pid $!); log: $runs/line_cpu_ctc.log"
