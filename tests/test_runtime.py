"""One recognizer interface: both backends are BaseRecognizers that carry their weights' path and variant;
the folder rule; conv+BN folding asks each block; the export-safe model is built, not patched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from masterocr.assets import SHIPPED_MODELS, default_weights_path, shipped_model, shipped_onnx
from masterocr.charset import Charset
from masterocr.data.folders import list_image_files
from masterocr.errors import UserError
from masterocr.formats.load import strip_prefixes
from masterocr.model import build_model
from masterocr.model.backbone import BasicBlock, ConvBN, MultiAspectGCA, fuse_model
from masterocr.runtime.base import BaseRecognizer
from masterocr.runtime.select import load_recognizer
from masterocr.runtime.torch import Recognizer
from masterocr.samples import path as sample_path

SAMPLE_WORD = sample_path("001.jpg")


def test_shipped_models_are_chosen_by_name():
    assert shipped_model("word") == default_weights_path() and shipped_model().exists()
    assert shipped_onnx("word").is_dir() and set(SHIPPED_MODELS) >= {"word"}
    with pytest.raises(UserError, match="no shipped model 'nope'"):
        shipped_model("nope")


@pytest.mark.parametrize(("int8", "dtype", "variant"), [(False, "fp32", "fp32"), (True, "fp32", "int8"),
                                                         (False, "bf16", "bf16")])  # fmt: skip
def test_torch_recognizer_carries_its_weights_path_and_variant(int8, dtype, variant):
    rec = Recognizer.from_checkpoint(None, int8=int8, dtype=dtype)
    assert isinstance(rec, BaseRecognizer) and rec.backend == "torch"
    assert rec.weights_path == default_weights_path() and rec.variant == variant


def test_onnx_recognizer_carries_its_folder_and_variant():
    pytest.importorskip("onnxruntime")
    rec = load_recognizer(None, backend="onnx")
    assert isinstance(rec, BaseRecognizer) and rec.backend == "onnxruntime"
    assert rec.weights_path == shipped_onnx() and rec.variant == "onnx-int8"
    with pytest.raises(UserError, match="does not return attention maps"):
        rec.predict([], return_attention=True)


def test_in_memory_model_has_no_weights_path():
    rec = Recognizer(build_model("tiny", Charset.default()), Charset.default())
    assert rec.weights_path is None and rec.variant == "fp32"


def test_list_image_files_skips_label_files_and_hidden_ones(tmp_path: Path):
    for name in ("b.png", "a.jpg", "labels.jsonl", "gt.txt", "notes.MD", ".hidden.png", "odd.bin"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    images, skipped = list_image_files(tmp_path)
    assert [p.name for p in images] == ["a.jpg", "b.png", "odd.bin"]  # an unknown suffix is read (and reported)
    assert [p.name for p in skipped] == ["gt.txt", "labels.jsonl", "notes.MD"]


def test_fuse_model_asks_every_block_and_leaves_no_batchnorm():
    torch.manual_seed(0)
    model = build_model("tiny", Charset.default()).eval()
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, ConvBN))]
    x = torch.rand(2, 1, 32, 128)
    with torch.no_grad():
        ref = model.backbone(x)
        folded = fuse_model(model)
        out = model.backbone(x)
    assert folded == sum(2 if isinstance(b, BasicBlock) else 1 for b in blocks)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_exportable_model_is_built_with_static_gca_and_short_tables():
    cs = Charset.default()
    model = build_model("tiny", cs, exportable=True)
    assert all(m.static_shapes for m in model.modules() if isinstance(m, MultiAspectGCA))
    assert len(model.memory_pos.pe) == model.cfg.memory_len and len(model.token_pos.pe) == model.cfg.max_len + 1
    plain = build_model("tiny", cs)
    assert not any(m.static_shapes for m in plain.modules() if isinstance(m, MultiAspectGCA))
    assert model.state_dict().keys() == plain.state_dict().keys()


def test_strip_prefixes_takes_off_ddp_and_compile_wrappers():
    t = torch.zeros(1)
    assert strip_prefixes({"module._orig_mod.a": t, "_orig_mod.b": t, "c": t}).keys() == {"a", "b", "c"}


def test_models_by_name():
    assert Recognizer("word").weights_path == shipped_model("word")
    assert load_recognizer(model="word", backend="torch").weights_path == shipped_model("word")
    with pytest.raises(UserError, match="no shipped model 'nope'"):
        Recognizer("nope")
    with pytest.raises(UserError, match="pass one"):
        load_recognizer(checkpoint=str(shipped_model("word")), model="line")


def test_a_release_without_a_model_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    from masterocr import assets
    from masterocr.cli import main

    monkeypatch.setattr(assets, "WEIGHTS_DIR", tmp_path / "weights")
    for make in (lambda: Recognizer("line"), lambda: load_recognizer(model="line", backend="auto")):
        with pytest.raises(UserError, match="'line' model is not shipped.*--checkpoint"):
            make()
    shutil.copy(SAMPLE_WORD, tmp_path / "word.jpg")  # something to read: the missing model is what is said
    assert main(["predict", "--img-folder", str(tmp_path), "--model", "line"]) != 0
    assert "'line' model is not shipped" in capsys.readouterr().err


def test_line_weights_without_their_int8_graphs_say_how_to_make_them(tmp_path, monkeypatch):
    from masterocr import assets

    monkeypatch.setattr(assets, "WEIGHTS_DIR", tmp_path)
    (tmp_path / "master_line.safetensors").write_bytes(b"")
    fix = "master_line_int8.*`masterocr export --checkpoint line --int8.*--backend torch"
    with pytest.raises(UserError, match=fix) as err:
        load_recognizer(model="line", backend="onnx")
    assert "scripts/" not in str(err.value) and "make " not in str(err.value)  # a wheel has neither
