"""Synthetic text lines: texts, faces (held-out design, glyph fallback), determinism, coverage, LMDB shards.

CJK glyphs come from the registry's font packages (the `synth` extra, in every dev install): tests that render
lines fail, naming the extra, when they are missing. The held-out rule and the glyph fallback are checked on
font files made here from a registry font (fontTools): a copy named "LXGW WenKai" and a cut without Latin
letters, so the tests read the same on any machine, with or without Debian's CJK fonts.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from masterocr.charset import Charset
from masterocr.data.lmdb_datasets import LmdbDataset
from masterocr.data.synth.cjkfonts import (
    HELDOUT_CJK_DESIGN,
    REGISTRY_FONTS,
    coverage,
    find_cjk_fonts,
    registry_fonts,
    select_cjk_fonts,
)
from masterocr.data.synth.fonts import load_font
from masterocr.data.synth.linedataset import SynthLineDataset, generate_lines, line_evaluation_set
from masterocr.data.synth.linesynth import LineSynthesizer
from masterocr.data.synth.linetext import LineTextSampler, gb2312_hanzi, is_cjk
from masterocr.errors import UserError

CJK_PUNCT = "，。、；：？！“”‘’《》（）【】「」…—·"
LATIN = string.printable[:95] + "".join(chr(c) for c in range(0xA1, 0x180) if chr(c).isprintable())
CS = Charset(LATIN + gb2312_hanzi() + CJK_PUNCT)  # the rule of the shipped Chinese + Latin charset


@pytest.fixture(scope="module")
def cjk_fonts() -> dict[str, str]:
    """{package: font file} of the registry's CJK fonts; fails (never skips) when the synth extra is missing."""
    found = registry_fonts()
    missing = sorted({m for m, _ in REGISTRY_FONTS} - set(found))
    assert not missing, f"CJK font packages missing ({', '.join(missing)}): pip install -e '.[all,dev]' (synth extra)"
    return found


def _font_copy(src: str, dst: Path, family: str, text: str) -> str:
    """A TrueType copy of face 0 of `src` that draws only `text`, with the family name `family`."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(src, fontNumber=0)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.drop_tables += ["FFTM"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    for record in font["name"].names:
        if record.nameID in (1, 4, 16):
            record.string = family
    font.save(dst)
    return str(dst)


@pytest.fixture(scope="module")
def made_fonts(cjk_fonts: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two faces cut from WenQuanYi Micro Hei: "LXGW WenKai" (the held-out design's name: ASCII and level-1
    hanzi) and "Hanzi Only" (level-1 hanzi and CJK punctuation, no Latin letter)."""
    folder = tmp_path_factory.mktemp("fonts")
    micro = cjk_fonts["paperang_p2_fonts_cjk"]
    level1 = gb2312_hanzi()[:3755]
    (folder / "heldout").mkdir()
    (folder / "hanzi").mkdir()
    return {
        "heldout": _font_copy(micro, folder / "heldout" / "fake-wenkai.ttf", "LXGW WenKai", LATIN[:95] + level1),
        "hanzi": _font_copy(micro, folder / "hanzi" / "hanzi-only.ttf", "Hanzi Only", level1 + CJK_PUNCT),
    }


def _digest(ds: SynthLineDataset, n: int) -> str:
    h = hashlib.sha256()
    for i in range(n):
        img, label, _, _ = ds.rendered(i)
        h.update(repr(img.size).encode() + img.tobytes() + label.encode())
    return h.hexdigest()


def test_gb2312_has_6763_hanzi() -> None:
    hanzi = gb2312_hanzi()
    assert len(hanzi) == len(set(hanzi)) == 6763 and all(is_cjk(c) for c in hanzi)


def test_text_lengths_spaces_and_charset() -> None:
    sampler = LineTextSampler(CS, max_len=160)
    rng = random.Random(0)
    buckets = {"1-25": 0, "26-50": 0, "51-100": 0, ">100": 0}
    gaps = nogaps = 0
    for i in range(900):
        kind = ("latin", "zh", "mixed")[i % 3]
        text = sampler.sample(rng, kind)
        assert text and text == text.strip() and "  " not in text and len(text) <= 160
        assert set(CS.clean(text)) <= set(CS.keys)
        n = len(text)
        buckets["1-25" if n <= 25 else "26-50" if n <= 50 else "51-100" if n <= 100 else ">100"] += 1
        if kind == "mixed":
            gaps += bool(re.search(r"[\u4e00-\u9fff] [A-Za-z0-9]", text))
            nogaps += bool(re.search(r"[\u4e00-\u9fff][A-Za-z0-9]", text))
        if kind == "zh":
            assert not re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", text)  # no space between hanzi
    assert min(buckets.values()) >= 30, buckets
    assert gaps >= 20 and nogaps >= 20  # typesetters differ: both spacings occur
    assert sum(sampler.dropped.values()) == 0


