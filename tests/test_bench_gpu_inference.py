"""bench/gpu_inference.py on the CPU: the same held-out words as bench/accuracy.py, and every column measured."""

from __future__ import annotations

from conftest import BENCH, load_script

from masterocr import Recognizer


def test_measure_on_cpu():
    bench = load_script("gpu_inference", BENCH)
    rec = Recognizer.from_checkpoint(None, device="cpu")
    images, golds = bench.heldout_words(rec, 6, seed=12345, font_dirs=None)
    assert len(images) == 6 and all(golds)
    m = bench.measure(rec, images, golds, batch=3, seconds=0.1, sync=lambda: None)
    assert m["num_labels"] == 6 and 0.0 <= m["word_acc"] <= 1.0
    assert m["img_s"] > 0 and float(m["ms_batch1"]) > 0


def test_the_benchmarks_read_the_same_held_out_words():
    """gpu_inference's rows compare with bench/accuracy.py's only while both render the same words."""
    rec = Recognizer()
    words = load_script("accuracy", BENCH).synthetic_words(rec, 5, seed=12345)
    images, golds = load_script("gpu_inference", BENCH).heldout_words(rec, 5, seed=12345)
    assert golds == words.golds
    assert [im.tobytes() for im in images] == [im.tobytes() for im in words.images]
