"""ONNX export parity, `masterocr export` + `predict --backend onnx`, conv+BN folding and int8 (tiny preset)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import WORDS, render_word

from masterocr.charset import EOS, SOS, Charset
from masterocr.data.transforms import preprocess
from masterocr.model import build_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

CHARSET = Charset.default()


def _randomize_bn(model):
    """Non-trivial BatchNorm statistics so that folding has something to fold."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)


@torch.inference_mode()
def _eos_margins(model, x, steps):
    """(B, steps): EOS logit minus the best other logit along the EOS-free greedy path."""
    mem_kv = model.memory_kv(model.encode(x))
    tok, cache, out = torch.full((x.size(0), 1), SOS), None, []
    for t in range(steps):
        logits, cache, _ = model.decode_step(tok, mem_kv, cache, t)
        eos = logits[:, EOS].clone()
        logits[:, EOS] = float("-inf")
        out.append(eos - logits.max(-1).values)
        tok = logits.argmax(-1, keepdim=True)
    return torch.stack(out, 1)


def _make_model_with_varied_lengths(words):
    """A random tiny model whose EOS bias is set so that the images end at different steps: with random
    weights the images barely change the logits, so the bias is put between the per-image EOS margins."""
    torch.manual_seed(0)
    model = build_model("tiny", CHARSET).eval()
    _randomize_bn(model)
    x = torch.stack([preprocess(render_word(w), 32, 128, 1) for w in words])
    with torch.no_grad():
        model.generator.bias[EOS] = 0.0
    margins = _eos_margins(model, x, model.cfg.max_len + 1)
    thresholds = np.unique(-margins.numpy().ravel())
    best, best_n = None, 0
    for lo, hi in zip(thresholds[:-1], thresholds[1:]):
        b = float((lo + hi) / 2)
        crossed = (margins + b > 0).numpy()
        lengths = {int(r.argmax()) if r.any() else -1 for r in crossed}
        if len(lengths) > best_n:
            best, best_n = b, len(lengths)
    with torch.no_grad():
        model.generator.bias[EOS] = best
    return model, x


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from masterocr.export.onnx import export_model
    from masterocr.runtime.onnx import OnnxRecognizer

    model, x = _make_model_with_varied_lengths(WORDS[:6])
    out = export_model(model, CHARSET, tmp_path_factory.mktemp("onnx"))
    return model, x, OnnxRecognizer(out)


@pytest.mark.parametrize("rows", [[0], [0, 1, 2], [3, 4, 5]])
def test_onnx_matches_pytorch_tokens_and_probs(exported, rows):
    model, x, rec = exported
    xb = x[rows]
    with torch.inference_mode():
        ref = model.decode(xb)
    tokens, probs = rec.decode_arrays(xb.numpy())
    assert tokens.shape == tuple(ref.tokens.shape)
    np.testing.assert_array_equal(tokens, ref.tokens.numpy())
    np.testing.assert_allclose(probs, ref.probs.numpy(), atol=1e-4)
    texts = [p.text for p in rec.predict_tensors(xb)]
    from masterocr.runtime.torch import Recognizer

    assert texts == [p.text for p in Recognizer(model, CHARSET).predict_tensors(xb)]


def test_batch_of_three_has_different_lengths(exported):
    model, x, rec = exported
    tokens, _ = rec.decode_arrays(x.numpy())
    ends = {(list(r).index(EOS) if EOS in r else -1) for r in tokens.tolist()}
    assert len(ends) >= 2, ends  # the parity tests above then cover PAD masking after EOS


def test_onnx_step_is_a_graph_input_and_fixed_length_decoding_matches(exported):
    model, x, rec = exported
    import onnx

    inputs = {i.name for i in rec.decoder.get_inputs()}
    assert inputs == {"token", "step", "past", "mem_kv"}
    with torch.inference_mode():
        ref = model.decode(x[:2], max_len=7, suppress_eos=True)
    tokens, probs = rec.decode_arrays(x[:2].numpy(), max_len=7, suppress_eos=True)
    np.testing.assert_array_equal(tokens, ref.tokens.numpy())
    np.testing.assert_allclose(probs, ref.probs.numpy(), atol=1e-4)
    assert onnx.load(str(rec.weights_path / "decoder_step.onnx")).opset_import[0].version >= 17


