"""One limit, one place (masterocr.limits and the model's ranges): what --check accepts trains, loads, exports
and serves; threads follow the CPUs; a schedule follows max_steps; a run with no optimizer step is refused."""

from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path

import pytest
import torch
from fixtures import write_word_set

from masterocr import limits
from masterocr.charset import MAX_KEYS, Charset
from masterocr.cli import main
from masterocr.errors import UserError
from masterocr.model.config import MAX_CLASSES
from masterocr.train import optim


def test_threads_default_to_the_cpus_and_a_larger_request_is_lowered_in_one_line(caplog):
    cpus = limits.available_cpus()
    assert limits.threads(None) == cpus
    assert limits.threads(1) == 1
    with caplog.at_level(logging.WARNING):
        assert limits.threads(100_000) == cpus
    [record] = caplog.records
    assert record.getMessage() == f"threads 100000 lowered to {cpus}: the CPUs this process may use"
    for bad in (0, -1, True, 2.5, "4"):
        with pytest.raises(UserError, match="threads = .*: must be an integer from 1"):
            limits.threads(bad)


def test_load_recognizer_caps_threads_at_the_cpus(caplog):
    from masterocr.runtime.select import load_recognizer

    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING):
            load_recognizer(None, backend="torch", threads=100_000)
        assert torch.get_num_threads() == limits.available_cpus()
        assert any("threads 100000 lowered to" in r.getMessage() for r in caplog.records)
        with pytest.raises(UserError, match="threads must be at least 1"):
            load_recognizer(None, backend="torch", threads=-3)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("argv", "fragment"), [
    (["serve", "--port", "70000"], "--port = 70000: must be an integer from 0 to 65535"),
    (["serve", "--port", "-1"], "--port = -1: must be an integer from 0 to 65535"),
    (["serve", "--max-batch", "100000"], "max_batch must be at most 4096, got 100000"),
    (["serve", "--max-connections", "10000000"], "max_connections must be at most 4096"),
    (["serve", "--max-images", "1000000"], "max_images_per_request must be at most 1024"),
    (["serve", "--body-timeout-s", "nan"], "body_timeout_s must be more than 0 and at most 3600 seconds, got nan"),
    (["serve", "--max-wait-ms", "inf"], "max_wait_ms must be from 0 to 10000, got inf"),
    (["predict", "--img-folder", ".", "--batch-size", "1000000000"], "must be at most 4096, got 1000000000"),
    (["synth", "--out", "x", "--count", "10000000000"], "--count must be at most 1000000000"),
    (["synth", "--out", "x", "--count", "1", "--workers", "100000"], "--workers must be at most 64"),
])  # fmt: skip
def test_a_count_past_its_bound_is_one_line_before_any_work(argv, fragment, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusal (usage + one error line)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert fragment in err.strip().splitlines()[-1]


def test_a_charset_past_the_class_limit_is_refused_where_it_is_made():
    assert MAX_CLASSES == MAX_KEYS + 4
    with pytest.raises(UserError, match=f"over the limit of {MAX_KEYS:,}"):
        Charset(_keys(MAX_KEYS + 1))
    assert len(Charset(_keys(MAX_KEYS) * 2)) == MAX_CLASSES  # duplicates count once


def test_a_per_step_schedule_follows_max_steps_unless_its_length_is_set(caplog):
    def rates(spec: dict, max_steps: int | None, steps: int) -> list[float]:
        opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
        sched, per_step = optim.build_scheduler(opt, spec, max_steps or 2000, max_steps)
        assert per_step
        out = []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    follows = rates({"type": "WarmupCosine", "args": {"warmup_steps": 2, "min_ratio": 0.01}}, 20, 21)
    assert follows[2] == pytest.approx(1.0) and follows[20] == pytest.approx(0.01)  # warmed up, then decayed
    assert not caplog.records
    set_length = {"type": "WarmupCosine", "args": {"warmup_steps": 200, "total_steps": 2000, "min_ratio": 0.01}}
    with caplog.at_level(logging.WARNING):
        assert rates(set_length, 20, 21)[20] == pytest.approx(21 / 200)  # kept: a run in chunks relies on it
    assert "total_steps 2000 is longer than trainer.max_steps 20: the run stops mid-schedule" in caplog.text


def test_the_finetune_template_lets_max_steps_set_the_schedule():
    from masterocr.train.config import load_config, run_settings

    settings = run_settings(load_config("configs/finetune_example.json"))
    assert settings.trainer.lr_scheduler.args.total_steps is None  # follows trainer.max_steps


def test_a_run_that_would_make_no_optimizer_step_is_refused_before_it_trains(tmp_path, capsys):
    root = tmp_path / "set"
    write_word_set(root, ["cab", "bad", "ace", "dab"])
    cfg = _config(root, tmp_path, "abcde")
    cfg["trainer"]["grad_accum_steps"] = 8  # 2 batches an epoch
    code = main(["train", "-c", _write(tmp_path, cfg)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "trainer.grad_accum_steps = 8: an epoch has 2 batches, so the run would make no optimizer step" in err


def _keys(n: int) -> str:
    """n distinct characters that NFKC leaves as they are (CJK and beyond, no surrogates)."""
    out, code = [], 0x3400
    while len(out) < n:
        ch = chr(code)
        if not 0xD800 <= code <= 0xDFFF and unicodedata.normalize("NFKC", ch) == ch and ch.isprintable():
            out.append(ch)
        code += 1
    return "".join(out)


def _config(root: Path, out: Path, keys_or_file: str) -> dict:
    charset = {"keys_file": keys_or_file} if keys_or_file.endswith(".txt") else {"keys": keys_or_file}
    return {
        "name": "limits", "run_id": "r", "distributed": False, "seed": 1,
        "model_arch": {"type": "MASTER", "args": {"preset": "tiny"}}, "charset": charset,
        "train_dataset": {"type": "TextDataset", "args": {"txt_file": str(root / "gt.txt"),
                                                          "img_root": str(root / "images")}},
        "train_loader": {"type": "DataLoader", "args": {"batch_size": 2, "num_workers": 0}},
        "trainer": {"epochs": 1, "max_steps": 1, "save_dir": str(out / "runs"), "progress": False,
                    "do_validation": False, "monitor": "off", "save_step_interval": 10},
    }  # fmt: skip


def _write(folder: Path, cfg: dict) -> str:
    path = folder / "config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return str(path)


@pytest.mark.slow
def test_a_charset_of_the_largest_size_trains_one_step_then_predicts_and_exports(tmp_path, capsys):
    """The round-three data loss: a 100,000-symbol keys file passed --check and trained, then predict and export
    refused the checkpoint. Training and loading now share one limit."""
    keys = _keys(MAX_KEYS)
    root = tmp_path / "set"
    words = [keys[i:i + 3] for i in (0, 50_000, 99_990, 7)]
    write_word_set(root, words)
    (tmp_path / "keys.txt").write_text(keys, encoding="utf-8")
    cfg = _config(root, tmp_path, str(tmp_path / "keys.txt"))
    path = _write(tmp_path, cfg)
    assert main(["train", "-c", path, "--check"]) == 0
    assert f"{MAX_KEYS + 4} classes" in capsys.readouterr().out
    assert main(["train", "-c", path]) == 0
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert run["step"] == 1
    ckpt = Path(run["run_dir"]) / "checkpoint-latest.pth"
    assert main(["predict", "--checkpoint", str(ckpt), "--img-folder", str(root / "images"),
                 "--output-folder", str(tmp_path / "pred"), "--backend", "torch"]) == 0
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "onnx")]) == 0
    from masterocr.runtime.onnx import OnnxRecognizer

    rec = OnnxRecognizer(tmp_path / "onnx")
    assert len(rec.charset) == MAX_KEYS + 4
    [result] = rec.predict([str(next((root / "images").iterdir()))])
    assert result.error is None


def test_an_onnx_recognizer_built_directly_bounds_its_threads_too(caplog):
    pytest.importorskip("onnxruntime")
    from masterocr.assets import shipped_onnx
    from masterocr.runtime.onnx import OnnxRecognizer

    with caplog.at_level(logging.WARNING):
        rec = OnnxRecognizer(shipped_onnx(), threads=100_000)
    assert rec.encoder.get_session_options().intra_op_num_threads == limits.available_cpus()
    assert any("threads 100000 lowered to" in r.getMessage() for r in caplog.records)
    with pytest.raises(UserError, match="threads = 0: must be an integer from 1"):
        OnnxRecognizer(shipped_onnx(), threads=0)
