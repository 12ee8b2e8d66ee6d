"""Hostile and damaged checkpoints, a full disk during save, kill -9 during training, non-finite losses."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _robust_util import legacy_state_dict, tiny_weights
from conftest import write_word_set

from masterocr.cli import main
from masterocr.errors import UserError
from masterocr.formats import checkpoint as ckpt_mod
from masterocr.formats.checkpoint import atomic_save, load_checkpoint
from masterocr.runtime.torch import Recognizer
from masterocr.train.config import run_settings
from masterocr.train.loop import Trainer

REPO = Path(__file__).resolve().parents[1]


class RunsCode:
    """Unpickling this calls os.system: a checkpoint holding it must never be unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def tiny_train_config(root: Path, save_dir: Path, **trainer) -> dict:
    data = {"type": "TextDataset", "args": {"txt_file": str(root / "gt.txt"), "img_root": str(root / "images")}}
    return {
        "name": "robust", "run_id": "tiny", "seed": 3, "distributed": False, "augment": False,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny", "max_len": 8}},
        "train_dataset": data,
        "train_loader": {"args": {"batch_size": 2, "num_workers": 0}},
        "optimizer": {"type": "Adam", "args": {"lr": 0.001}},
        "trainer": {"epochs": 10_000, "max_steps": 2, "save_dir": str(save_dir), "save_step_interval": 1,
                    "save_period": 1000, "train_num_workers": 0, "progress": False, "do_validation": False,
                    "log_step_interval": 1000, **trainer},
    }


@pytest.fixture(scope="module")
def words(tmp_path_factory) -> Path:
    return write_word_set(tmp_path_factory.mktemp("words"), ["cat", "dog", "sun", "tree"])


@pytest.fixture
def cfg_path(words, tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_train_config(words, tmp_path / "saved")))
    return path


@pytest.fixture(scope="module")
def trained(words, tmp_path_factory) -> Path:
    """A real checkpoint-latest.pth of the tiny config after 2 steps."""
    root = tmp_path_factory.mktemp("trained")
    (root / "c.json").write_text(json.dumps(tiny_train_config(words, root / "saved")))
    assert main(["train", "-c", str(root / "c.json"), "-d", "cpu"]) == 0
    [latest] = (root / "saved").rglob("checkpoint-latest.pth")
    return latest


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err


# code-running pickles -------------------------------------------------------------------------------------------
@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"model_state_dict": {"w": torch.zeros(2)}, "model_config": {}, "payload": RunsCode(marker)}, path)
    return path, marker


