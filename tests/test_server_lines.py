"""The server reads a line model: lines of different widths in one request, each read as it is alone, with its
own attention maps (rows x its columns) for the page."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

import torch  # noqa: E402
from conftest import render_word  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from masterocr.charset import Charset  # noqa: E402
from masterocr.data.transforms import pad_batch  # noqa: E402
from masterocr.model import build_model, get_preset  # noqa: E402
from masterocr.model.backbone import Backbone  # noqa: E402
from masterocr.runtime.torch import Recognizer  # noqa: E402
from masterocr.serve.app import create_app  # noqa: E402


def _png(text: str) -> bytes:
    buf = io.BytesIO()
    render_word(text).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def line_rec() -> Recognizer:
    torch.manual_seed(0)
    cfg = replace(get_preset("tiny"), img_w=512, keep_ratio=True, variable_width=True, max_len=12)
    return Recognizer(build_model(cfg, Charset.default()), Charset.default())


def test_lines_of_different_widths_read_as_alone(line_rec):
    texts = ["a", "a longer line of text", "mid line"]
    blobs = [_png(t) for t in texts]
    with TestClient(create_app(line_rec, max_wait_ms=50)) as client:
        r = client.post("/v1/recognize?attention=true",
                        files=[("file", (f"l{i}.png", b, "image/png")) for i, b in enumerate(blobs)])
        too_wide = client.post("/v1/recognize", files=[("file", ("wide.png", _png("x" * 200), "image/png"))])
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    rows = line_rec.cfg.img_h // 8
    for blob, entry in zip(blobs, results):
        tensor = line_rec.preprocess(blob)
        batch, widths = pad_batch([tensor])
        alone = line_rec.predict_tensors(batch, return_attention=True, widths=widths)[0]
        assert entry["text"] == alone.text
        # the line's own maps: the same attention as when it is read alone, the batch's padding cut away
        assert torch.allclose(torch.tensor(entry["attention"]), torch.tensor(alone.attention), atol=1e-4)
        cols = int(Backbone.output_widths(torch.tensor([tensor.size(-1)]))[0])
        assert all(len(row) == rows * cols for row in entry["attention"])  # this line's own columns only
    assert too_wide.status_code == 200 and "over its maximum" in too_wide.json()["results"][0]["error"]
