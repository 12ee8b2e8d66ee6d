"""The Python API is as strict as the CLI (issue 27 item 6): bad arguments raise a UserError with the fix, and a
bad item in a list is that item's error while the rest are read."""

from __future__ import annotations

import pytest

from masterocr.errors import UserError
from masterocr.runtime.select import load_recognizer

GOOD = "samples/real_0142.png"


@pytest.fixture(scope="module")
def rec():
    return load_recognizer(None, backend="torch")


@pytest.mark.parametrize("batch_size", [0, -1, 10**9, 2.5, "8", True, None])
def test_a_bad_batch_size_is_a_user_error_with_the_range(rec, batch_size):
    with pytest.raises(UserError, match=r"batch_size = .*: must be an integer from 1 to 4096; pass the number"):
        rec.predict([GOOD, GOOD], batch_size=batch_size)


def test_return_attention_must_be_a_boolean(rec):
    with pytest.raises(UserError, match="return_attention = 'yes': pass True or False"):
        rec.predict([GOOD], return_attention="yes")


@pytest.mark.parametrize("bad", ["a\0b.png", 5, None, b"not an image", "samples", "no/such/file.png", object()])
def test_a_bad_item_is_its_own_error_and_the_rest_are_read(rec, bad):
    first, second, third = rec.predict([GOOD, bad, GOOD])
    assert first.text == third.text == "NOTICE" and first.error is None
    assert second.text is None and second.error and "\n" not in second.error


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"device": "cuda:abc"}, "is not a device"),
    ({"threads": 0}, "threads must be at least 1"),
    ({"threads": "4"}, "threads must be at least 1"),
    ({"backend": "tensorrt"}, "is not auto, torch or onnx"),
])  # fmt: skip
def test_load_recognizer_refuses_bad_arguments_in_one_line(kwargs, fragment):
    with pytest.raises(UserError, match=fragment):
        load_recognizer(None, **kwargs)