def test_pickled_code_is_refused_by_every_loader(evil, cfg_path, tmp_path, capsys):
    path, marker = evil
    with pytest.raises(UserError, match=r"refusing to load .*evil\.pth.*pickled Python objects.*posix\.system"):
        load_checkpoint(path)
    with pytest.raises(UserError, match="refusing to load"):
        Recognizer.from_checkpoint(path)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"x")
    for argv in (["train", "-c", str(cfg_path), "-r", str(path), "-d", "cpu"],
                 ["predict", "--checkpoint", str(path), "--img-folder", str(tmp_path / "imgs"),
                  "--output-folder", str(tmp_path / "o")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "refusing to load" in err and str(path) in err and "could run code" in err
        _no_traceback(err)
    assert not marker.exists()
    assert not (tmp_path / "saved").exists()  # training never started


# damaged and mismatched files ------------------------------------------------------------------------------------
def test_truncated_and_random_checkpoints(trained, tmp_path):
    data = trained.read_bytes()
    for name, content in (("half.pth", data[: len(data) // 2]), ("head.pth", data[:100]),
                          ("random.pth", random.Random(1).randbytes(4096)), ("empty.pth", b""),
                          ("text.pth", b"hello, I am not a checkpoint\n")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(UserError, match=r"unreadable|corrupt|truncated") as info:
            load_checkpoint(path)
        msg = str(info.value)
        assert str(path) in msg and "refusing" not in msg, msg  # damaged data is not called hostile
        with pytest.raises(UserError):
            Recognizer.from_checkpoint(path)


def test_missing_checkpoint_and_folder_without_one(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(UserError, match="without checkpoint-latest.pth"):
        load_checkpoint(tmp_path)


def test_safetensors_with_wrong_metadata_or_bytes(tmp_path):
    from safetensors.torch import save_file

    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare), metadata={"format": "pt"})
    with pytest.raises(UserError, match=r"bare\.safetensors lacks masterocr metadata"):
        Recognizer.from_checkpoint(bare)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(UserError, match=r"junk\.safetensors is not a readable safetensors file"):
        load_checkpoint(junk)
    good = tiny_weights(tmp_path / "good.safetensors")
    bad_json = tmp_path / "badjson.safetensors"
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(bad_json), metadata={**meta, "model_config": "{not json"})
    with pytest.raises(UserError, match=r"badjson\.safetensors"):
        Recognizer.from_checkpoint(bad_json)
    cfg = json.loads(meta["model_config"])
    save_file(tensors, str(bad_json), metadata={**meta, "model_config": json.dumps({**cfg, "d_model": "big"})})
    with pytest.raises(UserError, match=r"badjson\.safetensors"):
        Recognizer.from_checkpoint(bad_json)


def test_checkpoint_of_another_preset(trained, words, tmp_path, capsys):
    from masterocr.charset import Charset
    from masterocr.formats.weights import save_weights
    from masterocr.model import build_model

    small = build_model("small", Charset.default())
    tiny_cfg = build_model("tiny", Charset.default()).cfg.to_dict()
    wrong = tmp_path / "wrong.safetensors"
    save_weights(small.state_dict(), tiny_cfg, Charset.default().keys, wrong, dtype=None)
    with pytest.raises(UserError, match=r"wrong\.safetensors: weights do not match its model config"):
        Recognizer.from_checkpoint(wrong)
    # resuming a tiny checkpoint with a config of another preset
    cfg = tiny_train_config(words, tmp_path / "saved")
    cfg["model_arch"]["args"]["preset"] = "small"
    (tmp_path / "small.json").write_text(json.dumps(cfg))
    assert main(["train", "-c", str(tmp_path / "small.json"), "-r", str(trained), "-d", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "does not fit this config's model" in err and str(trained) in err and "--finetune" in err
    _no_traceback(err)


def test_resume_from_weights_only_file_is_a_clear_error(cfg_path, tmp_path, capsys):
    weights = tiny_weights(tmp_path / "w.safetensors", max_len=8)
    bare = tmp_path / "bare.pth"
    torch.save(load_checkpoint(weights)["model_state_dict"], bare)  # a bare state_dict
    for path in (weights, bare):
        assert main(["train", "-c", str(cfg_path), "-r", str(path), "-d", "cpu"]) == 2
        err = capsys.readouterr().err
        assert f"{path} holds weights only, no training state to resume; use --finetune" in err
        _no_traceback(err)


def test_resume_from_a_checkpoint_before_the_fused_projections_is_a_clear_error(trained, cfg_path, tmp_path, capsys):
    ckpt = torch.load(trained, map_location="cpu", weights_only=True)
    fused = ckpt["model_state_dict"]
    ckpt["model_state_dict"] = legacy_state_dict(fused)
    old = tmp_path / "checkpoint-0.1.0.pth"
    torch.save(ckpt, old)
    assert main(["train", "-c", str(cfg_path), "-r", str(old), "-d", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"{old} was written by masterocr 0.1.0" in err and "--finetune" in err
    _no_traceback(err)
    assert Recognizer.from_checkpoint(old).model is not None  # its weights still load for inference
    # and --finetune keeps every tensor of it (names are upgraded before they are compared)
    trainer = Trainer(run_settings(json.loads(cfg_path.read_text())), device="cpu", finetune=old)
    own = trainer.model.state_dict()
    for key, value in fused.items():
        assert torch.equal(own[key.removeprefix("module.")], value), key


# full disk -------------------------------------------------------------------------------------------------------
def test_atomic_save_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint-latest.pth"
    atomic_save({"model_state_dict": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()
    real_save = torch.save

    def save_then_fill_disk(obj, f, *a, **kw):
        f.write(b"PK\x03\x04 partial checkpoint bytes" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", save_then_fill_disk)
    with pytest.raises(OSError) as info:
        atomic_save({"model_state_dict": {"w": torch.zeros(3)}}, path)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.setattr(ckpt_mod.torch, "save", real_save)
    assert path.read_bytes() == before
    assert torch.equal(load_checkpoint(path)["model_state_dict"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-latest.pth"]  # no temp file left


def test_atomic_save_interrupted_by_fsync_failure(tmp_path, monkeypatch):
    path = tmp_path / "c.pth"
    atomic_save({"a": torch.ones(1)}, path)
    monkeypatch.setattr(ckpt_mod.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(OSError):
        atomic_save({"a": torch.zeros(1)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["a"].item() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["c.pth"]


# kill -9 during training -----------------------------------------------------------------------------------------
def _train_process(cfg_path: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "masterocr", "train", "-c", str(cfg_path), "-d", "cpu"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=cfg_path.parent)


def _kill_during_training(words: Path, tmp_path: Path, rng: random.Random) -> Path:
    cfg_path = tmp_path / "long.json"
    cfg_path.write_text(json.dumps(tiny_train_config(words, tmp_path / "saved", max_steps=100_000)))
    proc = _train_process(cfg_path, tmp_path / "train.log")
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "saved").rglob("checkpoint-latest.pth")):
            assert proc.poll() is None, (tmp_path / "train.log").read_text()
            assert time.monotonic() < deadline, "no checkpoint written in 120 s"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))  # somewhere in a later step or mid-save
        assert proc.poll() is None, (tmp_path / "train.log").read_text()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    [latest] = (tmp_path / "saved").rglob("checkpoint-latest.pth")
    return latest


def _check_and_resume(latest: Path, words: Path, tmp_path: Path, capsys) -> None:
    state = torch.load(latest, weights_only=True)  # never torn
    step = int(state["step"])
    assert step >= 1
    cfg_path = tmp_path / "resume.json"
    cfg_path.write_text(json.dumps(tiny_train_config(words, tmp_path / "saved", max_steps=step + 1)))
    capsys.readouterr()
    assert main(["train", "-c", str(cfg_path), "-r", str(latest), "-d", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == step + 1 and summary["run_dir"] == str(latest.parent)
    assert torch.load(latest, weights_only=True)["step"] == step + 1


def test_kill_9_during_training_leaves_a_loadable_checkpoint(words, tmp_path, capsys):
    latest = _kill_during_training(words, tmp_path, random.Random())
    _check_and_resume(latest, words, tmp_path, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_kill_9_at_random_moments(words, tmp_path, capsys, seed):
    latest = _kill_during_training(words, tmp_path, random.Random(seed))
    _check_and_resume(latest, words, tmp_path, capsys)


# non-finite loss ---------------------------------------------------------------------------------------------------
def test_nonfinite_loss_skips_then_stops_and_keeps_the_last_good_checkpoint(words, tmp_path, monkeypatch, capsys,
                                                                            caplog):
    cfg = tiny_train_config(words, tmp_path / "saved", max_steps=50, nan_patience=2)
    real_loss = Trainer._loss
    calls = {"n": 0}

    def loss_goes_nan_after_one_step(self, images, labels, widths=None):
        calls["n"] += 1
        loss = real_loss(self, images, labels, widths)
        return loss * float("nan") if self.state.step >= 1 else loss

    monkeypatch.setattr(Trainer, "_loss", loss_goes_nan_after_one_step)
    (tmp_path / "nan.json").write_text(json.dumps(cfg))
    with caplog.at_level("WARNING", logger="masterocr"):
        assert main(["train", "-c", str(tmp_path / "nan.json"), "-d", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "masterocr train: error: the loss was non-finite 2 steps in a row; stopping" in err
    assert "lower the learning rate" in err
    _no_traceback(err)
    skipped = [r.getMessage() for r in caplog.records if "non-finite loss" in r.getMessage()]
    assert skipped == [f"non-finite loss at step 1: step skipped ({i} in a row)" for i in (1, 2)]
    assert calls["n"] == 3  # 1 good step, then 2 skipped
    [latest] = (tmp_path / "saved").rglob("checkpoint-latest.pth")
    good = load_checkpoint(latest)
    assert good["step"] == 1 and good["nonfinite_skipped"] == 0  # the last good state, from before the NaNs
    assert all(torch.isfinite(v).all() for v in good["model_state_dict"].values() if v.is_floating_point())
    assert sorted(p.name for p in latest.parent.glob("*.pth")) == ["checkpoint-latest.pth"]


@pytest.mark.slow
def test_huge_learning_rate_is_stopped_cleanly(words, tmp_path, capsys):
    cfg = tiny_train_config(words, tmp_path / "saved", max_steps=30, nan_patience=2, grad_clip=None)
    cfg["optimizer"]["args"]["lr"] = 1e30
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    rc = main(["train", "-c", str(tmp_path / "c.json"), "-d", "cpu"])
    captured = capsys.readouterr()
    _no_traceback(captured.err)
    if rc == 2:  # the weights blew up: stopped with the clear message
        assert "non-finite 2 steps in a row" in captured.err
    else:  # an optimizer that survives it must still have written loadable, finite checkpoints
        assert rc == 0
    [latest] = (tmp_path / "saved").rglob("checkpoint-latest.pth")
    load_checkpoint(latest)


# configs are data --------------------------------------------------------------------------------------------------
def test_config_strings_are_never_executed(words, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    code = f"__import__('os').system('touch {marker}')"
    cfg = tiny_train_config(words, tmp_path / "saved", max_steps=1)
    cfg["run_id"] = code
    cfg["optimizer"] = {"type": "Adam", "args": {"lr": 0.001}}
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    assert main(["train", "-c", str(tmp_path / "c.json"), "-d", "cpu", "--set", f"name={code}"]) == 0
    capsys.readouterr()
    assert not marker.exists()
    # a config that is Python, not JSON
    (tmp_path / "py.json").write_text(f"{{'name': {code}}}")
    assert main(["train", "-c", str(tmp_path / "py.json")]) == 2
    err = capsys.readouterr().err
    assert "is not valid JSON" in err
    _no_traceback(err)
    assert not marker.exists()
