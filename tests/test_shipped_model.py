"""The shipped model: safetensors (no pickle) with its config and charset, read by Recognizer() out of the box."""

import json
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

from masterocr import Recognizer
from masterocr.assets import DEFAULT_WEIGHTS_NAME, SHIPPED_ONNX_NAME, WEIGHTS_DIR, default_weights_path, shipped_model
from masterocr.data.labels import read_labels

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
# the bundled crops the shipped model reads exactly (see weights/MODEL_CARD.md for the full table)
SMALL = WEIGHTS_DIR / "master_small.safetensors"  # shipped beside the default: 2.6x fewer parameters, faster
EXPECTED_SMALL = {"real_0079.png": "unambiguously", "real_0120.png": "renard", "real_0142.png": "NOTICE"}
EXPECTED = {"001.jpg": "BEACH", **EXPECTED_SMALL}  # the default model also reads the original's BEACH


def test_shipped_weights_are_safetensors_with_config_and_charset():
    shipped = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    assert default_weights_path() in shipped and SMALL in shipped
    words = [path for path in shipped if path != shipped_model("line")]  # the line model: its own tests
    assert sum(path.stat().st_size for path in words) < 15e6
    for path in words:
        with path.open("rb") as f:  # a JSON header, then raw tensors: nothing to unpickle
            json.loads(f.read(int.from_bytes(f.read(8), "little")))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        assert json.loads(meta["model_config"])["d_model"] > 0
        assert len(json.loads(meta["charset"])["keys"]) == 95


def test_recognizer_with_no_arguments_reads_the_bundled_samples():
    rec = Recognizer()
    labels = read_labels(SAMPLES / "labels.jsonl")
    preds = rec.predict([SAMPLES / name for name in EXPECTED])
    assert {name: p.text for name, p in zip(EXPECTED, preds)} == EXPECTED
    assert all(EXPECTED[n] == labels[n] for n in EXPECTED)
    assert all(0.0 < p.score <= 1.0 and len(p.char_scores) == len(p.text) for p in preds)


