"""A user's first hour from a wheel: built from the checkout, installed with pip into a fresh venv (no -e, its
dependencies from the package index at the versions of constraints.txt, no optional extra), and used from a
folder outside the checkout: `--version`, `predict --json` on a packaged sample, the README's Python snippet,
`init finetune`, a 3-step finetune from `-r medium` on a few generated crops in the README's layout, `eval` on
them, and `--backend onnx` without onnxruntime (one line naming the extra)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from fixtures import render_word

REPO = Path(__file__).resolve().parents[1]
WORDS = ["cat", "Dog", "tree", "HOUSE", "sun", "Moon"]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900, rc: int = 0
         ) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == rc, f"{cmd} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


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


def _readme_snippet() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def _my_crops(root: Path) -> Path:
    """The README's layout: data/my_crops/{train,val}.txt with `images/NNNN.png,label` lines."""
    crops = root / "data" / "my_crops"
    (crops / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(WORDS):
        render_word(word).save(crops / "images" / f"{i:04d}.png")
        lines.append(f"images/{i:04d}.png,{word}")
    (crops / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (crops / "val.txt").write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    return crops


def test_the_first_hour_from_a_wheel_in_a_fresh_venv(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MASTEROCR_WEIGHTS", "VIRTUAL_ENV")}
    wheel = _build_wheel(tmp_path, env)
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(root)
    bin_ = root / "bin"
    _run([str(bin_ / "pip"), "install", "-q", "-c", str(REPO / "constraints.txt"), str(wheel)], tmp_path, env)
    work = tmp_path / "elsewhere"  # outside the checkout: nothing there to find the weights by
    work.mkdir()
    python, cli = str(bin_ / "python"), str(bin_ / "masterocr")

    where = _run([python, "-c", "import masterocr; print(masterocr.__file__)"], work, env).stdout.strip()
    assert Path(where).is_relative_to(root), where
    version = _run([cli, "--version"], work, env).stdout.strip()
    assert re.fullmatch(r"masterocr \d+\.\d+\.\d+.*", version), version

    # predict --json on a sample that ships in the package
    sample = _run([python, "-c", "from masterocr import samples; print(samples.path('real_0079.png'))"], work,
                  env).stdout.strip()
    (entry,) = [json.loads(line) for line in _run([cli, "predict", sample, "--json"], work, env).stdout.splitlines()]
    assert entry["text"] == "unambiguously" and entry["error"] is None and len(entry["char_scores"]) == 13
    assert not (work / "predict_result.json").exists()

    # the README's Python snippet prints the samples' text and the error of the bad input
    printed = _run([python, "-c", _readme_snippet()], work, env).stdout
    assert printed.splitlines()[0].startswith("BEACH ") and printed.splitlines()[1].startswith("unambiguously ")
    assert printed.splitlines()[2].startswith("error: <bytes>: not an image")

    # ONNX without onnxruntime: one line naming the extra
    failed = _run([cli, "predict", sample, "--backend", "onnx"], work, env, rc=2)
    assert failed.stderr.strip().endswith("pip install 'masterocr[onnx]'") and len(failed.stderr.splitlines()) == 1

    # finetune as the README says: init finetune, edit the paths, -r medium, then predict and eval
    crops = _my_crops(work)
    template = json.loads(_run([cli, "init", "finetune"], work, env).stdout)
    for which, labels in (("train_dataset", "train.txt"), ("val_dataset", "val.txt")):
        template[which]["args"].update(txt_file=f"data/my_crops/{labels}", img_root="data/my_crops")
    (work / "my_finetune.json").write_text(json.dumps(template))
    quick = ["trainer.max_steps=3", "train_loader.args.num_workers=0", "val_loader.args.num_workers=0",
             "train_loader.args.batch_size=4", "trainer.progress=false"]
    _run([cli, "train", "-c", "my_finetune.json", "-r", "medium", "--finetune", "--check"], work, env)
    trained = _run([cli, "train", "-c", "my_finetune.json", "-r", "medium", "--finetune", "--set", *quick], work,
                   env)
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["step"] == 3
    best = Path(summary["run_dir"]) / "model_best.pth"
    _run([cli, "predict", "data/my_crops", "--recursive", "--checkpoint", str(best), "--output-folder", "preds"],
         work, env)
    scored = _run([cli, "eval", "--predict-path", "preds/predict_result.json", "--label-path",
                   str(crops / "val.txt"), "--json"], work, env)
    metrics = json.loads(scored.stdout)
    assert metrics["num_labels"] == 3 and metrics["num_matched"] == 3 and metrics["num_missing"] == 0
