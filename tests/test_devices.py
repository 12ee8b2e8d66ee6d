"""One device check for every command that takes --device/--gpu/-d: a malformed or absent device is one line
saying what is available, before any model is loaded or run folder made."""

from __future__ import annotations

import pytest
import torch

from masterocr.cli import main
from masterocr.devices import available, parse_device
from masterocr.errors import UserError

NO_GPU = not torch.cuda.is_available()
SAMPLES = "samples"


@pytest.mark.parametrize("spec", ["cuda:abc", "gpu", "cuda:-1", "0,x", "cuda:0:1", "  ", "cpux"])
def test_a_malformed_device_is_one_line_with_what_is_available(spec):
    if not spec.strip():
        assert parse_device(spec) == torch.device("cuda", 0) if not NO_GPU else torch.device("cpu")
        return
    with pytest.raises(UserError, match=r"is not a device; use cpu, cuda, cuda:N or GPU ids like 0,1 \(available: cpu"):
        parse_device(spec)


def test_cpu_and_auto_are_always_here():
    assert parse_device("cpu") == parse_device(" CPU ") == torch.device("cpu")
    assert parse_device(torch.device("cpu")) == torch.device("cpu")
    assert "cpu" in available()


@pytest.mark.skipif(not NO_GPU, reason="checks the refusal on a machine without a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3", "0", "0,1"])
def test_a_gpu_on_a_machine_without_one_is_one_line(spec):
    with pytest.raises(UserError, match="asks for a GPU; available: cpu .*; use --device cpu"):
        parse_device(spec)


@pytest.mark.skipif(NO_GPU, reason="needs a GPU")
def test_a_gpu_index_past_the_count_is_one_line():
    with pytest.raises(UserError, match="names GPU 99; available: cpu, cuda:0"):
        parse_device("cuda:99")


@pytest.mark.skipif(not NO_GPU, reason="checks the refusal on a machine without a GPU")
@pytest.mark.parametrize("argv", [
    ["predict", "--img-folder", SAMPLES, "--device", "cuda"],
    ["predict", "--img-folder", SAMPLES, "--gpu", "0"],
    ["predict", "--img-folder", SAMPLES, "--device", "cuda:abc"],
    ["test", "--data-root", SAMPLES, "--device", "cuda"],
    ["serve", "--device", "cuda:1"],
    ["train", "-c", "configs/synth_cpu.json", "--check", "-d", "cuda:abc"],
    ["train", "-c", "configs/synth_cpu.json", "--check", "-d", "cuda"],
])  # fmt: skip
def test_every_command_refuses_an_absent_device_in_one_line(argv, capsys, tmp_path, monkeypatch):
    code = main([*argv, *(["--output-folder", str(tmp_path)] if argv[0] == "predict" else [])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err
    assert "available: cpu" in err