def test_demo_prints_text_and_scores_for_the_samples():
    out = subprocess.run([sys.executable, "-m", "masterocr.demo"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for name, text in EXPECTED.items():
        assert any(line.startswith(name) and f" {text} " in line for line in out.stdout.splitlines())
    assert DEFAULT_WEIGHTS_NAME in out.stdout


def test_the_smaller_faster_model_still_reads_the_samples():
    rec = Recognizer.from_checkpoint(SMALL)
    assert rec.cfg.d_model < Recognizer().cfg.d_model
    preds = rec.predict([SAMPLES / name for name in EXPECTED_SMALL])
    assert {name: p.text for name, p in zip(EXPECTED_SMALL, preds)} == EXPECTED_SMALL


def test_int8_recognizer_reads_the_samples_like_fp32():
    rec = Recognizer.from_checkpoint(None, int8=True)
    assert rec.variant == "int8"
    preds = rec.predict([SAMPLES / name for name in EXPECTED])
    assert {name: p.text for name, p in zip(EXPECTED, preds)} == EXPECTED


def test_bf16_recognizer_reads_the_samples_and_fp16_needs_a_gpu():
    import pytest

    from masterocr.errors import UserError

    rec = Recognizer.from_checkpoint(None, dtype="bf16")
    preds = rec.predict([SAMPLES / name for name in EXPECTED], return_attention=True)
    assert {name: p.text for name, p in zip(EXPECTED, preds)} == EXPECTED
    assert all(isinstance(p.score, float) and len(p.attention) == len(p.text) for p in preds)
    with pytest.raises(UserError, match="needs a GPU"):
        Recognizer.from_checkpoint(None, dtype="fp16")
    with pytest.raises(UserError, match="not one of"):
        Recognizer.from_checkpoint(None, dtype="int4")
    with pytest.raises(UserError, match="not both"):
        Recognizer.from_checkpoint(None, int8=True, dtype="bf16")


def test_cli_test_reports_every_lmdb_under_a_root_for_torch_int8_and_onnx(tmp_path, capsys):
    from masterocr.cli import main

    root = tmp_path / "evaluation"
    for name in ("set_a", "nested/set_b"):
        assert main(["lmdb", "--labels", str(SAMPLES / "labels.jsonl"), "--img-root", str(SAMPLES),
                     "--out", str(root / name)]) == 0  # fmt: skip
    capsys.readouterr()
    exported = tmp_path / "onnx"
    assert main(["export", "--out", str(exported)]) == 0
    capsys.readouterr()
    results = {}
    for extra in ([], ["--backend", "torch"], ["--int8"], ["--backend", "onnx", "--checkpoint", str(exported)]):
        assert main(["test", "--data-root", str(root), "--json", *extra]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert set(rows) == {"set_a", "nested/set_b", "total"}
        assert rows["total"]["num_labels"] == 10 and rows["set_a"]["num_labels"] == 5
        results[" ".join(extra[:2])] = rows["set_a"]["word_acc"]
    # each runtime scores what the plain Recognizer reads exactly (at least the EXPECTED crops)
    labels = read_labels(SAMPLES / "labels.jsonl")
    preds = Recognizer().predict([SAMPLES / n for n in labels])
    exact = sum(p.text == gold for p, gold in zip(preds, labels.values())) / len(labels)
    assert exact >= len(EXPECTED) / len(labels)
    assert results == {"": exact, "--backend torch": exact, "--int8": exact, "--backend onnx": exact}


def test_cached_fast_path_growing_cache_and_full_recompute_agree_on_trained_weights():
    """The three greedy decoders on the shipped model, one batch of every bundled sample (mixed lengths)."""
    import torch

    rec = Recognizer()
    names = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in {".png", ".jpg"})
    batch = torch.stack([rec.preprocess(SAMPLES / n) for n in names])
    fast = rec.model.decode(batch)  # preallocated key/value buffers
    grow = rec.model.decode(batch, return_attention=True)  # keys/values concatenated step by step
    full = rec.model.decode(batch, use_cache=False)
    lengths = {int((row != 0).sum()) for row in fast.probs}
    assert len(lengths) > 1, "the samples should decode to different lengths"
    for other in (grow, full):
        assert torch.equal(fast.tokens, other.tokens)
        assert torch.allclose(fast.probs, other.probs, atol=1e-5)


def test_weights_saved_before_the_fused_projections_still_load():
    """Checkpoints with separate q/k/v projections (masterocr 0.1.0) load into the fused layers unchanged."""
    import torch
    from _robust_util import legacy_state_dict

    rec = Recognizer()
    legacy = legacy_state_dict(rec.model.state_dict())
    assert any(".self_attn.q_proj." in k for k in legacy) and not any(".qkv." in k for k in legacy)
    model = type(rec.model)(rec.model.cfg, rec.model.num_classes)
    model.load_state_dict(legacy)  # strict: every fused key is filled, no legacy key is left over
    for a, b in zip(model.state_dict().values(), rec.model.state_dict().values()):
        assert torch.equal(a, b)


def test_shipped_onnx_graphs_are_of_the_shipped_weights_and_read_the_samples(monkeypatch):
    """weights/master_medium_int8 (scripts/ship_onnx.py) is what `--backend onnx` reads with no checkpoint."""
    import hashlib

    import pytest

    pytest.importorskip("onnxruntime")
    from masterocr.errors import UserError
    from masterocr.runtime.onnx import OnnxRecognizer
    from masterocr.runtime.select import load_recognizer

    folder = WEIGHTS_DIR / SHIPPED_ONNX_NAME
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    weights = default_weights_path()
    assert meta["source"] == weights.name
    assert meta["source_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest(), (
        "the shipped ONNX graphs are stale: run python scripts/ship_onnx.py"
    )
    assert "int8" in meta["quantized"]
    # the word models' own budget; the line model's is the whole folder's 45 MB (test_shipped_line_model.py)
    words = [path for path in WEIGHTS_DIR.glob("*.safetensors") if path != shipped_model("line")]
    assert sum(path.stat().st_size for path in [*words, *folder.iterdir()]) < 30e6
    rec = load_recognizer(None, backend="onnx")
    assert isinstance(rec, OnnxRecognizer) and rec.weights_path == folder
    preds = rec.predict([SAMPLES / name for name in EXPECTED])
    assert {name: p.text for name, p in zip(EXPECTED, preds)} == EXPECTED
    monkeypatch.setenv("MASTEROCR_WEIGHTS", str(SMALL))  # another default model: its graphs are not shipped
    with pytest.raises(UserError, match="MASTEROCR_WEIGHTS is set"):
        load_recognizer(None, backend="onnx")


def test_ship_onnx_records_the_source_by_name_and_hash(tmp_path):
    import hashlib

    import pytest

    pytest.importorskip("onnxruntime")
    from conftest import load_script

    from masterocr.runtime.onnx import OnnxRecognizer

    out = load_script("ship_onnx").ship(SMALL, tmp_path / "small_int8")
    meta = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert meta["source"] == SMALL.name and meta["source_sha256"] == hashlib.sha256(SMALL.read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small_int8"]  # the staging folder is gone
    preds = OnnxRecognizer(out).predict([SAMPLES / name for name in EXPECTED_SMALL])
    assert {name: p.text for name, p in zip(EXPECTED_SMALL, preds)} == EXPECTED_SMALL


def test_predict_reads_with_the_shipped_onnx_graphs_by_default_and_skips_label_files(tmp_path, capsys):
    """`masterocr predict` with no backend or checkpoint: "auto" picks the shipped int8 graphs (onnxruntime is
    installed here), says so, and reads the samples as the PyTorch model does; labels.jsonl and SOURCES.md are
    skipped, not listed as unreadable images."""
    import pytest

    pytest.importorskip("onnxruntime")
    from masterocr.cli import main

    assert main(["predict", "--img-folder", str(SAMPLES), "--output-folder", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "backend auto: the shipped int8 ONNX graphs" in captured.err
    entries = json.loads((tmp_path / "predict_result.json").read_text(encoding="utf-8"))
    read = {e["filename"]: e["result"] for e in entries}
    assert set(read) == {p.name for p in SAMPLES.iterdir() if p.suffix in {".png", ".jpg"}}
    assert {name: read[name] for name in EXPECTED} == EXPECTED
    assert main(["predict", "--backend", "torch", "--img-folder", str(SAMPLES), "--output-folder", str(tmp_path)]) == 0
    assert "backend auto" not in capsys.readouterr().err
    torch_read = {e["filename"]: e["result"] for e in json.loads((tmp_path / "predict_result.json").read_text())}
    assert torch_read == read


def test_auto_backend_is_torch_unless_the_shipped_graphs_are_the_model_asked_for(monkeypatch):
    import importlib.util

    import pytest

    from masterocr.runtime.select import resolve_backend

    pytest.importorskip("onnxruntime")
    assert resolve_backend("auto", None, "cpu", False, "fp32") == "onnx"
    import masterocr

    fast = masterocr.load_recognizer(backend="auto")  # the public API's way to the same graphs
    assert fast.backend == "onnxruntime" and fast.weights_path.name == "master_medium_int8"
    assert resolve_backend("auto", SMALL, "cpu", False, "fp32") == "torch"  # another model
    assert resolve_backend("auto", None, "cpu", True, "fp32") == "torch"  # --int8 is a torch option
    assert resolve_backend("auto", None, "cpu", False, "bf16") == "torch"
    assert resolve_backend("auto", None, "cuda:0", False, "fp32") == "torch"
    assert resolve_backend("torch", None, "cpu", False, "fp32") == "torch"
    assert resolve_backend("onnx", SMALL, "cpu", False, "fp32") == "onnx"  # an explicit choice passes through
    with monkeypatch.context() as m:
        m.setenv("MASTEROCR_WEIGHTS", str(SMALL))  # the shipped graphs are not of that model
        assert resolve_backend("auto", None, "cpu", False, "fp32") == "torch"
    with monkeypatch.context() as m:
        m.setattr("masterocr.assets.WEIGHTS_DIR", Path("/nonexistent"))  # a checkout without them
        assert resolve_backend("auto", None, "cpu", False, "fp32") == "torch"
    assert resolve_backend("auto", None, "cpu", False, "fp32") == "onnx"
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a)
    )
    assert resolve_backend("auto", None, "cpu", False, "fp32") == "torch"  # a plain install: no onnxruntime
