"""The pilot's extrapolation: CER against log(characters seen), fitted by least squares on the readings of
`bench/line_curve.py`, and where the line meets the targets.

    python bench/line_fit.py READINGS.jsonl [--mode ctc] [--min-chars 0] [--chars-per-cpu-hour 263204]

For each CER column (held-out synthetic Latin, Chinese, mixed; real Latin and Chinese) it fits
CER = a + b * ln(chars_seen) over the rows of `--mode` with at least `--min-chars` characters seen (the CTC
branch's blank plateau, CER 100 %, is no part of a learning curve: leave it out with --min-chars), and prints the
slope per doubling of the characters, the CER the line gives at the characters of 15 CPU-hours
(`--chars-per-cpu-hour`, the throughput table's recipe row), and the characters at which it reaches the target
(1.5 % for real Latin, 3 % for the rest). A log-linear fit of a handful of early points is a rough guide: real
curves flatten, so its crossing points are optimistic.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

COLUMNS = {"synth_latin_cer": 3.0, "synth_zh_cer": 3.0, "synth_mixed_cer": 3.0, "real_latin_cer": 1.5,
           "real_zh_cer": 3.0}  # fmt: skip


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares a, b of y = a + b * x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def extrapolate(rows: list[dict], chars_at_budget: float) -> list[dict]:
    """One dict per CER column: the fit, its CER at `chars_at_budget` and the characters for the target."""
    out = []
    xs = [math.log(r["chars_seen"]) for r in rows]
    for col, target in COLUMNS.items():
        ys = [r[col] for r in rows]
        a, b = fit(xs, ys)
        at_budget = a + b * math.log(chars_at_budget)
        reach = math.exp((target - a) / b) if b < 0 else math.inf
        out.append({"column": col, "points": len(rows), "a": round(a, 2), "per_doubling": round(b * math.log(2), 2),
                    "cer_at_budget": round(at_budget, 1), "target": target, "chars_for_target": reach})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("readings", type=Path)
    ap.add_argument("--mode", default="ctc")
    ap.add_argument("--min-chars", type=int, default=0)
    ap.add_argument("--chars-per-cpu-hour", type=float, default=263204)
    ap.add_argument("--cpu-hours", type=float, default=15.0)
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.readings.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["mode"] == args.mode and (r.get("chars_seen") or 0) >= max(1, args.min_chars)]
    if len(rows) < 2 or len({r["chars_seen"] for r in rows}) < 2:
        raise SystemExit(f"{args.readings}: fewer than two readings of mode {args.mode} to fit")
    budget = args.chars_per_cpu_hour * args.cpu_hours
    print(f"| column | points | CER change per doubling of characters | CER at {budget / 1e6:.1f} M characters "
          f"({args.cpu_hours:g} CPU-h) | target | characters to reach it |")
    print("|---|---|---|---|---|---|")
    for r in extrapolate(rows, budget):
        reach = "never (no downward slope)" if math.isinf(r["chars_for_target"]) else f"{r['chars_for_target']:.3g}"
        print(f"| {r['column']} | {r['points']} | {r['per_doubling']:+.2f} | {r['cer_at_budget']} | {r['target']} "
              f"| {reach} |")


if __name__ == "__main__":
    main()