def test_out_of_charset_characters_are_dropped_and_counted() -> None:
    small = Charset(string.printable[:95] + gb2312_hanzi()[:200])  # no accented letters, few hanzi
    sampler = LineTextSampler(small)
    rng = random.Random(1)
    texts = [sampler.sample(rng, kind) for kind in ("latin", "zh", "mixed") * 100]
    assert all(set(small.clean(t)) <= set(small.keys) for t in texts)
    assert sum(sampler.dropped.values()) > 0 and all(c not in small.keys for c in sampler.dropped)


def test_coverage_of_gb2312() -> None:
    """5,000 line texts (the training mix) in 5 epochs, the views counted between epochs as the trainer counts
    them, cover most of the 6,763 GB2312 hanzi and nearly all of level 1."""
    sampler = LineTextSampler(CS)
    rng = random.Random(0)
    views: Counter[str] = Counter()
    for _ in range(5):
        sampler.set_views(dict(views))
        for _ in range(1000):
            kind = rng.choices(("latin", "zh", "mixed"), weights=(0.35, 0.40, 0.25))[0]
            views.update(c for c in sampler.sample(rng, kind) if is_cjk(c))
    hanzi = gb2312_hanzi()
    # measured 0.942 and 0.9995; uniform draws without the views gave 0.897 (0.812 with the level weights
    # alone, 0.991 of level 1), the frequency lists alone 0.595
    assert len(set(views) & set(hanzi)) / 6763 >= 0.92
    assert len(set(views) & set(hanzi[:3755])) / 3755 >= 0.995


def test_registry_noto_face_is_simplified_chinese_and_draws_every_gb2312_hanzi(cjk_fonts: dict[str, str]) -> None:
    noto = cjk_fonts["manimgx_fonts_cjk"]
    faces = find_cjk_fonts([noto])
    # face 2 of the collection is SC (0 JP, 1 KR, 3 TC, 4 HK), drawn at five weights of the variable font
    assert faces == {"noto sans cjk": [f"{noto}#2@{w}" for w in (300, 400, 500, 700, 900)]}
    assert coverage(f"{noto}#2@400").missing(gb2312_hanzi() + CJK_PUNCT + string.ascii_letters) == set()
    ink = []
    for face in faces["noto sans cjk"]:
        img = Image.new("L", (200, 40), 0)
        ImageDraw.Draw(img).text((0, 0), "中国的是人", fill=255, font=load_font(face, 32))
        ink.append(int(np.asarray(img, dtype=np.int64).sum()))
    assert ink == sorted(ink) and ink[-1] > 1.5 * ink[0], ink  # heavier weights, more ink


def test_default_discovery_finds_the_registry_fonts(cjk_fonts: dict[str, str]) -> None:
    """Without --fonts the registry's Noto Sans CJK joins the system's faces (a Debian copy of Micro Hei wins
    over the package's byte-identical one), and it trains: only LXGW WenKai is held out."""
    designs = find_cjk_fonts()
    noto = cjk_fonts["manimgx_fonts_cjk"]
    assert {f"{noto}#2@{w}" for w in (300, 700)} <= set(designs["noto sans cjk"])
    assert any(cjk_fonts["paperang_p2_fonts_cjk"] in f or "wqy-microhei" in f for f in designs["droid sans fallback"])
    assert HELDOUT_CJK_DESIGN not in select_cjk_fonts(split="train")


@pytest.mark.parametrize("height", [32, 48])
def test_lines_deterministic_per_seed(height: int, cjk_fonts: dict[str, str]) -> None:
    a = SynthLineDataset(charset=CS, height=height, training=False, seed=3, length=6)
    b = SynthLineDataset(charset=CS, height=height, training=False, seed=3, length=6)
    c = SynthLineDataset(charset=CS, height=height, training=False, seed=4, length=6)
    assert _digest(a, 6) == _digest(b, 6) != _digest(c, 6)
    for i in range(6):
        img, label, face, _ = a.rendered(i)
        assert img.height == height and 1 <= img.width <= 50 * height and label
        assert set(label) <= set(CS.keys)
        tensor, same = a[i]
        assert tensor.shape == (3, height, img.width) and same == label


