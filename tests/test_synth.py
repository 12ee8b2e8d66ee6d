"""Synthetic data engine: text sampling, font discovery/splitting, rendering, datasets and offline generation.

Fonts: whatever the system has (scripts/install_fonts.sh installs a curated set); parts that need several
font families are skipped, with the reason, when fewer are installed. Pillow's built-in font covers the rest.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from masterocr.charset import Charset
from masterocr.data import synth
from masterocr.data.synth import SynthDataset, Synthesizer, TextSampler, generate, pools, render_grid, render_word
from masterocr.data.synth import families as families_mod
from masterocr.data.synth import fonts as fonts_mod
from masterocr.data.synth.families import font_family, select_fonts, split_fonts
from masterocr.data.synth.fonts import DEFAULT_FONT, find_fonts, font_is_usable, supported_chars
from masterocr.errors import UserError

CHARSET = Charset.default()


@pytest.fixture(scope="module")
def system_fonts() -> list[str]:
    return find_fonts()  # [DEFAULT_FONT] when the system has no usable font file


@pytest.fixture(scope="module")
def font_dir(system_fonts) -> list[str] | None:
    """A small font folder for generation tests (DejaVu when installed), else None (= system fonts)."""
    for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation2"):
        if any(f.startswith(d + "/") for f in system_fonts):
            return [d]
    return None


def _families(fonts: list[str]) -> set[str]:
    return {font_family(f) for f in fonts}


def _png_hash(img: Image.Image) -> str:
    return hashlib.sha256(img.tobytes() + repr((img.mode, img.size)).encode()).hexdigest()


# ----------------------------------------------------------------------------------------------------------
# text sampling
# ----------------------------------------------------------------------------------------------------------
def test_text_sampler_covers_charset_and_respects_limits():
    sampler = TextSampler(CHARSET, seed=0, max_len=25)
    rng = random.Random(123)
    texts = [sampler.sample(rng) for _ in range(20000)]
    allowed = set(CHARSET.keys)
    for t in texts:
        assert 1 <= len(t) <= 25, t
        assert t == t.strip() and "  " not in t, repr(t)
        assert set(t) <= allowed, t
        assert t == CHARSET.clean(t)
    seen = set("".join(texts))
    assert seen == allowed, f"never sampled: {sorted(allowed - seen)}"
    lengths = Counter(len(t) for t in texts)
    word_like = sum(n for k, n in lengths.items() if 2 <= k <= 12) / len(texts)
    assert word_like > 0.75, lengths  # mostly word-sized crops
    assert lengths[1] > 0 and max(lengths) >= 20  # but short and long ones too
    # real words dominate and English is the most common language
    english = set(sampler.words["en"][0])
    assert sum(t.lower() in english for t in texts) / len(texts) > 0.3


def test_text_sampler_short_max_len_and_custom_charset():
    cs = Charset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
    sampler = TextSampler(cs, seed=1, max_len=5)
    rng = random.Random(0)
    for _ in range(3000):
        t = sampler.sample(rng)
        assert 1 <= len(t) <= 5 and set(t) <= set(cs.keys), t
        assert t == t.strip()


def test_text_sampler_is_deterministic():
    a = TextSampler(CHARSET, seed=5)
    b = TextSampler(CHARSET, seed=5)
    assert [a.sample() for _ in range(200)] == [b.sample() for _ in range(200)]
    assert [a.sample(random.Random(9)) for _ in range(3)] == [b.sample(random.Random(9)) for _ in range(3)]


# ----------------------------------------------------------------------------------------------------------
# fonts
# ----------------------------------------------------------------------------------------------------------
def test_find_fonts_sorted_and_usable(system_fonts):
    assert system_fonts == sorted(system_fonts)
    if system_fonts == [DEFAULT_FONT]:
        pytest.skip("no .ttf/.otf font installed (run scripts/install_fonts.sh); only the fallback exists")
    for f in system_fonts[:20]:
        assert Path(f).is_absolute() and font_is_usable(f)
        assert set("aA0.") <= supported_chars(f, CHARSET.keys)


def test_font_filter_rejects_garbage_and_symbol_fonts(tmp_path):
    bad = tmp_path / "broken.ttf"
    bad.write_bytes(b"not a font at all" * 100)
    assert not font_is_usable(str(bad))
    with pytest.raises(UserError, match="no usable"):
        find_fonts([tmp_path])
    with pytest.raises(UserError, match="does not exist"):
        find_fonts([tmp_path / "missing"])
    symbol_fonts = [
        p
        for p in (
            "/usr/share/fonts/opentype/urw-base35/D050000L.otf",
            "/usr/share/fonts/type1/urw-base35/D050000L.otf",
        )
        if Path(p).is_file()
    ]
    for p in symbol_fonts:  # dingbats mapped onto ASCII code points
        assert not font_is_usable(p)


class _FakeFont:
    """getbbox(ch, anchor="ls") of a face: x-height 20 px; ascenders/descenders as given."""

    def __init__(self, rise: int, fall: int) -> None:
        self.rise, self.fall = rise, fall

    def getbbox(self, ch, anchor=None):
        top = -20 - (self.rise if ch in fonts_mod._ASCENDERS else 0)
        bottom = self.fall if ch in fonts_mod._DESCENDERS else 0
        return (0, top, 10, bottom)


def test_small_capitals_are_rejected():
    """Lowercase drawn as small capitals has no ascenders or descenders; text faces have both."""
    assert fonts_mod._has_ascenders_or_descenders(_FakeFont(rise=8, fall=6))
    assert fonts_mod._has_ascenders_or_descenders(_FakeFont(rise=0, fall=6))  # a face with short ascenders
    assert not fonts_mod._has_ascenders_or_descenders(_FakeFont(rise=1, fall=1))
    small_caps = [p for p in ("/usr/share/fonts/fonts-go/Go-Smallcaps.ttf",) if Path(p).is_file()]
    for p in small_caps:  # a real small-caps face (fonts-go), when installed
        assert not font_is_usable(p)
        assert font_is_usable(p, charset_keys="0123456789abcdefghijklmnopqrstuvwxyz")  # one case: no test


def test_no_font_files_falls_back_to_pillow_font(tmp_path, monkeypatch):
    monkeypatch.setattr(fonts_mod, "SYSTEM_FONT_DIRS", (str(tmp_path / "none"),))
    assert find_fonts() == [DEFAULT_FONT]
    assert select_fonts(None, "train") == [DEFAULT_FONT]
    img = render_word("Hello", DEFAULT_FONT, random.Random(0), height=32)
    assert img.mode == "RGB" and img.height == 32 and img.width > 10


def test_split_fonts_by_family_fake_names(monkeypatch):
    """Split logic on made-up families (needs no font files): every face of a family on one side."""
    fams = [f"Family{i}" for i in range(40)]
    paths = [f"/fonts/{fam}-{style}.ttf" for fam in fams for style in ("Regular", "Bold", "Italic")]
    monkeypatch.setattr(families_mod, "font_family", lambda p: Path(p).stem.split("-")[0].lower())
    train, held = split_fonts(paths, 0.25, seed=0)
    assert sorted(train + held) == sorted(paths) and not set(train) & set(held)
    fam_of = lambda p: Path(p).stem.split("-")[0]  # noqa: E731
    assert not {fam_of(p) for p in train} & {fam_of(p) for p in held}
    assert 2 <= len({fam_of(p) for p in held}) <= 20  # about 10 of 40
    shuffled = paths[::-1]
    assert split_fonts(shuffled, 0.25, seed=0) == (train, held)  # order-independent, deterministic
    assert split_fonts(paths, 0.25, seed=1) != (train, held)
    assert split_fonts(paths, 0.0, seed=0) == (sorted(paths), [])
    # a tiny split still gets one family on each side
    few = [p for p in paths if fam_of(p) in ("Family0", "Family1")]
    tr, he = split_fonts(few, 0.15, seed=0)
    assert tr and he and {fam_of(p) for p in tr}.isdisjoint({fam_of(p) for p in he})


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("Lato Black", "lato"),
        ("Noto Sans Display", "noto sans display"),  # a different design from Noto Sans
        ("PT Sans Caption", "pt sans"),  # a caption cut of the PT Sans design
        ("Go Mono", "go"),
        ("Cousine", "liberation mono"),  # Liberation 2 is built from the Croscore outlines
        ("Accanthis ADF Std No2", "accanthis adf std"),
    ],
)
def test_font_family_joins_cuts_of_one_design(monkeypatch, name, family):
    """Cuts of one design sold under other names land in one family, so the held-out split cannot leak them."""
    monkeypatch.setattr(families_mod, "font_name", lambda path: (name, "Regular"))
    assert font_family("/fonts/any.ttf") == family


def test_split_fonts_real_families(system_fonts):
    if len(_families(system_fonts)) < 2:
        pytest.skip(f"needs fonts of 2+ families, found {len(_families(system_fonts))} (scripts/install_fonts.sh)")
    train, held = split_fonts(system_fonts, 0.15, seed=0)
    assert train and held
    assert _families(train).isdisjoint(_families(held))
    assert split_fonts(list(reversed(system_fonts)), 0.15, seed=0) == (train, held)
    bold = [f for f in system_fonts if "Bold" in Path(f).stem]
    for b in bold:  # a bold face follows its regular sibling
        side = train if b in train else held
        assert all(f in side for f in system_fonts if font_family(f) == font_family(b))
    assert select_fonts(None, "train") == train and select_fonts(None, "heldout") == held


# ----------------------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------------------
def test_render_word_deterministic_and_shaped(system_fonts):
    font = system_fonts[0]
    for seed in range(40):  # many seeds: exercises most background/geometry/degradation branches
        a = render_word("Hello, World", font, random.Random(seed), height=32)
        b = render_word("Hello, World", font, random.Random(seed), height=32)
        assert a.mode == "RGB" and a.height == 32 and 8 <= a.width <= 600
        assert _png_hash(a) == _png_hash(b)
    outs = {_png_hash(render_word("Hello", font, random.Random(s), height=32)) for s in range(10)}
    assert len(outs) == 10
    fixed = render_word("x", font, random.Random(1), height=48, width=100)
    assert fixed.size == (100, 48)
    with pytest.raises(UserError):
        render_word("  ", font, random.Random(0))


def test_rendered_text_is_visible(system_fonts):
    """The word must stand out from the background: the crop is not a flat image."""
    synth_ = Synthesizer(CHARSET, system_fonts, height=32, seed=0)
    for i in range(30):
        img, label = synth_.sample(random.Random(i))
        arr = np.asarray(img.convert("L"), dtype=np.float32)
        assert arr.std() > 8, (i, label)
        assert label and set(label) <= set(CHARSET.keys)


def test_synthesizer_deterministic_across_instances(system_fonts):
    a = Synthesizer(CHARSET, system_fonts, height=32, seed=3)
    b = Synthesizer(CHARSET, system_fonts, height=32, seed=3)
    for i in range(20):
        ia, la = a.sample(random.Random(i))
        ib, lb = b.sample(random.Random(i))
        assert la == lb and _png_hash(ia) == _png_hash(ib)


def test_render_grid(tmp_path, system_fonts):
    out = render_grid(tmp_path / "grid.png", n=8, seed=0, cols=4)
    img = Image.open(out)
    assert img.width > 200 and img.height > 100


# ----------------------------------------------------------------------------------------------------------
# SynthDataset
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_synth_dataset_shapes_and_determinism(channels):
    kw = dict(charset=CHARSET, img_h=32, img_w=100, in_channels=channels, seed=7, length=50, fonts="all")
    ds = SynthDataset(**kw)
    assert len(ds) == 50 and not ds.skipped
    x, label = ds[3]
    assert isinstance(x, torch.Tensor) and x.shape == (channels, 32, 100) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert label and label == CHARSET.clean(label) and set(label) <= set(CHARSET.keys)
    x2, label2 = ds[3]
    assert label2 == label and torch.equal(x, x2)
    other = SynthDataset(**kw)
    assert torch.equal(other[3][0], x) and other[3][1] == label
    ds.set_epoch(1)
    x3, _ = ds[3]
    assert not torch.equal(x3, x)  # a new epoch renders new samples
    ds.set_epoch(0)
    assert torch.equal(ds[3][0], x)
    with pytest.raises(IndexError):
        ds[50]


def test_synth_dataset_validation_ignores_epoch_and_keep_ratio():
    ds = SynthDataset(charset=CHARSET, img_h=32, img_w=128, keep_ratio=True, training=False, length=5, fonts="all")
    a = ds[0][0]
    ds.set_epoch(4)
    assert torch.equal(ds[0][0], a) and a.shape == (3, 32, 128)


def test_synth_dataset_augment_and_unknown_kwargs():
    calls = []

    def augment(img, rng):
        calls.append(img.size)
        return img

    ds = SynthDataset(charset=CHARSET, img_h=32, img_w=100, length=3, augment=augment, fonts="all")
    ds[0]
    assert calls
    with pytest.raises(TypeError):
        SynthDataset(charset=CHARSET, img_h=32, img_w=100, bogus=1)


# ----------------------------------------------------------------------------------------------------------
# offline generation
# ----------------------------------------------------------------------------------------------------------
def _read_lmdb(path: Path) -> dict[bytes, bytes]:
    import lmdb

    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        items = dict(txn.cursor())
    env.close()
    return items


def test_generate_lmdb_same_for_any_worker_count(tmp_path, font_dir):
    n = 24
    s1 = generate(tmp_path / "w1", n, fonts=font_dir, seed=11, workers=1, font_split="all", progress=False)
    s2 = generate(tmp_path / "w2", n, fonts=font_dir, seed=11, workers=2, font_split="all", progress=False)
    assert s1["count"] == s2["count"] == n and s1["images_per_s"] > 0 and s1["num_fonts"] >= 1
    a, b = _read_lmdb(tmp_path / "w1"), _read_lmdb(tmp_path / "w2")
    assert a == b
    assert a[b"num-samples"] == str(n).encode()
    for i in range(1, n + 1):
        label = a[b"label-%09d" % i].decode("utf-8")
        assert label and label == label.strip() and set(label) <= set(CHARSET.keys)
        img = Image.open(io.BytesIO(a[b"image-%09d" % i]))
        img.load()
        assert img.height == 32 and img.mode == "RGB"
    assert b"image-%09d" % (n + 1) not in a
    other = generate(tmp_path / "s12", 4, fonts=font_dir, seed=12, font_split="all", progress=False)
    assert other["count"] == 4
    assert _read_lmdb(tmp_path / "s12")[b"image-000000001"] != a[b"image-000000001"]
    meta = json.loads((tmp_path / "w1" / "synth.json").read_text())
    assert meta["count"] == n and meta["seed"] == 11


def test_generate_worker_errors_surface_instead_of_hanging(tmp_path):
    """A chunk that fails in a worker raises its own error; a worker that dies raises a UserError that says how
    to start workers from a script (a multiprocessing.Pool would wait forever in both cases)."""
    config = {"charset": CHARSET, "fonts": [str(tmp_path / "missing.ttf")], "height": 32, "width": None, "seed": 0}
    with pytest.raises(UserError, match="fonts draw none"):
        list(pools._samples(config, 8, 2, 2))
    script = tmp_path / "no_main_guard.py"  # workers re-import a script's __main__; without the guard they die
    script.write_text(
        "from masterocr.data.synth import generate\n"
        f"generate({str(tmp_path / 'out')!r}, 8, workers=2, progress=False)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0
    assert "worker process died" in proc.stderr and "if __name__ == '__main__'" in proc.stderr


def test_generate_folder_consistent(tmp_path, font_dir):
    out = tmp_path / "folder"
    stats = generate(
        out, 10, fonts=font_dir, seed=2, fmt="folder", height=24, width=80, font_split="all", progress=False
    )
    assert stats["count"] == 10
    records = [json.loads(line) for line in (out / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    gt = (out / "gt.txt").read_text(encoding="utf-8").splitlines()
    assert len(records) == len(gt) == 10
    assert len(list((out / "images").iterdir())) == 10
    for k, (rec, line) in enumerate(zip(records, gt, strict=True), start=1):
        assert rec["ImageFile"] == f"images/{k:09d}.png"
        name, label = line.split(",", 1)
        assert name == rec["ImageFile"] and label == rec["Label"] and label
        img = Image.open(out / name)
        assert img.size == (80, 24)


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(UserError):
        generate(tmp_path / "x", 0, progress=False)
    with pytest.raises(UserError):
        generate(tmp_path / "x", 3, fmt="tar", progress=False)
    with pytest.raises(UserError):
        generate(tmp_path / "x", 3, font_split="validation", progress=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        generate(busy, 3, fmt="folder", progress=False)
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]


def test_charset_file_for_generate(tmp_path, font_dir):
    keys = tmp_path / "keys.txt"
    keys.write_text("0123456789", encoding="utf-8")
    generate(tmp_path / "digits", 12, fonts=font_dir, charset=keys, fmt="folder", font_split="all", progress=False)
    labels = [json.loads(x)["Label"] for x in (tmp_path / "digits" / "labels.jsonl").read_text().splitlines()]
    assert all(set(label) <= set("0123456789") for label in labels)


def test_module_exports():
    for name in ("render_word", "generate", "render_grid", "SynthDataset", "TextSampler", "Synthesizer"):
        assert hasattr(synth, name)


def test_sample_with_font_names_the_font_that_drew_it(system_fonts):
    """Same image and label as `sample` for the same rng, and the font is one of the synthesizer's that draws
    every character of the label (the per-font accuracy table relies on this)."""
    synth_ = Synthesizer(CHARSET, system_fonts, height=32, seed=5)
    fonts_used = set()
    for i in range(30):
        img, label = synth_.sample(random.Random(i))
        img2, label2, font = synth_.sample_with_font(random.Random(i))
        assert (label2, _png_hash(img2)) == (label, _png_hash(img))
        assert font in synth_.fonts
        assert set(label) - {" "} <= supported_chars(font, CHARSET.keys)
        fonts_used.add(font)
    assert len(fonts_used) > 1 or len(synth_.families) == 1
