#!/usr/bin/env bash
# The line chunk's CPU clock: every 60 s it appends the CPU seconds (x100 ticks) the training job and its loader
# workers have used (reaped workers included), plus CPU_BASE_TICKS from earlier chunks, to $MASTEROCR_RUNS/cpu_monitor.log,
# and copies checkpoint-latest.pth to pilot/cpuNmin.pth at every 20 CPU-minutes (the pilot's curve).
#   CPU_BASE_TICKS=308000 nohup bash scripts/train_line_monitor.sh >/dev/null 2>&1 &
runs=${MASTEROCR_RUNS:-$HOME/masterocr-runs}
run=$runs/line_cpu_ctc/line_ctc
base=${CPU_BASE_TICKS:-0}
# the job's command line (pgrep -f); a second job beside it (an A/B arm) has its own save_dir to tell them apart
pattern=${PATTERN:-"masterocr -v train -c configs/line_cpu_ctc.json"}
while true; do
  pid=$(pgrep -f "$pattern" | head -1)
  if [ -n "$pid" ]; then
    cpu=$(awk '{print $14+$15+$16+$17}' /proc/$pid/stat 2>/dev/null || echo 0)
    for p in $(pgrep -P $pid); do
      t=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0)
      cpu=$((cpu + t))
    done
    total=$((cpu + base))
    step=$(grep -ao "step [0-9]* loss" $runs/line_cpu_ctc.log | tail -1 | awk '{print $2}')
    echo "$(date +%s) $(date +%H:%M:%S) pid=$pid cpu_ticks=$total step=${step:-0} load=$(cut -d' ' -f1 /proc/loadavg)" >> $runs/cpu_monitor.log
    mark=$(( total / 120000 * 20 ))
    if [ $mark -gt 0 ] && [ ! -e $runs/pilot/cpu${mark}min.pth ] && [ -e $run/checkpoint-latest.pth ]; then
      mkdir -p $runs/pilot
      cp $run/checkpoint-latest.pth $runs/pilot/cpu${mark}min.pth
      echo "$(date +%H:%M:%S) pilot copy at cpu_ticks=$total step=$step -> cpu${mark}min.pth" >> $runs/cpu_monitor.log
    fi
  fi
  sleep 60
done
