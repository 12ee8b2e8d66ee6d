"""The CTC teacher (train/teacher.py): its class map, its frames resampled onto ours, which lines it teaches, the
distillation loss, and the trainer with `trainer.distill`. A tiny ONNX teacher built here reads dark blocks as
"a"; PP-OCRv6 small (the rapidocr wheel, `[distill]` extra) reads rendered lines."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnx
import pytest
import torch
from fixtures import tiny_word_config
from onnx import TensorProto, helper

from masterocr.charset import NUM_SPECIAL, Charset
from masterocr.errors import UserError
from masterocr.model.ctc import BLANK
from masterocr.train.config import run_settings
from masterocr.train.loop import train
from masterocr.train.teacher import CtcTeacher, SoftTargets, class_map, distill_loss, teacher_path


def test_teacher_classes_map_onto_ours_through_nfkc():
    charset = Charset("ab, ")
    mapped = class_map(["", "a", "\uff0c", "x", "b", " "], charset)  # blank, a, fullwidth comma, x, b, space
    idx = {ch: NUM_SPECIAL + i for i, ch in enumerate("ab, ")}
    assert mapped.tolist() == [BLANK, idx["a"], idx[","], -1, idx["b"], idx[" "]]


def blocks_teacher(path: Path) -> Path:
    """An ONNX CTC recognizer in PaddleOCR's layout that reads each dark 8-px frame as "a", a light one as blank:
    x (B, 3, 48, W) -> darkness per frame d -> softmax over (blank, a, space) of (4d, -4d, -6)."""
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes12"], ["col"], keepdims=0),  # (B, W)
        helper.make_node("Reshape", ["col", "frames_shape"], ["framed"]),  # (B, T, 8)
        helper.make_node("ReduceMean", ["framed", "axes2"], ["d"], keepdims=1),  # (B, T, 1)
        helper.make_node("Mul", ["d", "w"], ["scaled"]),
        helper.make_node("Add", ["scaled", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    inits = [
        helper.make_tensor("axes12", TensorProto.INT64, [2], [1, 2]),
        helper.make_tensor("axes2", TensorProto.INT64, [1], [2]),
        helper.make_tensor("frames_shape", TensorProto.INT64, [3], [0, -1, 8]),
        helper.make_tensor("w", TensorProto.FLOAT, [3], [4.0, -4.0, 0.0]),
        helper.make_tensor("b", TensorProto.FLOAT, [3], [0.0, 0.0, -6.0]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 48, None])
    probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [None, None, 3])
    graph = helper.make_graph(nodes, "blocks", [x], [probs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    helper.set_model_props(model, {"character": "a"})
    onnx.save(model, path)
    return path


def _two_blocks(width: int = 96) -> torch.Tensor:
    """A light line, 32 px high, dark at columns 16-31 and 64-79 (teacher frames 3-5 and 12-14 at 48 px)."""
    img = torch.ones(1, 1, 32, width)
    img[..., 16:32] = -1.0
    img[..., 64:80] = -1.0
    return img


def test_teacher_frames_land_on_our_frames_of_the_same_columns(tmp_path):
    charset = Charset("ab")
    teacher = CtcTeacher(blocks_teacher(tmp_path / "t.onnx"), charset, top_k=2)
    images = torch.cat([_two_blocks(), _two_blocks()])
    soft = teacher.targets(images, torch.tensor([96, 96]), ["aa", "a"], frames=48)
    assert soft.taught.tolist() == [True, False]  # "a" against a reading of "aa": CER 1 > 0.05
    a = NUM_SPECIAL
    top = soft.classes.gather(-1, soft.probs.argmax(-1, keepdim=True))[0, :, 0]
    dark = [f for f in range(48) if 16 <= 2 * f < 32 or 64 <= 2 * f < 80]  # our frame f covers columns 2f, 2f+1
    assert [f for f in range(48) if top[f] == a] == dark
    assert soft.probs.max(-1).values[0, dark].min() > 0.99
    assert torch.allclose(soft.probs.sum(-1), torch.ones(2, 48))


def test_the_distillation_loss_is_the_soft_cross_entropy_of_taught_valid_frames():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    classes = torch.randint(0, 7, (2, 5, 3))
    probs = torch.softmax(torch.randn(2, 5, 3), -1)
    soft = SoftTargets(classes, probs, torch.tensor([True, False]))
    log_q = logits.log_softmax(-1)
    got = distill_loss(log_q, soft, torch.tensor([3, 5]))
    want = sum(-(probs[0, f] * log_q[0, f, classes[0, f]]).sum() for f in range(3)) / 3
    assert torch.allclose(got, want)
    untaught = SoftTargets(classes, probs, torch.tensor([False, False]))
    assert distill_loss(log_q, untaught, torch.tensor([3, 5])).item() == 0.0


def test_training_with_a_teacher_runs_and_needs_the_ctc_branch(tmp_path):
    config = tiny_word_config(tmp_path, validate=False)
    config["trainer"].update(max_steps=2, distill={"teacher": str(blocks_teacher(tmp_path / "t.onnx"))})
    config["model_arch"]["args"]["ctc_weight"] = 0.5
    summary = train(run_settings(config), device="cpu")
    assert summary["step"] == 2
    config["model_arch"]["args"]["ctc_weight"] = 0.0
    with pytest.raises(UserError, match="ctc_weight above 0"):
        train(run_settings(config), device="cpu")
    config["trainer"]["distill"] = {"teacher": str(tmp_path / "missing.onnx")}
    config["model_arch"]["args"]["ctc_weight"] = 0.5
    with pytest.raises(UserError, match="missing.onnx is not a file"):
        train(run_settings(config), device="cpu")


@pytest.mark.skipif(importlib.util.find_spec("rapidocr") is None, reason="the [distill] extra brings rapidocr")
def test_ppocrv6_teaches_rendered_lines():
    from masterocr.data.synth.linedataset import SynthLineDataset
    from masterocr.data.transforms import pad_batch

    charset = Charset.from_file(Path(__file__).resolve().parents[1] / "src/masterocr/charsets/zh_latin.txt")
    teacher = CtcTeacher(teacher_path("ppocrv6"), charset)
    lines = SynthLineDataset(charset=charset, height=32, max_width=800, in_channels=1, seed=3, length=4,
                             kinds={"latin": 0.5, "zh": 0.5})
    tensors, labels = zip(*[lines[i] for i in range(4)])
    images, widths = pad_batch(list(tensors))
    soft = teacher.targets(images, widths, list(labels), images.shape[-1] // 2)
    assert soft.taught.sum() >= 3  # the teacher reads ~99 % of these characters right
