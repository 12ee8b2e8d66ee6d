"""The pack for a lent GPU: exported word lists, fonts cut to a charset, training sized to a time budget, the
weights coming back in parts; and (slow) the whole pack built and run on this CPU for 60 seconds."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import load_script, write_word_set

from masterocr.charset import Charset
from masterocr.data.synth import wordlists
from masterocr.errors import UserError
from masterocr.formats.checkpoint import load_checkpoint
from masterocr.train.budget import sized_config, train_for_seconds
from masterocr.train.config import run_settings
from masterocr.train.loop import train

ROOT = Path(__file__).resolve().parents[1]
ZH_LATIN = ROOT / "src" / "masterocr" / "charsets" / "zh_latin.txt"


def _samples(sampler, seeds=range(60)) -> list[str]:
    return [sampler.sample(random.Random(seed), kind) for seed in seeds for kind in ("latin", "zh", "mixed")]


def test_exported_word_lists_give_the_samplers_the_same_words(tmp_path, monkeypatch):
    pytest.importorskip("wordfreq", reason="the export reads wordfreq: pip install 'masterocr[synth]'")
    from masterocr.data.synth.linetext import LineTextSampler, word_list_reads

    charset = Charset.from_file(ZH_LATIN)
    monkeypatch.delenv(wordlists.WORDLISTS_ENV, raising=False)
    path = tmp_path / "words.json.gz"
    counts = wordlists.export_wordlists(path, word_list_reads(charset))
    assert set(counts) == {"en", "fr", "de", "es", "it", "pt", "pl", "cs", "nl", "zh"}
    assert path.stat().st_size < 3e6  # a small prefix of wordfreq's ~58 MB
    from_wordfreq = LineTextSampler(charset)
    monkeypatch.setenv(wordlists.WORDLISTS_ENV, str(path))
    from_file = LineTextSampler(charset)
    assert from_file.zh == from_wordfreq.zh and from_file.words.words == from_wordfreq.words.words
    assert _samples(from_file) == _samples(from_wordfreq)


def _write_words(path: Path, bins: list[list[str]], complete: bool) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump({"format": "masterocr-wordlists-1", "langs": {"en": {"bins": bins, "complete": complete}}}, f)
    return path


def test_word_list_file_that_ends_too_soon_or_is_not_one_says_so(tmp_path):
    path = _write_words(tmp_path / "w.json.gz", [["the", "of"], ["and", "1st"], ["cat"]], complete=False)
    top = wordlists.top_words("en", 3, str.isalpha, str(path))  # the third word is in bin 1: bin 2 is not read
    assert top.words == ("the", "of", "and") and top.bins == (0, 0, 1) and top.bins_read == 2
    with pytest.raises(UserError, match="fewer than this charset needs"):
        wordlists.top_words("en", 10, str.isalpha, str(path))
    with pytest.raises(UserError, match="no word list for language 'fr'"):
        wordlists.top_words("fr", 1, str.isalpha, str(path))
    whole = _write_words(tmp_path / "whole.json.gz", [["the"], ["cat"]], complete=True)
    assert wordlists.top_words("en", 10, str.isalpha, str(whole)).words == ("the", "cat")
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(UserError, match="not a readable word list file"):
        wordlists.top_words("en", 1, str.isalpha, str(bad))


def _tiny_font(path: Path, chars: str) -> Path:
    """A TrueType font with a square glyph per character (fontTools' builder), family "Packtest"."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    names = [".notdef"] + [f"g{ord(c):04x}" for c in chars]
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap({ord(c): n for c, n in zip(chars, names[1:])})
    glyphs = {}
    for i, name in enumerate(names):
        pen = TTGlyphPen(None)
        pen.moveTo((100, 0)), pen.lineTo((100, 500 + i)), pen.lineTo((600, 500 + i)), pen.lineTo((600, 0))
        pen.closePath()
        glyphs[name] = pen.glyph()
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({n: (700, 100) for n in names})
    fb.setupHorizontalHeader(ascent=900, descent=-100)
    fb.setupNameTable({"familyName": "Packtest", "styleName": "Regular"})
    fb.setupOS2()
    fb.setupPost()
    fb.save(str(path))
    return path


def test_subset_keeps_the_charset_glyphs_the_notdef_and_the_names(tmp_path):
    pytest.importorskip("fontTools", reason="cutting fonts needs fontTools: pip install 'masterocr[dev]'")
    from fontTools.ttLib import TTFont

    from masterocr.data.synth.fonts import font_name
    from masterocr.data.synth.subset import drawable_chars, face_file, subset_face

    chars = drawable_chars(Charset.from_file(ZH_LATIN))
    assert {"中", "A", "é", " "} <= set(chars) and "，" in chars and "ﬁ" in chars  # NFKC folds them in
    assert "\u0416" not in chars  # Cyrillic: not in the charset, folds into nothing of it
    src = _tiny_font(tmp_path / "full.ttf", "AB中Ж")
    out = subset_face(str(src), "A中", tmp_path)
    cmap = TTFont(out).getBestCmap()
    assert set(cmap) == {ord("A"), ord("中")}
    assert ".notdef" in TTFont(out).getGlyphOrder()
    assert font_name(str(out)) == ("Packtest", "Regular")
    assert face_file("/f/x.ttc#2@700") == ("/f/x.ttc", 2) and face_file("/a@b/x.ttf") == ("/a@b/x.ttf", 0)


def test_sized_config_fits_the_schedule_to_the_steps(tmp_path):
    base = {"lr_scheduler": {"type": "WarmupCosine", "args": {"warmup_steps": 200, "total_steps": 40000}},
            "trainer": {"max_steps": 40000, "auto_resume": True}}
    cfg = sized_config(base, 57, tmp_path, "sized", 15)
    assert cfg["lr_scheduler"]["args"] == {"warmup_steps": 5, "total_steps": 57}
    t = cfg["trainer"]
    assert (t["max_steps"], t["val_step_interval"], t["save_step_interval"], t["auto_resume"]) == (57, 57, 15, False)
    assert base["trainer"]["max_steps"] == 40000  # the given config is left alone


def _tiny_config(tmp_path: Path) -> dict:
    root = write_word_set(tmp_path / "words", ["a", "elephants", "cat", "dog", "on", "mat"])
    data = {"type": "TextDataset", "args": {"txt_file": str(root / "gt.txt"), "img_root": str(root / "images")}}
    return {
        "name": "tiny", "run_id": "tiny", "seed": 3, "distributed": False, "augment": False,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "img_w": 64, "max_len": 12}},
        "train_dataset": data, "val_dataset": data,
        "train_loader": {"args": {"batch_size": 2, "num_workers": 0}},
        "lr_scheduler": {"type": "WarmupCosine", "args": {"warmup_steps": 50, "total_steps": 1000}},
        "trainer": {"epochs": 1000, "max_steps": 1, "save_dir": str(tmp_path / "seed"), "progress": False,
                    "do_validation": True, "val_step_interval": 1000},
    }  # fmt: skip