def test_cli_export_then_predict_with_onnx_backend(tmp_path, word_set, capsys):
    from masterocr.cli import main
    from masterocr.formats.weights import save_weights

    torch.manual_seed(0)
    model = build_model("tiny", CHARSET).eval()
    ckpt = tmp_path / "tiny.safetensors"
    save_weights(model.state_dict(), model.cfg.to_dict(), CHARSET.keys, ckpt, dtype=None)
    (word_set / "images" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"encoder.onnx", "decoder_step.onnx", "model.json"}
    meta = json.loads((out / "model.json").read_text())
    assert meta["model_config"]["d_model"] == 64 and meta["charset"]["keys"] == CHARSET.keys
    capsys.readouterr()
    res = tmp_path / "res_onnx"
    rc = main(["predict", "--backend", "onnx", "--checkpoint", str(out), "--img-folder", str(word_set / "images"),
               "--output-folder", str(res), "--batch-size", "5", "--threads", "1"])  # fmt: skip
    assert rc == 0
    onnx_entries = json.loads((res / "predict_result.json").read_text())
    assert len(onnx_entries) == len(WORDS) + 1
    broken = [e for e in onnx_entries if e["filename"] == "broken.png"][0]
    assert broken["result"] is None and broken["error"]
    res_t = tmp_path / "res_torch"
    assert main(["predict", "--checkpoint", str(ckpt), "--img-folder", str(word_set / "images"),
                 "--output-folder", str(res_t), "--batch-size", "5"]) == 0  # fmt: skip
    torch_entries = json.loads((res_t / "predict_result.json").read_text())
    assert [e["result"] for e in onnx_entries] == [e["result"] for e in torch_entries]
    for a, b in zip(onnx_entries, torch_entries):
        if a["pred_score"] is not None:
            assert abs(a["pred_score"] - b["pred_score"]) < 1e-4


def test_onnx_backend_refuses_a_missing_folder(tmp_path, monkeypatch):
    from masterocr import assets
    from masterocr.errors import UserError
    from masterocr.runtime.onnx import OnnxRecognizer

    with pytest.raises(UserError, match="not an exported model folder"):
        OnnxRecognizer.from_path(tmp_path / "nothing")
    monkeypatch.setattr(assets, "WEIGHTS_DIR", tmp_path)  # no checkpoint and no shipped graphs
    with pytest.raises(UserError, match="no shipped ONNX graphs"):
        OnnxRecognizer.from_path(None)


def test_fold_conv_bn_matches_original():
    from masterocr.runtime.fast import fold_conv_bn, optimize

    model, x = _make_model_with_varied_lengths(WORDS[:4])
    folded = fold_conv_bn(model)
    assert folded.folded_conv_bn > 0
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.backbone.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())  # original untouched
    with torch.inference_mode():
        ref = model.decode(x)
        torch.testing.assert_close(folded.backbone(x), model.backbone(x), atol=1e-4, rtol=1e-4)
        for fast in (folded, optimize(model, channels_last=True)):
            out = fast.decode(x)
            assert torch.equal(out.tokens, ref.tokens)
            torch.testing.assert_close(out.probs, ref.probs, atol=1e-4, rtol=0)


def test_int8_decoder_runs_with_same_shapes():
    from masterocr.runtime.fast import optimize

    torch.manual_seed(0)
    model = build_model("tiny", CHARSET).eval()
    x = torch.stack([preprocess(render_word(w), 32, 128, 1) for w in WORDS[:3]])
    q = optimize(model, int8=True)
    assert type(q.generator).__module__.startswith("torch.ao.nn.quantized")
    with torch.inference_mode():
        ref = model.decode(x, max_len=6, suppress_eos=True)
        out = q.decode(x, max_len=6, suppress_eos=True)
    assert out.tokens.shape == ref.tokens.shape == (3, 7)
    assert torch.isfinite(out.probs).all() and (out.probs > 0).all()


def test_cli_predict_int8_and_its_wrong_combinations(tmp_path, capsys):
    from masterocr.cli import main

    samples = Path(__file__).resolve().parents[1] / "samples"
    assert main(["predict", "--int8", "--img-folder", str(samples), "--output-folder", str(tmp_path)]) == 0
    entries = json.loads((tmp_path / "predict_result.json").read_text())
    assert [e["result"] for e in entries if e["filename"] == "real_0142.png"] == ["NOTICE"]
    capsys.readouterr()
    assert main(["predict", "--int8", "--backend", "onnx", "--img-folder", str(samples)]) != 0
    assert "--int8/--dtype apply to the torch backend" in capsys.readouterr().err
    assert main(["predict", "--int8", "--device", "cuda:0", "--img-folder", str(samples)]) != 0
    err = capsys.readouterr().err  # without a GPU the device check (masterocr.devices) speaks first
    want = "int8 inference runs on the CPU only" if torch.cuda.is_available() else "asks for a GPU; available: cpu"
    assert want in err


