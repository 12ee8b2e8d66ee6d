"""Shared fixtures: small word images rendered here, so the tests need no data from outside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from masterocr.demo import render_plain_word, write_word_set

WORDS = ["cat", "Dog", "tree", "HOUSE", "42", "sun", "Moon", "road", "a1b2", "x-ray", "Bird", "milk"]
render_word = render_plain_word  # the name the tests use
__all__ = ["WORDS", "render_word", "write_word_set"]


@pytest.fixture
def word_set(tmp_path: Path) -> Path:
    return write_word_set(tmp_path / "words", WORDS)