def test_training_for_seconds_calibrates_then_fills_the_time(tmp_path):
    """With a clock that ticks one second per reading (start, each step, each run's end, the plan), the plan is
    exact whatever the load: 3 calibration steps at 1 s/step, start-up 1 s and validation 1 s kept with 5 s
    for saving, 15 - 5 - 7 = 3 sized steps, whose schedule and step cap are those 3 steps."""
    config = _tiny_config(tmp_path)
    seed = train(run_settings({**config, "trainer": {**config["trainer"], "do_validation": False}}), device="cpu")
    ticks = itertools.count()
    done = train_for_seconds(config, Path(seed["run_dir"]) / "checkpoint-latest.pth", 15.0, tmp_path / "runs",
                             calibrate_steps=3, device="cpu", clock=lambda: float(next(ticks)))
    calib = done["calibration"]
    assert calib["steps"] == 3 and calib["seconds_per_step"] == 1.0 and "edit_acc" in calib["metrics"]
    assert (calib["startup_s"], calib["validate_and_save_s"]) == (1.0, 1.0)
    assert done["planned_steps"] == 3 and done["summary"]["step"] == 3 and done["steps"] == 6
    assert not done["stopped_early"] and "edit_acc" in done["summary"]["metrics"]
    sized = load_checkpoint(done["checkpoint"])
    assert sized["config"]["lr_scheduler"]["args"]["total_steps"] == 3 and sized["config"]["trainer"]["max_steps"] == 3
    assert sized["lines_seen"] == (1 + 3 + 3) * 2  # batch 2; seed, calibration and sized runs counted on


