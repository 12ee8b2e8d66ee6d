"""`make demo`: read the bundled sample crops with the shipped model.

Without shipped weights (a checkout that lacks weights/), it first trains the tiny preset for about a minute
on generated words, so the whole pipeline still runs end to end.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from masterocr.assets import default_weights_path
from masterocr.data.folders import list_image_files
from masterocr.data.labels import read_labels
from masterocr.errors import UserError
from masterocr.metrics import line_scores, score
from masterocr.runtime.torch import Recognizer
from masterocr.train.config import run_settings
from masterocr.train.loop import train

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _render_word(text: str, height: int = 32):
    """Black text on white with Pillow's built-in scalable font: needs no font files."""
    font = ImageFont.load_default(size=height - 8)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 8, height), "white")
    ImageDraw.Draw(img).text((4 - left, (height - (bottom - top)) // 2 - top), text, fill="black", font=font)
    return img


def _write_words(root: Path, words: list[str]) -> Path:
    """root/images/NNN.png and root/gt.txt (name,label): a training set for the fallback."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, w in enumerate(words):
        name = f"{i:03d}.png"
        _render_word(w).save(root / "images" / name)
        lines.append(f"{name},{w}")
    (root / "gt.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _fallback_recognizer(workdir: Path) -> Recognizer:
    """Train the tiny preset briefly on words rendered with Pillow's built-in font."""
    words = ["BEACH", "beach", "RONALDO", "NOTICE", "renard", "word", "text", "demo", "MASTER", "ocr", "2024", "Cafe"]
    root = _write_words(workdir / "words", words)
    data = {"type": "TextDataset", "args": {"txt_file": str(root / "gt.txt"), "img_root": str(root / "images")}}
    config = {
        "name": "demo", "run_id": "tiny", "seed": 1, "distributed": False, "augment": False,
        "model_arch": {"args": {"preset": "tiny", "decoder_kwargs": {"dropout": 0.0}}},
        "train_dataset": data, "train_loader": {"args": {"batch_size": 12, "num_workers": 0}},
        "optimizer": {"type": "Adam", "args": {"lr": 0.002}},
        "lr_scheduler": {"type": "WarmupCosine", "args": {"warmup_steps": 20, "total_steps": 300}},
        "trainer": {"epochs": 100000, "max_steps": 300, "save_dir": str(workdir / "saved"), "save_period": 100000,
                    "do_validation": False, "train_num_workers": 0},
    }  # fmt: skip
    summary = train(run_settings(config), device="cpu")
    return Recognizer.from_checkpoint(Path(summary["run_dir"]) / "checkpoint-latest.pth")


def run(folder: Path = SAMPLES) -> dict:
    """Recognize every image in `folder`, print one line each and the accuracy against labels.jsonl."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            default_weights_path()
            rec = Recognizer()
        except UserError as exc:
            print(f"{exc}\n-> training the tiny preset for a minute on generated words instead")
            rec = _fallback_recognizer(Path(tmp))
        files, _ = list_image_files(folder)
        preds = rec.predict(files)
    labels = read_labels(folder / "labels.jsonl") if (folder / "labels.jsonl").exists() else {}
    print(f"model: {rec.weights_path}")
    print(f"{'file':<16} {'text':<20} {'score':>6}  label")
    for f, p in zip(files, preds):
        text = p.text if p.error is None else f"ERROR {p.error}"
        print(f"{f.name:<16} {text:<20} {p.score or 0:>6.3f}  {labels.get(f.name, '')}")
    result = {}
    if labels:
        by_name = {f.name: p.text for f, p in zip(files, preds)}
        result = score([by_name.get(n) for n in labels], list(labels.values()))
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
    print(f"demo took {time.perf_counter() - t0:.1f} s")
    return result


def run_lines(folder: Path = SAMPLES / "lines") -> dict:
    """Read the bundled real text lines with the shipped line model; prints each line and the CER per script."""
    try:
        rec = Recognizer("line")
    except UserError as exc:
        print(f"line model: {exc}")
        return {}
    t0 = time.perf_counter()
    files, _ = list_image_files(folder)
    preds = rec.predict(files, batch_size=8)
    labels = read_labels(folder / "labels.jsonl")
    print(f"\nline model: {rec.weights_path}")
    for f, p in zip(files, preds):
        text = p.text if p.error is None else f"ERROR {p.error}"
        print(f"{f.name:<16} {p.score or 0:.3f}  read:  {text}")
        print(f"{'':<16} {'':5}  label: {labels.get(f.name, '?')}")
    result = {}
    # Chinese CER without spaces: typesetters differ in the gap they put between hanzi and Latin text
    for script, prefix, key in (("latin", "lat_", "all"), ("zh", "zh_", "nospace")):
        pairs = [(p.text, labels[f.name]) for f, p in zip(files, preds) if f.name.startswith(prefix)]
        if pairs:
            counts = line_scores([t for t, _ in pairs], [g for _, g in pairs])[key]
            result[script] = {"lines": counts.n, "exact": counts.correct, "cer": round(counts.cer, 4)}
    print(json.dumps(result))
    print(f"lines took {time.perf_counter() - t0:.1f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="recognize the bundled sample crops (words, then text lines)")
    parser.add_argument("--folder", type=Path, default=SAMPLES)
    args = parser.parse_args()
    run(args.folder)
    if args.folder == SAMPLES:
        run_lines()


if __name__ == "__main__":
    main()
