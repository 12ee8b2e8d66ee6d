"""Golden renderer output: the synthetic-data engine promises the same bytes for the same seed.

The hashes below pin every random draw of the renderer, the text sampler, the dataset and the offline writer:
a refactor that reorders one draw, or changes one pixel, fails here. Pillow's built-in scalable font
(`DEFAULT_FONT`, shipped inside the pinned Pillow wheel) draws the text, so the test needs no system font; the
system font folders are hidden so that every font choice is that font. One case uses DejaVu Sans when it is
installed (scripts/install_fonts.sh), to pin a real TrueType face with hinting.

Regenerate (only after a deliberate change of the renderer's output, and say so in the commit):
`PYTHONPATH=src python tests/test_synth_golden.py`.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from PIL import Image

from masterocr.charset import Charset
from masterocr.data.synth import SynthDataset, Synthesizer, generate, render_word
from masterocr.data.synth import fonts as fonts_mod
from masterocr.data.synth.fonts import DEFAULT_FONT
from masterocr.data.transforms import Augment

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
TEXTS = ("Hello, World", "x", "minimum", "Qg|", "2026-12-02", "AVATAR", "l1I0O")
SEEDS = range(12)

GOLDEN = {
    "render_default_font": "371dcc7da1ad92102b493cff5e7313b18c27ed755bb9bba76c09c69a13a018c5",
    "render_default_font_fixed_width": "eaa25c0cafee8c3fcfb0b405c6148844a92830f030db3d97bc208ce3e8d4c6f2",
    "render_dejavu": "f40c4203f0118f564bbc2e345d120d88b61cc0e03679ad57a50a8a3e86ab26e7",
    "synthesizer": "087efa454d7471bb1733baab94f25f34a8c9b9178716321a590903d70e14aeb5",
    "dataset_train": "b224bef341688a3be57dcb60f2a95eabf2338947a74743e5d5876854ff1497b8",
    "dataset_val": "c7533d255a2ed94ddb4abecc70000abed99384318186423429f5020bd311807d",
    "generate_folder": "a22f9f255ef7404929f5cb55376f4a6e00c9579ff0c0f483d386042d82dc5a52",
    "augment": "608dbba11211231850a57dd243b0631c7b5de1369c338d079e31b9e7c65e9086",
}


def _image_digest(h: hashlib._Hash, img: Image.Image) -> None:
    h.update(repr((img.mode, img.size)).encode())
    h.update(img.tobytes())


def render_cases(font: str, width: int | None = None) -> str:
    h = hashlib.sha256()
    for text in TEXTS:
        for seed in SEEDS:
            _image_digest(h, render_word(text, font, random.Random(seed), height=32, width=width))
    return h.hexdigest()


def synthesizer_case() -> str:
    synth = Synthesizer(Charset.default(), [DEFAULT_FONT], height=32, seed=3)
    h = hashlib.sha256()
    for i in range(40):
        img, label = synth.sample(random.Random(f"golden:{i}"))
        h.update(label.encode())
        _image_digest(h, img)
    return h.hexdigest()


def dataset_case(training: bool) -> str:
    ds = SynthDataset(
        charset=Charset.default(), img_h=32, img_w=100, seed=5, length=20, training=training, fonts="all"
    )
    h = hashlib.sha256()
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            x, label = ds[i]
            h.update(label.encode())
            h.update(x.numpy().tobytes())
    return h.hexdigest()


def generate_case(out: Path) -> str:
    generate(out, 16, seed=9, workers=1, fmt="folder", font_split="all", progress=False)
    h = hashlib.sha256()
    for line in (out / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        h.update(record["Label"].encode())
        h.update((out / record["ImageFile"]).read_bytes())  # the PNG bytes as written
    h.update((out / "gt.txt").read_bytes())
    return h.hexdigest()


def augment_case() -> str:
    """The training augmentation's projective warp shares the homography solver with the renderer."""
    augment = Augment()
    h = hashlib.sha256()
    for seed in SEEDS:
        img = render_word("Augment", DEFAULT_FONT, random.Random(seed), height=32)
        for k in range(4):
            _image_digest(h, augment(img, random.Random(f"augment:{seed}:{k}")))
    return h.hexdigest()


@pytest.fixture
def only_default_font(tmp_path, monkeypatch):
    """Hide the system fonts: every font choice falls back to Pillow's built-in font."""
    monkeypatch.setattr(fonts_mod, "SYSTEM_FONT_DIRS", (str(tmp_path / "no-fonts"),))


def test_render_word_matches_golden_hashes():
    assert render_cases(DEFAULT_FONT) == GOLDEN["render_default_font"]
    assert render_cases(DEFAULT_FONT, width=100) == GOLDEN["render_default_font_fixed_width"]


def test_augment_matches_golden_hash():
    assert augment_case() == GOLDEN["augment"]


def test_render_word_with_dejavu_matches_golden_hash():
    if not Path(DEJAVU).is_file():
        pytest.skip(f"{DEJAVU} is not installed (scripts/install_fonts.sh)")
    assert render_cases(DEJAVU) == GOLDEN["render_dejavu"]


def test_sampler_and_dataset_match_golden_hashes(only_default_font):
    pytest.importorskip("wordfreq")
    assert synthesizer_case() == GOLDEN["synthesizer"]
    assert dataset_case(training=True) == GOLDEN["dataset_train"]
    assert dataset_case(training=False) == GOLDEN["dataset_val"]


def test_generate_matches_golden_hash(only_default_font, tmp_path):
    pytest.importorskip("wordfreq")
    assert generate_case(tmp_path / "out") == GOLDEN["generate_folder"]


if __name__ == "__main__":
    import tempfile

    fonts_mod.SYSTEM_FONT_DIRS = ("/nonexistent-font-folder",)
    with tempfile.TemporaryDirectory() as tmp:
        found = {
            "render_default_font": render_cases(DEFAULT_FONT),
            "render_default_font_fixed_width": render_cases(DEFAULT_FONT, width=100),
            "render_dejavu": render_cases(DEJAVU) if Path(DEJAVU).is_file() else "",
            "synthesizer": synthesizer_case(),
            "dataset_train": dataset_case(training=True),
            "dataset_val": dataset_case(training=False),
            "generate_folder": generate_case(Path(tmp) / "out"),
            "augment": augment_case(),
        }
    for key, value in found.items():
        print(f'    "{key}": "{value}",')
