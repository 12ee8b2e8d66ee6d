"""Decoding modes between the model and the user: every mode through onnxruntime against PyTorch at two widths
(fp32 and int8 graphs), the mode chosen from Python and the CLI, a mode the model cannot run refused in one
line, and where each character was read, in the original image's pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import render_word
from fixtures import randomize_bn
from PIL import Image

from masterocr import Charset, build_model
from masterocr.charset import EOS
from masterocr.data.transforms import pad_batch
from masterocr.errors import UserError
from masterocr.model import get_preset
from masterocr.model.ctc import greedy_ctc
from masterocr.model.joint import joint_step_bound
from masterocr.runtime.torch import Recognizer

CHARSET = Charset("abcdefgh ")



def _line_model(ctc_weight=0.5, decode="attention"):
    cfg = get_preset("tiny", img_w=512, keep_ratio=True, variable_width=True, max_len=40, ctc_weight=ctc_weight,
                     decode=decode)
    torch.manual_seed(3)
    model = build_model(cfg, CHARSET).eval()
    randomize_bn(model)
    return model


def _lines(width, seed=5):
    g = torch.Generator().manual_seed(seed)
    return pad_batch([torch.rand(1, 32, w, generator=g) * 2 - 1 for w in (width, width // 2 + 2)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from masterocr.export.onnx import export_model

    model = _line_model()
    return model, export_model(model, CHARSET, tmp_path_factory.mktemp("ctc_onnx"))


@pytest.mark.parametrize("mode", ["attention", "ctc", "joint"])
@torch.inference_mode()
def test_onnx_reads_every_mode_like_pytorch_at_two_widths(exported, mode):
    from masterocr.runtime.onnx import OnnxRecognizer

    model, folder = exported
    ort = OnnxRecognizer(folder, threads=1, decode=mode)
    for width in (120, 480):
        batch, widths = _lines(width)
        ref = model.decode(batch, widths=widths, mode=mode)
        out = ort.decode_output(batch.numpy(), widths=widths.numpy())
        assert torch.equal(out.tokens, ref.tokens), (mode, width)
        assert torch.allclose(out.probs.float(), ref.probs.float(), atol=1e-4), (mode, width)
        if mode == "ctc":
            assert torch.equal(out.spans, ref.spans)
            assert (ref.tokens[:, 0] != 0).all()  # a reading to compare, not two empty ones
        else:
            assert out.spans is None


@torch.inference_mode()
def test_the_encoder_graph_outputs_the_ctc_logits_and_model_json_records_the_branch(exported):
    import json

    import onnxruntime as ort

    model, folder = exported
    meta = json.loads((folder / "model.json").read_text())
    assert meta["ctc"] == {"output": "ctc_logits", "frames_per_column": 2, "blank": 0}
    assert meta["model_config"]["ctc_weight"] == 0.5
    sess = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    batch, widths = _lines(200)
    kv, mask, logits = sess.run(None, {"images": batch.numpy(), "widths": widths.numpy()})
    ref = model.ctc_logits(model.encode(batch, widths))
    assert logits.shape == tuple(ref.shape) == (2, 200 // 4 * 2, len(CHARSET))
    assert np.allclose(logits, ref.numpy(), atol=1e-4)


@torch.inference_mode()
def test_int8_graphs_carry_the_ctc_head(exported, tmp_path, monkeypatch):
    from masterocr.export.quantize import quantize_exported
    from masterocr.runtime.onnx import OnnxRecognizer

    monkeypatch.chdir(tmp_path)  # onnxruntime's shape inference leaves temporary files in the working folder
    model, folder = exported
    calibration = (torch.rand(4, 1, 32, 400, generator=torch.Generator().manual_seed(4)) * 2 - 1).numpy()
    int8 = OnnxRecognizer(quantize_exported(folder, tmp_path / "int8", calibration), threads=1, decode="ctc")
    fp32 = OnnxRecognizer(folder, threads=1, decode="ctc")
    batch, widths = _lines(240)
    feeds = {"images": batch.numpy(), "widths": widths.numpy()}
    l32, l8 = fp32.encoder.run(None, feeds)[-1], int8.encoder.run(None, feeds)[-1]
    assert l8.shape == l32.shape and np.abs(l8 - l32).mean() < 0.1 * np.abs(l32).mean()
    frames = widths // 4 * 2
    ctc = int8.decode_output(batch.numpy(), widths=widths.numpy(), mode="ctc")
    assert torch.equal(ctc.tokens, greedy_ctc(torch.from_numpy(l8), frames, 40).tokens)
    joint = int8.decode_output(batch.numpy(), widths=widths.numpy(), mode="joint")
    lengths = (ctc.tokens != 0).sum(1) - 1
    assert ((joint.tokens != 0).sum(1) <= joint_step_bound(lengths) + 1).all()  # bounded by the CTC reading


def test_a_graph_without_the_ctc_output_refuses_ctc_modes(tmp_path):
    pytest.importorskip("onnxruntime")
    from masterocr.export.onnx import export_model
    from masterocr.runtime.onnx import OnnxRecognizer

    folder = export_model(_line_model(0.0), CHARSET, tmp_path / "plain")
    with pytest.raises(UserError, match="needs a CTC branch"):
        OnnxRecognizer(folder, decode="ctc")
    assert OnnxRecognizer(folder).decode == "attention"


def test_the_recognizer_takes_the_mode_from_the_config_or_the_caller():
    model = _line_model(decode="joint")
    assert Recognizer(model, CHARSET).decode == "joint"
    assert Recognizer(model, CHARSET, decode="ctc").decode == "ctc"
    with pytest.raises(UserError, match="not one of attention, ctc, joint"):
        Recognizer(model, CHARSET, decode="beam")
    with pytest.raises(UserError, match="--decode ctc needs a CTC branch.*use --decode attention"):
        Recognizer(_line_model(0.0), CHARSET, decode="ctc")


def _stretched(text: str, factor: float) -> Image.Image:
    """A rendered line resized by `factor`: its characters' ranges must scale with it."""
    img = render_word(text)
    img = img.resize((round(img.width * 32 / img.height), 32))  # at the model's height: read as it is
    # nearest-neighbour blocks, which the model's resize to its height averages back to the same pixels
    return img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.NEAREST)


