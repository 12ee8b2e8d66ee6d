"""Charset: special tokens, round trips, UNK counting, case folding, NFKC."""

from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import masterocr
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


def test_a_7000_symbol_keys_file_round_trips_and_counts_out_of_vocabulary_characters(tmp_path):
    from masterocr.charset import oov_summary

    keys = Charset.shipped("zh_latin").keys[:7000]
    path = tmp_path / "keys_7000.txt"
    path.write_text(keys + "\n", encoding="utf-8")
    cs = Charset.from_file(path)
    assert len(cs) == 7004 and cs.keys == keys
    text = "价格 ¥12.50，日期 2024-03-01：Crème brûlée《测试》" + keys[-1]
    ids = cs.encode(text)
    assert UNK not in ids and max(ids) == 7003
    assert cs.decode([SOS, *ids, EOS]) == cs.clean(text)
    assert "，" not in cs.clean(text) and "," in cs.clean(text)  # full-width comma folded by NFKC
    rare = "𠀀龘"  # an Extension B hanzi and a hanzi outside GB2312
    mixed = ["中文" + rare, rare[0] + " ok"]
    oov = cs.count_oov(mixed)
    assert oov == {"𠀀": 2, "龘": 1} and not cs.unknown  # counting a dataset leaves `unknown` alone
    for label in mixed:
        cs.encode(label)
    assert cs.unknown == oov
    line = oov_summary(oov, "train.txt")
    assert "\n" not in line and line.startswith("train.txt: 3 label characters in 2 kinds") and "'𠀀' x2" in line
    assert oov_summary(cs.count_oov(["中文"]), "x") is None


def test_the_shipped_zh_latin_charset_holds_every_gb2312_hanzi_ascii_latin_and_cjk_punctuation():
    import unicodedata

    cs = Charset.shipped("zh_latin")
    keys = set(cs.keys)
    assert len(cs.keys) == len(keys) > 7000
    hanzi = set()
    for hi in range(0xB0, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                hanzi.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    assert len(hanzi) == 6763 and hanzi <= keys
    assert set(Charset.default().keys) <= keys and cs.keys.startswith(Charset.default().keys)
    assert set("àéîõüßÆøŁłŒœŠšŽžőű€“”‘’—、。《》「」【】") <= keys and " " in keys
    assert all(unicodedata.normalize("NFKC", ch) == ch for ch in cs.keys)  # every key reachable from a label
    # the full-width forms and the ideographic space fold onto keys
    fullwidth = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
    assert not cs.count_oov([fullwidth])


def test_predicted_text_is_nfkc_folded_too(tmp_path):
    from masterocr.runtime.base import tokens_to_prediction

    cs = Charset("ＡB")  # a keys file holding a full-width letter: its class prints as "A"
    assert cs.decode(cs.encode("AB")) == "AB" and cs.encode("ＡB") == cs.encode("AB") == [4, 5]
    pred = tokens_to_prediction(cs, [4, 5, EOS], [0.9, 0.8, 0.7])
    assert pred.text == "AB" and pred.char_scores == [0.9, 0.8]
    with pytest.raises(UserError, match="zh_latin"):
        Charset.shipped("klingon")
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 4_000_001)
    with pytest.raises(UserError, match="over"):
        Charset.from_file(big)


def test_keys_that_fold_to_an_earlier_key_are_named_in_one_line(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="masterocr.charset"):
        cs = Charset("AＡb１1")
    [record] = caplog.records
    assert record.getMessage().startswith("2 charset keys fold under NFKC to the text of an earlier key ('Ａ' ~ 'A'")
    assert cs.encode("Ａ1") == cs.encode("A1")  # labels fold: the twins' classes are never targets
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="masterocr.charset"):
        Charset("AＡ", normalize=False)
        for path in sorted((Path(masterocr.__file__).parent / "charsets").glob("*.txt")):
            Charset.from_file(path)
    assert not caplog.records
