"""Plot training curves (loss, validation word accuracy) from a run's TensorBoard log to a PNG, with Pillow.

    python scripts/plot_curves.py RUN_DIR [RUN_DIR ...] OUT.png

Several run folders are drawn one after the other (a finetuning run restarts at step 0: its steps are shifted
to follow the previous run's last step). The x axis counts images (steps times the batch size in each run's
config.json), so that runs with different batch sizes, a CPU run and a GPU finetune say, share one axis; where a
run folder has no config.json it counts steps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from masterocr.train.logs import read_scalars


def images_per_step(run_dir: Path) -> int | None:
    """The run's batch size from its saved config.json (one process), or None when the folder has none."""
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
        return int(cfg["train_loader"]["args"]["batch_size"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def panel(draw: ImageDraw.ImageDraw, box, series, title: str, font, color, unit: str) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline="#888")
    draw.text((x0 + 6, y0 + 4), title, fill="black", font=font)
    if len(series) < 2:
        return
    steps = [s for s, _ in series]
    vals = [v for _, v in series]
    lo, hi = min(vals), max(vals)
    hi = hi if hi > lo else lo + 1
    smax = max(steps) or 1
    pts = [(x0 + 40 + (x1 - x0 - 50) * s / smax, y1 - 20 - (y1 - y0 - 45) * (v - lo) / (hi - lo)) for s, v in series]
    draw.line(pts, fill=color, width=2)
    draw.text((x0 + 4, y0 + 22), f"{hi:.3g}", fill="#444", font=font)
    draw.text((x0 + 4, y1 - 30), f"{lo:.3g}", fill="#444", font=font)
    draw.text((x1 - 130, y1 - 16), f"{unit} {smax:,}", fill="#444", font=font)


def chained(run_dirs: list[Path]) -> tuple[dict[str, list[tuple[int, float]]], str]:
    """The scalars of consecutive runs on one axis, and its unit: images where every run knows its batch size."""
    batches = [images_per_step(d) for d in run_dirs]
    unit = "images" if all(batches) else "step"
    out: dict[str, list[tuple[int, float]]] = {}
    offset = 0
    for run_dir, batch in zip(run_dirs, batches):
        scale = batch if unit == "images" else 1
        scalars = read_scalars(run_dir / "log")
        for tag, series in scalars.items():
            out.setdefault(tag, []).extend((offset + s * scale, v) for s, v, _ in series)
        offset += scale * max((s for series in scalars.values() for s, _, _ in series), default=0)
    return out, unit


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    *run_dirs, out = [Path(a) for a in sys.argv[1:]]
    scalars, unit = chained(run_dirs)
    font = ImageFont.load_default(size=14)
    img = Image.new("RGB", (900, 360), "white")
    draw = ImageDraw.Draw(img)
    panel(draw, (10, 10, 445, 350), scalars.get("train/loss", []), "training loss", font, "#c0392b", unit)
    panel(draw, (455, 10, 890, 350), scalars.get("val/word_acc", []),
          "validation word accuracy (held-out fonts)", font, "#27ae60", unit)
    img.save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