@pytest.mark.parametrize("mode", ["ctc", "attention", "joint"])
def test_characters_are_located_in_the_original_image(mode):
    rec = Recognizer(_line_model(), CHARSET, decode=mode)
    small, big = _stretched("abc fed gah", 1.0), _stretched("abc fed gah", 3.0)
    for img in (small, big):
        (pred,) = rec.predict([img], return_locations=True)
        assert pred.char_ranges is not None and len(pred.char_ranges) == len(pred.text)
        for x0, x1 in pred.char_ranges:
            assert 0 <= x0 < x1 <= img.width
        if mode == "ctc":  # CTC frames are left to right
            assert [r[0] for r in pred.char_ranges] == sorted(r[0] for r in pred.char_ranges)
    # the same line three times larger: the same input, ranges three times wider in the image's pixels
    a, b = (rec.predict([img], return_locations=True)[0] for img in (small, big))
    # a random-weight model reads the two near-ties apart now and then: compare the common prefix
    n = next((i for i, (x, y) in enumerate(zip(a.text, b.text)) if x != y), min(len(a.text), len(b.text)))
    assert n >= 5, (a.text, b.text)
    scale = big.width / small.width
    assert np.allclose(np.array(b.char_ranges[:n]), np.array(a.char_ranges[:n]) * scale, atol=3 * scale)
    assert rec.predict([small])[0].char_ranges is None  # only when asked


def test_ctc_character_ranges_are_their_frames():
    rec = Recognizer(_line_model(), CHARSET, decode="ctc")
    img = render_word("abcdefgh")
    x = rec.preprocess(img)
    batch, widths = pad_batch([x])
    out = rec.model.decode(batch, widths=widths, mode="ctc")
    pred = rec.predict_tensors(batch, widths=widths)[0]
    tokens = out.tokens[0].tolist()
    n = tokens.index(EOS)  # the text ends at the first EOS (a random branch's frames can pick EOS mid-line)
    assert n == len(pred.text) and n > 3
    assert pred.char_ranges == [[2 * a, 2 * b + 2] for a, b in out.spans[0, :n].tolist()]


