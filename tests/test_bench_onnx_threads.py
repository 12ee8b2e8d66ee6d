"""bench/onnx_threads.py on a tiny exported model: its readers differ only in the decoder session's threads."""

from __future__ import annotations

import numpy as np
import torch
from conftest import BENCH, load_script

from masterocr.charset import Charset
from masterocr.export.onnx import export_model
from masterocr.model import build_model, get_preset


def test_readers_and_table(tmp_path):
    bench = load_script("onnx_threads", BENCH)
    torch.manual_seed(0)
    charset = Charset.default()
    folder = export_model(build_model(get_preset("tiny", max_len=5), charset).eval(), charset, tmp_path / "onnx")
    reads = bench.readers(folder, threads=2)
    assert list(reads) == ["dec 1", "dec 2", "auto"]
    threads = {name: r.decoder.get_session_options().intra_op_num_threads for name, r in reads.items()}
    assert threads == {"dec 1": 1, "dec 2": 2, "auto": 2}
    batch = np.random.default_rng(0).random((6, 1, 32, 128), dtype=np.float32)
    tokens = [r.decode_arrays(batch)[0] for r in reads.values()]
    assert all(np.array_equal(t, tokens[0]) for t in tokens)
    rows = bench.measure(reads, batch, [1, 3], reps=1)
    assert [name for name, _ in rows] == ["batch 1", "batch 3"]
    assert all(float(v) > 0 for _, row in rows for v in row.values())
