"""bench/lines.py end to end on rendered lines: its tables print, its JSON holds the scores (no ../shared)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import BENCH
from fixtures import render_word

from masterocr.charset import Charset
from masterocr.export.onnx import export_onnx
from masterocr.formats.weights import save_weights
from masterocr.metrics import normalize_line
from masterocr.model import build_model, get_preset
from masterocr.runtime.torch import Recognizer

# one sentence per length bucket but the longest: 9, 37 and 61 characters
SENTENCES = [
    "the cat 9",
    "A line of text, read as one crop: 42.",
    "Attention decoders trained on short words fail on long lines.",
]
TINY_LINE = get_preset(
    "line", widths=(8, 16, 32, 32, 64, 64), blocks=(1, 1, 1, 1), d_model=64, nhead=4, d_ff=256,
    num_decoder_layers=2, img_w=800, gca_headers=2,
)  # fmt: skip


def _line_set(root: Path) -> Path:
    (root / "latin" / "images").mkdir(parents=True)
    rows = []
    for i, text in enumerate(SENTENCES):
        render_word(text).save(root / "latin" / "images" / f"l{i}.png")
        rows.append(json.dumps({"ImageFile": f"l{i}.png", "Label": text}))
    (root / "latin" / "labels.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def _tiny_line_model(path: Path, ctc_weight: float = 0.0) -> Path:
    """An untrained variable-width model: what it reads does not matter, that the bench reads with it does."""
    torch.manual_seed(0)
    charset = Charset.default()
    model = build_model(replace(TINY_LINE, ctc_weight=ctc_weight), charset)
    save_weights(model.state_dict(), model.cfg.to_dict(), charset.keys, path, dtype=None)
    return path


@pytest.mark.slow
def test_bench_lines_prints_tables_and_writes_scores_for_the_word_and_a_line_model(tmp_path):
    root = _line_set(tmp_path / "lines")
    ckpt = _tiny_line_model(tmp_path / "tiny_line.safetensors")
    out_json = tmp_path / "out.json"
    cmd = [sys.executable, str(BENCH / "lines.py"), "--lines-dir", str(root), "--sets", "latin", "--peers", "none"]
    onnx_dir = export_onnx(ckpt, tmp_path / "tiny_line_onnx")
    cmd += ["--line-checkpoint", str(ckpt), "--json", str(out_json), "--line-onnx", str(onnx_dir)]
    cmd += ["--model", "word", "--model", "line", "--model", "line-onnx"]
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "latin: 3 lines" in out and "line_acc" in out and "lines/s_b32" in out
    assert "lines per bucket: 1-25: 1, 26-50: 1, 51-100: 1" in out
    assert "masterocr word (shipped)" in out and "masterocr line (tiny_line.safetensors)" in out
    assert "load average" in out

    report = json.loads(out_json.read_text(encoding="utf-8"))
    word = report["sets"]["latin"]["readers"]["masterocr word (shipped)"]
    # the scores are those of the predictions it recorded, recomputed here from the shipped word model
    preds = [p.text for p in Recognizer().predict([root / "latin" / "images" / f"l{i}.png" for i in range(3)])]
    assert word["preds"] == preds
    assert word["acc"] == sum(normalize_line(p) == s for p, s in zip(preds, SENTENCES)) / 3
    assert set(word["buckets"]) == {"1-25", "26-50", "51-100"}
    assert word["lines_per_s_b32"] > 0 and word["ms_per_line_b1"] > 0
    line = report["sets"]["latin"]["readers"]["masterocr line (tiny_line.safetensors)"]
    assert len(line["preds"]) == 3 and 0 <= line["cer"]
    # each reader keeps its own row (the labels once shared one late-bound name)
    onnx = report["sets"]["latin"]["readers"]["masterocr line onnx (tiny_line_onnx)"]
    assert len(onnx["preds"]) == 3 and "masterocr line onnx (tiny_line_onnx)" in out


def test_bench_lines_reads_the_line_model_in_each_decoding_mode_asked(tmp_path):
    root = _line_set(tmp_path / "lines")
    ckpt = _tiny_line_model(tmp_path / "ctc_line.safetensors", ctc_weight=0.5)
    out_json = tmp_path / "out.json"
    cmd = [sys.executable, str(BENCH / "lines.py"), "--lines-dir", str(root), "--sets", "latin", "--peers", "none",
           "--model", "line", "--line-checkpoint", str(ckpt), "--line-decode", "ctc,attention",
           "--line-window", "256", "--json", str(out_json)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    readers = json.loads(out_json.read_text(encoding="utf-8"))["sets"]["latin"]["readers"]
    assert set(readers) == {"masterocr line (ctc_line.safetensors, ctc)",
                            "masterocr line (ctc_line.safetensors, attention)",
                            "masterocr line (ctc_line.safetensors, ctc, windows 256)",
                            "masterocr line (ctc_line.safetensors, attention, windows 256)"}
    assert all(len(r["preds"]) == 3 for r in readers.values())


def test_bench_lines_says_which_folder_is_missing(tmp_path):
    cmd = [sys.executable, str(BENCH / "lines.py"), "--lines-dir", str(tmp_path), "--sets", "latin"]
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0
    assert f"{tmp_path / 'latin' / 'labels.jsonl'} not found" in proc.stderr
    assert "Traceback" not in proc.stderr