def test_onnx_backend_locates_characters_in_ctc_mode_only(exported):
    from masterocr.runtime.onnx import OnnxRecognizer

    _, folder = exported
    img = render_word("abc fed")
    (pred,) = OnnxRecognizer(folder, decode="ctc").predict([img], return_locations=True)
    assert pred.char_ranges is not None and len(pred.char_ranges) == len(pred.text)
    with pytest.raises(UserError, match="locates characters in ctc decoding only"):
        OnnxRecognizer(folder, decode="joint").predict([img], return_locations=True)


def test_cli_decode_option_reads_and_refuses_a_mode_the_model_cannot_run(tmp_path, capsys):
    from masterocr.cli import main
    from masterocr.formats.checkpoint import atomic_save

    def save_checkpoint(path, model, charset):
        atomic_save({"model_state_dict": model.state_dict(), "model_config": model.cfg.to_dict(),
                     "charset": {"keys": charset.keys, "case_sensitive": True}}, path)

    folder = tmp_path / "imgs"
    folder.mkdir()
    render_word("abc").save(folder / "a.png")
    plain = tmp_path / "plain.pth"
    save_checkpoint(plain, _line_model(0.0), CHARSET)
    code = main(["predict", "--checkpoint", str(plain), "--img-folder", str(folder), "--output-folder",
                 str(tmp_path / "out"), "--decode", "ctc", "--backend", "torch"])
    err = capsys.readouterr().err
    assert code != 0 and "--decode ctc needs a CTC branch" in err and "Traceback" not in err
    ctc = tmp_path / "ctc.pth"
    save_checkpoint(ctc, _line_model(), CHARSET)
    code = main(["predict", "--checkpoint", str(ctc), "--img-folder", str(folder), "--output-folder",
                 str(tmp_path / "out"), "--decode", "ctc", "--backend", "torch"])
    assert code == 0 and (tmp_path / "out" / "predict_result.json").exists()


@pytest.mark.parametrize("mode", ["ctc", "joint"])
def test_the_server_returns_where_each_character_was_read_when_asked(mode):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    import io

    from fastapi.testclient import TestClient

    from masterocr.serve.app import create_app

    rec = Recognizer(_line_model(), CHARSET, decode=mode)
    img = _stretched("abc fed gah", 2.0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    files = [("file", ("l.png", buf.getvalue(), "image/png")), ("file", ("bad.png", b"not an image", "image/png"))]
    with TestClient(create_app(rec, max_wait_ms=5)) as client:
        plain = client.post("/v1/recognize", files=files).json()["results"]
        placed = client.post("/v1/recognize?locations=true", files=files).json()["results"]
    assert "char_ranges" not in plain[0] and "attention" not in placed[0]  # maps only with attention=true
    entry = placed[0]
    assert entry["text"] == plain[0]["text"]
    expected = rec.predict([img], return_locations=True)[0].char_ranges
    assert entry["char_ranges"] == expected and len(expected) == len(entry["text"])
    assert all(0 <= a < b <= img.width for a, b in entry["char_ranges"])
    assert placed[1]["error"] and placed[1]["char_ranges"] is None  # every entry has the same fields


def test_predict_test_and_serve_take_the_decode_option():
    from masterocr.cli import build_parser

    parser = build_parser()
    for argv in (["predict", "--img-folder", "x"], ["test", "--data-root", "x"], ["serve"]):
        assert parser.parse_args([*argv, "--decode", "joint"]).decode == "joint"
        assert parser.parse_args(argv).decode is None  # the model's own mode
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--decode", "beam"])


def test_torch_int8_quantizes_the_ctc_branch_and_reads_like_fp32():
    from masterocr.runtime.fast import optimize

    model = _line_model()
    images, widths = _lines(256)
    q = optimize(model, int8=True)
    assert "quantized" in type(q.ctc.classifier).__module__  # the classifier over the charset runs in int8
    fp32 = model.decode(images, widths=widths, mode="ctc").tokens
    assert torch.equal(q.decode(images, widths=widths, mode="ctc").tokens, fp32)
