"""Test data built here, so the tests need no files from outside the repository: word crops drawn with Pillow's
built-in font and labelled word sets in the layouts the readers expect."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def render_word(text: str, height: int = 32) -> Image.Image:
    """Black text on white with Pillow's built-in scalable font: needs no font files."""
    font = ImageFont.load_default(size=height - 8)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 8, height), "white")
    ImageDraw.Draw(img).text((4 - left, (height - (bottom - top)) // 2 - top), text, fill="black", font=font)
    return img


def write_word_set(root: Path, words: list[str]) -> Path:
    """root/images/NNN.png, root/gt.txt (name,label) and root/labels.jsonl ({ImageFile, Label})."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines, jl = [], []
    for i, w in enumerate(words):
        name = f"{i:03d}.png"
        render_word(w).save(root / "images" / name)
        lines.append(f"{name},{w}")
        jl.append(json.dumps({"ImageFile": name, "Label": w}))
    (root / "gt.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "labels.jsonl").write_text("\n".join(jl) + "\n", encoding="utf-8")
    return root


def tiny_word_config(tmp_path: Path, validate: bool) -> dict:
    """A run of the tiny preset on four rendered words (validated on the same words when `validate`)."""
    words = write_word_set(tmp_path / "words", ["cat", "dog", "sun", "tree"])
    data = {"type": "TextDataset", "args": {"txt_file": str(words / "gt.txt"), "img_root": str(words / "images")}}
    return {
        "name": "cb", "run_id": "tiny", "seed": 3, "distributed": False, "augment": False,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "max_len": 8}},
        "train_dataset": data, "train_loader": {"args": {"batch_size": 2, "num_workers": 0}},
        "trainer": {"epochs": 10_000, "save_dir": str(tmp_path / "saved"), "save_period": 1000, "progress": False,
                    "do_validation": validate},
    } | ({"val_dataset": data} if validate else {})  # fmt: skip


def randomize_bn(model, seed: int = 1) -> None:
    """Non-trivial BatchNorm statistics, so that the image (and a padded column) changes the readings: with the
    defaults a padded column's activations would stay near 0."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
