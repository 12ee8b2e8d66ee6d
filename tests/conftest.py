"""Shared fixtures: small word images rendered here, so the tests need no data from outside the repository."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from fixtures import render_word, write_word_set

WORDS = ["cat", "Dog", "tree", "HOUSE", "42", "sun", "Moon", "road", "a1b2", "x-ray", "Bird", "milk"]
__all__ = ["WORDS", "render_word", "write_word_set"]


@pytest.fixture
def word_set(tmp_path: Path) -> Path:
    return write_word_set(tmp_path / "words", WORDS)


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
BENCH = Path(__file__).resolve().parents[1] / "bench"


def load_script(name: str, folder: Path = SCRIPTS) -> ModuleType:
    """A module from scripts/ or bench/ (folders of scripts, not packages), loaded from its file: the scripts
    import only the package, never each other, so nothing goes on sys.path."""
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compare_runs() -> ModuleType:
    return load_script("compare_runs")


@pytest.fixture(scope="module")
def plot_curves() -> ModuleType:
    return load_script("plot_curves")


@pytest.fixture(scope="module")
def average_weights() -> ModuleType:
    return load_script("average_weights")
