"""Shared fixtures: small word images rendered here (tests never read ../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

WORDS = ["cat", "Dog", "tree", "HOUSE", "42", "sun", "Moon", "road", "a1b2", "x-ray", "Bird", "milk"]


def render_word(text: str, height: int = 32) -> Image.Image:
    """Black text on white with Pillow's built-in scalable font: no font files needed."""
    font = ImageFont.load_default(size=height - 8)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 8, height), "white")
    ImageDraw.Draw(img).text((4 - left, (height - (bottom - top)) // 2 - top), text, fill="black", font=font)
    return img


def write_word_set(root: Path, words: list[str] = WORDS) -> Path:
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


@pytest.fixture
def word_set(tmp_path: Path) -> Path:
    return write_word_set(tmp_path / "words")