def test_weights_that_come_back_in_parts_join_and_are_checked(tmp_path):
    pack = load_script("gpu_pack")
    data = os.urandom(3000)
    weights = tmp_path / "master_line.safetensors"
    weights.write_bytes(data)
    pack.OUT_FILE_LIMIT = 1024
    names = pack.split_parts(weights)
    assert names == [f"master_line.safetensors.part-0{i}" for i in range(3)] and not weights.exists()
    report = {"weights_files": names, "weights_sha256": hashlib.sha256(data).hexdigest(), "steps": 3,
              "device": "test"}
    (tmp_path / "gpu_run.json").write_text(json.dumps(report))
    for name in ("config.json", "keys.txt"):
        (tmp_path / f"master_line.{name}").write_text("x")
    dest = tmp_path / "back" / "line.safetensors"
    dest.parent.mkdir()
    join = [sys.executable, str(ROOT / "scripts" / "gpu_pack.py"), "join", str(tmp_path), "--to", str(dest)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(join, check=True, env=env)
    assert dest.read_bytes() == data and (dest.parent / "line.keys.txt").is_file()
    (tmp_path / names[1]).write_bytes(b"\0" * 1024)
    bad = subprocess.run(join, capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "sha256 differs" in bad.stderr


def _has_heldout_cjk() -> bool:
    from masterocr.data.synth.cjkfonts import HELDOUT_CJK_DESIGN, find_cjk_fonts

    return HELDOUT_CJK_DESIGN in find_cjk_fonts()


@pytest.mark.slow
def test_a_small_pack_builds_and_trains_for_60_seconds_on_this_cpu(tmp_path):
    """The documented dry run: wheels for this Python from the registry, fonts cut from this machine's (the
    held-out design comes from Debian's fonts-lxgw-wenkai), then the device command with a 60-second budget."""
    if not _has_heldout_cjk():
        pytest.skip("the pack needs the held-out CJK design here: sudo bash scripts/install_fonts.sh")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    pack, out = tmp_path / "pack", tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    script = str(ROOT / "scripts" / "gpu_pack.py")
    subprocess.run([sys.executable, script, "build", "--out", str(pack), "--python", here, "--max-latin", "6",
                    "--max-cjk", "2"], check=True, env=env)
    env.pop(wordlists.WORDLISTS_ENV, None)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, script, "run", *dry_run_args(pack, out)], env=env, capture_output=True,
                          text=True)
    took = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_run.json").read_text())
    assert report["steps"] >= report["calibration"]["steps"] > 0 and report["device"].startswith("cpu")
    assert report["lines_seen"] >= 4 * report["steps"]
    if report["planned_steps"]:  # a loaded CPU can spend the minute on start-up and calibration
        assert report["steps"] > report["calibration"]["steps"] and "edit_acc" in report["last_validation"]
    parts = [out / name for name in report["weights_files"]]
    assert sum(p.stat().st_size for p in parts) > 1e6 and (out / "master_line.keys.txt").is_file()
    assert took < 60 + 15
    shutil.rmtree(pack)


def dry_run_args(pack: Path, out: Path) -> list[str]:
    """The dry run's `run` arguments (docs/lines.md): the CPU recipe, small batches, 8 validation lines."""
    return ["--pack", str(pack), "--out", str(out), "--seconds", "60", "--device", "cpu", "--calibrate-steps",
            "3", "--keep-s", "8", "--config", "configs/line_cpu_ctc.json", "--set",
            "train_loader.args.batch_size=4", "train_loader.args.num_workers=0", "val_dataset.args.length=8",
            "trainer.distill=null"]
