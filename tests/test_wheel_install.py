"""`pip install .` (not editable) carries the shipped model: a wheel built from the checkout, installed into a
fresh venv and run from outside the checkout, reads the bundled samples with `masterocr predict` and with
`Recognizer()`.

The fresh venv sees this environment's dependencies (torch, onnxruntime, ...) through a .pth line naming
their site-packages; Python does not run the .pth files found in a folder added that way, so the editable
install of masterocr that lives there stays invisible, and the test checks that masterocr is imported from
the venv's own site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
EXPECTED = {"001.jpg": "BEACH", "real_0079.png": "unambiguously", "real_0120.png": "renard", "real_0142.png": "NOTICE"}

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def _build_wheel(tmp: Path, env: dict[str, str]) -> Path:
    """A wheel of a clean copy of the checkout (the build leaves its egg-info and build/ in the copy)."""
    src = tmp / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(dist), str(src)], tmp, env)  # fmt: skip
    (wheel,) = dist.glob("masterocr-*.whl")
    return wheel


def _venv_with_wheel(tmp: Path, wheel: Path, env: dict[str, str]) -> Path:
    """A venv holding only the wheel, with this environment's site-packages behind it for the dependencies."""
    root = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib], tmp, env).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], tmp, env)  # fmt: skip
    return root


def test_a_wheel_installed_into_a_fresh_venv_reads_the_samples(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MASTEROCR_WEIGHTS", "VIRTUAL_ENV")}
    wheel = _build_wheel(tmp_path, env)
    root = _venv_with_wheel(tmp_path, wheel, env)
    work = tmp_path / "elsewhere"  # outside the checkout: nothing there to find the weights by
    images = work / "crops"
    shutil.copytree(SAMPLES, images)
    python = str(root / "bin" / "python")

    where = _run([python, "-c", "import masterocr; print(masterocr.__file__)"], work, env).strip()
    assert Path(where).is_relative_to(root), where

    _run([str(root / "bin" / "masterocr"), "predict", "--img-folder", str(images), "--output-folder", "out"],
         work, env)  # fmt: skip
    read = {e["filename"]: e["result"] for e in json.loads((work / "out" / "predict_result.json").read_text())}
    assert {name: read[name] for name in EXPECTED} == EXPECTED

    script = (
        "import json, sys; from masterocr import Recognizer; rec = Recognizer(); "
        "preds = rec.predict(sys.argv[1:]); "
        "print(json.dumps({'texts': [p.text for p in preds], 'weights': str(rec.weights_path)}))"
    )
    out = json.loads(_run([python, "-c", script, *(str(images / name) for name in EXPECTED)], work, env))
    assert out["texts"] == list(EXPECTED.values())
    assert Path(out["weights"]).is_relative_to(root)
