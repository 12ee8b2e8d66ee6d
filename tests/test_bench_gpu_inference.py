"""bench/gpu_inference.py on the CPU: the same held-out words as bench/accuracy.py, and every column measured."""

from __future__ import annotations

from conftest import BENCH, load_script

from masterocr import Recognizer


def test_measure_on_cpu():
    bench = load_script("gpu_inference", BENCH)  # it imports bench/accuracy.py as a sibling
    rec = Recognizer.from_checkpoint(None, device="cpu")
    words = bench.synthetic_words(rec, 6, seed=12345, font_dirs=None)
    images, golds = words.images, words.golds
    assert len(images) == 6 and all(golds)
    m = bench.measure(rec, images, golds, batch=3, seconds=0.1, sync=lambda: None)
    assert m["num_labels"] == 6 and 0.0 <= m["word_acc"] <= 1.0
    assert m["img_s"] > 0 and float(m["ms_batch1"]) > 0
