"""Compare training runs by validation accuracy per hour of training: a table, and a PNG of accuracy against time.

    python scripts/compare_runs.py RUN_DIR [RUN_DIR ...] [--minutes 20 30 40] [--steps 500 1000] [--out PNG]

Each RUN_DIR is a trainer run folder (config.json, train.log, log/ with TensorBoard events). The clock is the
run's own training time: wall time between its logged steps, with the pauses between stopped and resumed
segments left out (a gap longer than ten times the usual interval counts as one usual interval). Accuracy at
N minutes is the last validation at or before that time, so runs of different speeds compare at equal cost.
Runs measured in different hours of a shared host differ by its load too: the table prints each run's own
median images/s so that this shows.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from masterocr.train.logs import read_scalars

COLORS = ["#2980b9", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085"]



def training_clock(wall_times: list[float], log_times: list[float]) -> dict[float, float]:
    """Map each wall time to seconds of training, skipping the pauses between run segments.

    `log_times` are the times of one per-step series (the loss): their median spacing is the usual interval.
    """
    times = sorted(set(wall_times))
    log_times = sorted(log_times)
    gaps = [b - a for a, b in zip(log_times, log_times[1:])]
    usual = statistics.median(gaps) if gaps else 0.0
    clock, elapsed = {}, 0.0
    for i, t in enumerate(times):
        if i:
            gap = times[i] - times[i - 1]
            elapsed += usual if gap > 10 * usual else gap
        clock[t] = elapsed
    return clock


def read_run(run_dir: Path) -> dict:
    """Preset, parameters, images/s and the validation curve (step, minutes, word_acc) of one run folder."""
    config = json.loads((run_dir / "config.json").read_text())
    log_text = (run_dir / "train.log").read_text() if (run_dir / "train.log").exists() else ""
    params = re.search(r"model ([\d.]+M) parameters", log_text)
    scalars = read_scalars(run_dir / "log")
    clock = training_clock([w for series in scalars.values() for _, _, w in series],
                           [w for _, _, w in scalars.get("train/loss", [])])
    val = sorted((s, clock[w] / 60, v) for s, v, w in scalars.get("val/word_acc", []))
    rates = [v for _, v, _ in scalars.get("train/images_per_s", [])]
    return {
        "name": run_dir.name,
        "preset": config.get("model_arch", {}).get("args", {}).get("preset", "?"),
        "params": params.group(1) if params else "?",
        "img_s": statistics.median(rates) if rates else float("nan"),
        "val": val,
    }


def acc_at(val: list[tuple[int, float, float]], *, step: int | None = None, minutes: float | None = None) -> str:
    """Validation word accuracy (%) at a step, or the last one at or before a time; '-' when the run stops short."""
    if step is not None:
        hits = [a for s, _, a in val if s == step]
        return f"{100 * hits[0]:.1f}" if hits else "-"
    if not val or val[-1][1] < minutes * 0.97:  # the run did not train that long (3 % slack: startup, rounding)
        return "-"
    done = [a for _, m, a in val if m <= minutes]
    return f"{100 * done[-1]:.1f}" if done else "0"


def plot(runs: list[dict], out: Path) -> None:
    font = ImageFont.load_default(size=14)
    img = Image.new("RGB", (900, 420), "white")
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = 60, 30, 880, 380
    draw.rectangle((x0, y0, x1, y1), outline="#888")
    draw.text((x0, 6), "validation word accuracy (held-out fonts) against minutes of training", fill="black",
              font=font)
    tmax = max((m for r in runs for _, m, _ in r["val"]), default=1.0) or 1.0
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        y = y1 - (y1 - y0) * frac
        draw.line((x0, y, x0 + 5, y), fill="#888")
        draw.text((8, y - 8), f"{100 * frac:.0f} %", fill="#444", font=font)
    draw.text((x1 - 120, y1 + 8), f"{tmax:.0f} min", fill="#444", font=font)
    draw.text((x0, y1 + 8), "0 min", fill="#444", font=font)
    for i, run in enumerate(runs):
        color = COLORS[i % len(COLORS)]
        pts = [(x0, y1)] + [(x0 + (x1 - x0) * m / tmax, y1 - (y1 - y0) * a) for _, m, a in run["val"]]
        draw.line(pts, fill=color, width=2)
        label = f"{run['name']}: {run['preset']} ({run['params']}, {run['img_s']:.0f} img/s)"
        draw.text((x0 + 12, y0 + 8 + 18 * i), label, fill=color, font=font)
    img.save(out)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--minutes", nargs="+", type=float, default=[20, 30, 40])
    parser.add_argument("--steps", nargs="+", type=int, default=[500, 1000, 1500, 2000])
    parser.add_argument("--out", type=Path, help="write the accuracy-against-time plot here (PNG)")
    args = parser.parse_args()
    runs = [read_run(r) for r in args.runs]
    head = ["run", "preset", "params", "img/s"] + [f"@{s} steps" for s in args.steps] + \
        [f"@{m:g} min" for m in args.minutes]
    rows = [[r["name"], r["preset"], r["params"], f"{r['img_s']:.1f}"]
            + [acc_at(r["val"], step=s) for s in args.steps]
            + [acc_at(r["val"], minutes=m) for m in args.minutes] for r in runs]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in [head, *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))
    if args.out:
        plot(runs, args.out)


if __name__ == "__main__":
    main()