def test_int8_onnx_export_of_the_shipped_model_reads_the_samples(tmp_path, capsys):
    import onnx

    from masterocr.cli import main
    from masterocr.runtime.onnx import OnnxRecognizer

    out = tmp_path / "int8"
    assert main(["export", "--int8", "--calib-count", "32", "--out", str(out)]) == 0
    ops = {n.op_type for n in onnx.load(str(out / "encoder.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    dec_ops = {n.op_type for n in onnx.load(str(out / "decoder_step.onnx")).graph.node}
    assert dec_ops & {"DynamicQuantizeLinear", "MatMulInteger", "DynamicQuantizeMatMul"}
    assert "int8" in json.loads((out / "model.json").read_text())["quantized"]
    samples = Path(__file__).resolve().parents[1] / "samples"
    preds = OnnxRecognizer(out).predict([samples / "real_0142.png", samples / "real_0120.png"])
    assert [p.text for p in preds] == ["NOTICE", "renard"]


def test_int8_quantization_refuses_bad_inputs(tmp_path):
    from masterocr.errors import UserError
    from masterocr.export.quantize import export_onnx_int8, quantize_exported

    with pytest.raises(UserError, match="not an exported model folder"):
        quantize_exported(tmp_path, tmp_path / "out", np.zeros((1, 1, 32, 128), np.float32))
    (tmp_path / "crops").mkdir()
    (tmp_path / "crops" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match="holds no readable image"):
        export_onnx_int8(None, tmp_path / "out", calib_images=tmp_path / "crops")
    with pytest.raises(UserError, match="does not exist"):
        export_onnx_int8(None, tmp_path / "out", calib_images=tmp_path / "nowhere")
    with pytest.raises(UserError, match="calib-count must be >= 1"):
        export_onnx_int8(None, tmp_path / "out", calib_count=0, calib_images=tmp_path / "crops")


def test_threads_option_sets_onnxruntime_and_torch_threads(exported, tmp_path, capsys):
    from masterocr.cli import main
    from masterocr.runtime.select import load_recognizer

    folder = exported[2].weights_path
    rec = load_recognizer(folder, backend="onnx", threads=1)
    assert rec.encoder.get_session_options().intra_op_num_threads == 1
    assert rec.decoder.get_session_options().intra_op_num_threads == 1
    before = torch.get_num_threads()
    try:
        load_recognizer(None, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    samples = Path(__file__).resolve().parents[1] / "samples"
    capsys.readouterr()
    assert main(["predict", "--threads", "0", "--img-folder", str(samples), "--output-folder", str(tmp_path)]) != 0
    assert "threads must be at least 1, got 0" in capsys.readouterr().err


def test_small_batches_run_the_decoder_step_on_one_thread(exported):
    """Under SMALL_BATCH images the steps go to a one-thread session (faster at batch 1, bench/onnx_threads.py);
    from SMALL_BATCH on to the session with the asked threads; both read the same tokens."""
    from masterocr.runtime.onnx import SMALL_BATCH, OnnxRecognizer

    model, x, default_rec = exported
    rec = OnnxRecognizer(default_rec.weights_path, threads=2)
    assert rec.decoder_small.get_session_options().intra_op_num_threads == 1
    assert rec.decoder.get_session_options().intra_op_num_threads == 2
    one_thread = OnnxRecognizer(default_rec.weights_path, threads=1)
    assert one_thread.decoder_small.get_session_options().intra_op_num_threads == 1

    calls = {"small": 0, "large": 0}

    class Counting:
        def __init__(self, session, key):
            self.session, self.key = session, key

        def run(self, *args, **kwargs):
            calls[self.key] += 1
            return self.session.run(*args, **kwargs)

    rec.decoder_small, rec.decoder = Counting(rec.decoder_small, "small"), Counting(rec.decoder, "large")
    big = x.repeat((SMALL_BATCH + len(x) - 1) // len(x), 1, 1, 1)[:SMALL_BATCH]
    tokens_big, _ = rec.decode_arrays(big.numpy())
    assert calls["large"] > 0 and calls["small"] == 0
    tokens_one, _ = rec.decode_arrays(big[:1].numpy())
    assert calls["small"] > 0
    with torch.inference_mode():
        ref = model.decode(big)
    np.testing.assert_array_equal(tokens_big, ref.tokens.numpy())
    np.testing.assert_array_equal(tokens_one, tokens_big[:1, : tokens_one.shape[1]])


def test_exported_graphs_hold_only_the_positions_they_reach(exported):
    """The 5,000-row positional tables are cut to the memory length and max_len + 1 steps (they were 3.8 MB of
    constants per graph for the medium model); decoding past max_len is refused instead of reading past them."""
    import onnx
    from onnx import numpy_helper

    from masterocr.errors import UserError

    model, x, rec = exported
    for name in ("encoder.onnx", "decoder_step.onnx"):
        graph = onnx.load(str(rec.weights_path / name)).graph
        tensors = [numpy_helper.to_array(t) for t in graph.initializer]
        tensors += [
            numpy_helper.to_array(a.t)
            for n in graph.node
            if n.op_type == "Constant"
            for a in n.attribute
            if a.name == "value"
        ]
        assert max(max(t.shape, default=0) for t in tensors) < 5000, name
    with pytest.raises(UserError, match="more than the exported model's"):
        rec.decode_arrays(x[:1].numpy(), max_len=model.cfg.max_len + 1)
    tokens, _ = rec.decode_arrays(x[:2].numpy(), max_len=model.cfg.max_len, suppress_eos=True)
    with torch.inference_mode():
        ref = model.decode(x[:2], suppress_eos=True)
    np.testing.assert_array_equal(tokens, ref.tokens.numpy())  # the last step reads the last kept position
