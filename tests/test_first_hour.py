"""A new user's first hour (issue "A user's first hour"): a light `import masterocr`, one line naming the extra
for every missing optional package, shipped models and configs by name from any folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from masterocr import assets
from masterocr.cli import main
from masterocr.errors import UserError
from masterocr.imports import MissingExtra, require

REPO = Path(__file__).resolve().parents[1]


def _loaded_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys, json; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} | "
    probe += "{m for m in sys.modules if m.startswith('masterocr.')})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    return set(json.loads(out.stdout))


def test_import_masterocr_loads_no_torch_training_or_lmdb_code():
    loaded = _loaded_after("import masterocr; masterocr.__version__")
    assert not loaded & {"torch", "lmdb", "pydantic", "PIL", "numpy"}, loaded


def test_reading_an_image_loads_no_training_or_lmdb_code():
    loaded = _loaded_after("from masterocr import Recognizer, Prediction, load_recognizer")
    assert "torch" in loaded
    assert not loaded & {"lmdb", "pydantic", "masterocr.train", "masterocr.data.lmdb", "masterocr.export"}, loaded


def test_the_facades_still_give_every_public_name():
    import masterocr
    import masterocr.data

    for name in masterocr.__all__:
        assert getattr(masterocr, name) is not None
    assert masterocr.data.LmdbDataset.__name__ == "LmdbDataset"
    with pytest.raises(AttributeError):
        masterocr.no_such_name  # noqa: B018


def test_version_prints_the_package_version(capsys):
    import masterocr

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"masterocr {masterocr.__version__}"


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_onnx_inference_without_onnxruntime_names_the_onnx_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # an import of it now fails as if not installed
    from masterocr.runtime.select import load_recognizer, resolve_backend

    with pytest.raises(MissingExtra, match=r"needs the 'onnxruntime' package: pip install 'masterocr\[onnx\]'"):
        load_recognizer(backend="onnx")
    assert resolve_backend("auto", None, "cpu", False, "fp32") == "torch"  # auto falls back quietly
    sample = str(assets.WEIGHTS_DIR.parent / "sample_images" / "001.jpg")
    assert main(["predict", sample, "--backend", "onnx", "--json"]) == 2
    assert "pip install 'masterocr[onnx]'" in _one_error_line(capsys.readouterr().err)


def test_export_without_onnx_names_the_export_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", "--out", str(tmp_path / "graphs")]) == 2
    assert "pip install 'masterocr[export]'" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "graphs").exists()


def test_the_service_without_fastapi_names_the_serve_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    for name in [m for m in sys.modules if m.startswith("masterocr.serve")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingExtra, match=r"'fastapi' package: pip install 'masterocr\[serve\]'"):
        import masterocr.serve.app  # noqa: F401


def test_a_broken_dependency_of_an_installed_extra_is_not_blamed_on_the_extra(tmp_path, monkeypatch):
    (tmp_path / "halfinstalled.py").write_text("import no_such_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_of_it"):
        require("halfinstalled", "a feature")  # the package is there: its own broken import shows
    with pytest.raises(MissingExtra, match="pip install 'masterocr\\[all\\]'"):
        require("no_such_package_at_all", "a feature")


def test_train_check_with_tensorboard_missing_says_so_before_any_run_folder(monkeypatch, word_set, tmp_path,
                                                                              capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    cfg = json.loads(assets.shipped_config("finetune").read_text())
    for which in ("train_dataset", "val_dataset"):
        cfg[which]["args"].update(txt_file=str(word_set / "gt.txt"), img_root=str(word_set / "images"))
    cfg["trainer"].update(save_dir=str(tmp_path / "runs"), tensorboard=True)
    path = tmp_path / "tb.json"
    path.write_text(json.dumps(cfg))
    for extra in ([], ["--check"]):
        assert main(["train", "-c", str(path), "-r", "medium", "--finetune", *extra]) == 2
        assert "pip install 'masterocr[train]'" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("name", "weights"), [("medium", "master_medium.safetensors"),
                                               ("small", "master_small.safetensors"),
                                               ("line", "master_line.safetensors")])
def test_shipped_models_by_name_from_any_folder(name, weights, tmp_path, monkeypatch):
    from masterocr import Recognizer
    from masterocr.runtime.select import load_recognizer

    monkeypatch.chdir(tmp_path)
    assert assets.model_file(name) == assets.WEIGHTS_DIR / weights
    if name != "line":  # the line model's own tests load it
        assert Recognizer.from_checkpoint(name).weights_path == assets.WEIGHTS_DIR / weights
        assert load_recognizer(name, backend="torch").weights_path == assets.WEIGHTS_DIR / weights
    (tmp_path / name).write_bytes(b"")  # a file of that name in the working folder is what the user means
    assert assets.model_file(name) == Path(name)


def test_train_check_accepts_a_shipped_model_name_for_r(word_set, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "finetune", "--out", "my.json"]) == 0
    cfg = json.loads(Path("my.json").read_text())
    for which in ("train_dataset", "val_dataset"):
        cfg[which]["args"].update(txt_file=str(word_set / "gt.txt"), img_root=str(word_set / "images"))
    Path("my.json").write_text(json.dumps(cfg))
    capsys.readouterr()
    assert main(["train", "-c", "my.json", "-r", "medium", "--finetune", "--check"]) == 0
    assert "the config is valid" in capsys.readouterr().out


def test_init_writes_the_shipped_template_and_never_overwrites(tmp_path, capsys):
    assert main(["init", "finetune"]) == 0
    printed = capsys.readouterr().out
    assert printed == (REPO / "configs" / "finetune_example.json").read_text()
    out = tmp_path / "my.json"
    assert main(["init", "line", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["model_arch"]["args"]["preset"] == "line"
    out.write_text("{}  my edits")
    assert main(["init", "finetune", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "{}  my edits"
    with pytest.raises(UserError, match="no shipped config 'nope'; choose one of finetune"):
        assets.shipped_config("nope")
    with pytest.raises(UserError):
        assets.shipped_config("../weights/master_medium.config")


def test_verbose_turns_on_masterocrs_debug_lines_not_other_libraries(tmp_path):
    sample = REPO / "samples" / "001.jpg"
    code = ("import logging, sys; from masterocr.cli import main; sys.exit(main(sys.argv[1:])) if len(sys.argv) > 1 "
            "else None")
    out = subprocess.run([sys.executable, "-c", code, "-v", "predict", str(sample), "--backend", "torch", "--json"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0, out.stderr
    assert "DEBUG PIL" not in out.stderr and "STREAM b'" not in out.stderr, out.stderr  # PIL's PNG chunk lines
    from masterocr.cli import setup_logging

    setup_logging(True)
    import logging

    assert logging.getLogger("masterocr.train").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("PIL.PngImagePlugin").isEnabledFor(logging.DEBUG)
