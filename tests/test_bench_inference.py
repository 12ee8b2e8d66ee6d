"""bench/inference.py's docTR column: the torchvision stand-in that lets python-doctr import beside CPU torch."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
from conftest import BENCH, load_script

from masterocr.model import get_preset

bench = load_script("inference", BENCH)
NAME = bench.META_REGISTRATIONS


@pytest.fixture
def no_meta_registrations(monkeypatch):
    """sys.modules without torchvision's `_meta_registrations`, restored afterwards."""
    monkeypatch.setitem(sys.modules, NAME, None)  # recorded, so the test's own entry is undone too
    del sys.modules[NAME]


def test_the_stand_in_is_an_empty_module_under_torchvisions_name(no_meta_registrations):
    assert bench.stand_in_for_torchvision_meta_registrations() is True
    module = sys.modules[NAME]
    assert isinstance(module, types.ModuleType) and module.__name__ == NAME
    assert not [k for k in vars(module) if not k.startswith("__")]  # nothing registered, nothing run


def test_the_stand_in_leaves_a_loaded_module_alone(no_meta_registrations):
    real = types.ModuleType(NAME)
    sys.modules[NAME] = real
    assert bench.stand_in_for_torchvision_meta_registrations() is False
    assert sys.modules[NAME] is real


def test_the_column_says_why_it_is_empty_without_doctr(monkeypatch, no_meta_registrations):
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name, *args: None)
    run, note = bench.doctr_runner(get_preset("paper"))
    assert run is None and "python-doctr not installed" in note
    assert NAME not in sys.modules  # nothing put in place for a peer that is not there


@pytest.mark.skipif(importlib.util.find_spec("doctr") is None, reason="python-doctr is installed in its own venv")
def test_doctrs_master_runs_at_the_paper_size_on_the_cpu():
    run, note = bench.doctr_runner(get_preset("paper"))
    assert note == "docTR master, 3x48x160, 49 steps"
    run(1, 10)
