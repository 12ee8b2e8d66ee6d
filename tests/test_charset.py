"""Charset: special tokens, round trips, UNK counting, case folding, NFKC."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from masterocr.charset import EOS, PAD, SOS, UNK, Charset
from masterocr.errors import UserError


def test_default_charset_is_the_originals_95_ascii_keys_after_four_special_tokens():
    cs = Charset.default()
    assert len(cs.keys) == 95 and len(cs) == 99
    assert cs.keys.startswith("0123456789abc") and " " in cs
    assert (PAD, EOS, SOS, UNK) == (0, 1, 2, 3)
    assert cs.encode("0") == [4]


def test_encode_decode_round_trip_and_decode_stops_at_eos():
    cs = Charset.default()
    ids = cs.encode("Hello, World!")
    assert cs.decode(ids) == "Hello, World!"
    assert cs.decode([SOS, *cs.encode("ab"), EOS, *cs.encode("zz")]) == "ab"


def test_unknown_characters_become_unk_and_are_counted():
    cs = Charset("abc")
    assert cs.encode("aßc") == [4, UNK, 6]
    assert cs.unknown["ß"] == 1
    assert cs.decode(cs.encode("aßc"), unk="?") == "a?c"


def test_case_insensitive_mode_lowercases_labels():
    cs = Charset.default(case_sensitive=False)
    assert cs.decode(cs.encode("BeAcH")) == "beach"


def test_nfkc_normalises_fullwidth_and_ligatures():
    cs = Charset.default()
    assert cs.decode(cs.encode("ＡＢ１ ﬁ")) == "AB1 fi"
    assert not cs.unknown


def test_encode_batch_layout_is_sos_text_eos_then_pad():
    cs = Charset("ab")
    t = cs.encode_batch(["ab", "a"], max_len=3)
    assert t.shape == (2, 5)
    assert t.tolist() == [[SOS, 4, 5, EOS, PAD], [SOS, 4, EOS, PAD, PAD]]
    assert t.dtype == torch.long


def test_keys_file_round_trip_and_errors(tmp_path):
    p = tmp_path / "keys.txt"
    p.write_text("xyz\n", encoding="utf-8")
    assert Charset.from_file(p).keys == "xyz"
    with pytest.raises(UserError, match="missing.txt"):
        Charset.from_file(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("é".encode("latin-1"))
    with pytest.raises(UserError, match="UTF-8"):
        Charset.from_file(bad)


@given(st.text(max_size=40))
def test_any_text_round_trips_through_ids_modulo_unknown_characters(text):
    cs = Charset.default()
    out = cs.decode(cs.encode(text))
    expected = "".join(ch for ch in cs.clean(text) if ch in cs)
    assert out == expected