def test_heldout_design_only_in_evaluation_set(cjk_fonts: dict[str, str], made_fonts: dict[str, str]) -> None:
    """The held-out design goes by name: a face named LXGW WenKai never trains and is the evaluation set's only
    face; without it the evaluation set names the fix."""
    noto = cjk_fonts["manimgx_fonts_cjk"]
    dirs = [noto, str(Path(made_fonts["heldout"]).parent)]
    designs = find_cjk_fonts(dirs)
    assert sorted(designs) == [HELDOUT_CJK_DESIGN, "noto sans cjk"]
    held = set(designs[HELDOUT_CJK_DESIGN])
    train = SynthLineDataset(charset=CS, training=False, length=40, kinds={"zh": 1.0}, font_dirs=dirs)
    assert not {train.rendered(i)[2] for i in range(40)} & held
    kinds = {"zh": 0.5, "mixed": 0.5}
    ev = line_evaluation_set(CS, 12, seed=0, kinds=kinds, font_dirs=dirs)
    assert {ev.rendered(i)[2] for i in range(12)} == held
    assert _digest(ev, 4) == _digest(line_evaluation_set(CS, 12, seed=0, kinds=kinds, font_dirs=dirs), 4)
    with pytest.raises(UserError, match="fonts-lxgw-wenkai"):
        line_evaluation_set(CS, 2, font_dirs=[noto])


def test_glyph_fallback_never_draws_tofu(cjk_fonts: dict[str, str], made_fonts: dict[str, str]) -> None:
    """A face without Latin letters: Latin words in a line go to another face, never to tofu."""
    hanzi = made_fonts["hanzi"]
    assert coverage(hanzi).missing("Hello 中国") == set("Helo")
    noto = cjk_fonts["manimgx_fonts_cjk"]
    synth = LineSynthesizer(CS, font_dirs=[hanzi, noto], kinds={"mixed": 1.0}, split="all")
    faces = set()
    for i in range(40):
        img, label, face, _ = synth.sample(random.Random(i))
        faces.add(face)
        if face == hanzi:
            assert not re.search(r"[A-Za-z]", label), label
    assert hanzi in faces and len(faces) > 1 and all(f.startswith(noto) for f in faces - {hanzi})


def test_lmdb_shards_read_back(tmp_path: Path, cjk_fonts: dict[str, str]) -> None:
    stats = generate_lines(tmp_path / "out", 7, charset=CS, shard_size=3, seed=5, progress=False)
    assert stats["shards"] == ["shard-00000", "shard-00001", "shard-00002"]
    labels = []
    for shard in stats["shards"]:
        ds = LmdbDataset(tmp_path / "out" / shard, charset=CS, img_h=32, img_w=1600, keep_ratio=True, max_len=200)
        for i in range(len(ds)):
            img, label = ds[i]
            assert img.shape == (3, 32, 1600)
            labels.append(label)
    assert len(labels) == 7
    again = generate_lines(tmp_path / "again", 7, charset=CS, shard_size=7, seed=5, progress=False)
    assert again["mean_label_len"] == stats["mean_label_len"]
    with pytest.raises(UserError, match="not empty"):
        generate_lines(tmp_path / "out", 2, charset=CS, progress=False)


def test_cli_synth_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str], cjk_fonts: dict[str, str]) -> None:
    from masterocr.cli import main

    keys = tmp_path / "keys.txt"
    CS.save(keys)
    out = tmp_path / "lines"
    argv = ["synth", "--lines", "--out", str(out), "--count", "4", "--shard-size", "2", "--charset", str(keys)]
    assert main([*argv, "--height", "48"]) == 0
    assert '"shards": ["shard-00000", "shard-00001"]' in capsys.readouterr().out
    ds = LmdbDataset(out / "shard-00001", charset=CS, img_h=48, img_w=2400, keep_ratio=True, max_len=200)
    assert len(ds) == 2 and ds[0][0].shape == (3, 48, 2400)
    assert main([*argv[:3], str(tmp_path / "x"), *argv[4:], "--workers", "2"]) != 0
    assert "one process" in capsys.readouterr().err


def test_only_the_face_cache_keeps_faces_alive(cjk_fonts: dict[str, str]) -> None:
    """A loader worker's memory is bounded by `load_font`'s cap: the metrics, coverage and glyph caches ask it
    again instead of holding faces, so once it is cleared no face is left open."""
    import gc

    from PIL import ImageFont

    synth = LineSynthesizer(CS, max_width=800, split="all")
    for i in range(30):
        synth.sample(random.Random(i))
    load_font.cache_clear()
    gc.collect()
    live = [o for o in gc.get_objects() if isinstance(o, ImageFont.FreeTypeFont)]
    assert not live, f"{len(live)} faces outlive the face cache"
    synth.sample(random.Random(31))  # the holders open their faces again on demand
