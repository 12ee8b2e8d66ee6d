"""bench/gpu_inference.py on the CPU: the same held-out words as bench/accuracy.py, and every column measured."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from masterocr import Recognizer

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu_inference.py"


def test_measure_on_cpu():
    spec = importlib.util.spec_from_file_location("gpu_inference", BENCH)
    bench = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH.parent))  # it imports bench/accuracy.py as a sibling, as when run as a script
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(BENCH.parent))
    rec = Recognizer.from_checkpoint(None, device="cpu")
    words = bench.synthetic_words(rec, 6, seed=12345, font_dirs=None)
    images, golds = words.images, words.golds
    assert len(images) == 6 and all(golds)
    m = bench.measure(rec, images, golds, batch=3, seconds=0.1, sync=lambda: None)
    assert m["num_labels"] == 6 and 0.0 <= m["word_acc"] <= 1.0
    assert m["img_s"] > 0 and float(m["ms_batch1"]) > 0
